"""Settings of the B9 benchmark server: production settings, the benchmark's URLs.

``config.settings`` with ``DEBUG`` off (set ``DEBUG=0`` and a ``SECRET_KEY`` in the
environment before importing this), served over plain HTTP on loopback: no HTTPS redirect,
and static files from the source directories (no ``collectstatic`` manifest needed), which
the load never requests anyway.
"""

import warnings

from config.settings import *  # noqa: F403
from config.settings import STORAGES

ROOT_URLCONF = "tests.benchmarks.b9_site"
SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# WhiteNoise warns once per worker that STATIC_ROOT was never collected: expected here.
warnings.filterwarnings("ignore", message="No directory at")
