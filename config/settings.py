"""Settings for Customer Circle: one module, driven by environment variables.

Every variable has a documented default that is safe for the local demo only (README.md,
"Configuration"). With ``DEBUG`` off the process refuses to start on the development secret
key, and secure cookie / HSTS / HTTPS settings are switched on.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEV_SECRET_KEY = "dev-only-insecure-key-change-me-for-any-real-deployment"

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off "
        "(the development key is public)."
    )

# Key of the hashes that keep erased people's identifiers suppressed (customers/privacy.py).
# Set it apart from SECRET_KEY in production: rotating SECRET_KEY must not unsuppress anyone.
PII_HASH_KEY = os.environ.get("PII_HASH_KEY", SECRET_KEY)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

# The address customers reach (links in messages sent outside a request), and the name
# public pages (survey answers, preference centre) show.
SITE_URL = os.environ.get("SITE_URL", "").rstrip("/")
COMPANY_NAME = os.environ.get("COMPANY_NAME", "")
# Sender identity in every marketing email (Japan's Specified Electronic Mail Act).
COMPANY_ADDRESS = os.environ.get("COMPANY_ADDRESS", "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "config.admin_site.CircleAdminConfig",  # django.contrib.admin, closed to staff by default
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "csp",
    "axes",
    "config.org",
    "customers",
    "experience",
    "journeys",
    "reports",
    "config.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.security.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.security.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.org.context_processors.membership",
            ],
        },
    },
]

# Database: SQLite (WAL) by default, PostgreSQL in production via DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            " PRAGMA busy_timeout=20000; PRAGMA cache_size=-64000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "org.User"
# django-axes first: it refuses a login from a locked-out username + IP before any password
# check. API tokens (config/org/authentication.py) never go through these backends.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation: stored in UTC, shown in Asia/Tokyo; Japanese and English shipped.
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "media/"

# Email goes through Django's backends; SMTP by default, console for the local demo.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Customer Circle <noreply@localhost>")

# Campaign channels (journeys/channels.py). CAMPAIGN_TRANSPORT=fake swaps every channel for
# a local fake (benchmarks, demo); CAMPAIGN_FAKE_OUTBOX makes it append one JSON line per
# message to that file.
CAMPAIGN_FROM_EMAIL = os.environ.get("CAMPAIGN_FROM_EMAIL", "")
CAMPAIGN_UNSUBSCRIBE_MAILTO = os.environ.get("CAMPAIGN_UNSUBSCRIBE_MAILTO", "")
CAMPAIGN_TRANSPORT = os.environ.get("CAMPAIGN_TRANSPORT", "")
CAMPAIGN_FAKE_OUTBOX = os.environ.get("CAMPAIGN_FAKE_OUTBOX", "")
CHANNEL_WEBHOOK_SMS = os.environ.get("CHANNEL_WEBHOOK_SMS", "")
CHANNEL_WEBHOOK_LINE = os.environ.get("CHANNEL_WEBHOOK_LINE", "")
CHANNEL_WEBHOOK_PUSH = os.environ.get("CHANNEL_WEBHOOK_PUSH", "")
WEBHOOK_SIGNING_SECRET = os.environ.get("WEBHOOK_SIGNING_SECRET", "")
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "10"))
WEBHOOK_ATTEMPTS = int(os.environ.get("WEBHOOK_ATTEMPTS", "3"))
STAFF_TASK_DUE_DAYS = int(os.environ.get("STAFF_TASK_DUE_DAYS", "7"))
# Lead scoring (journeys/scoring.py): a prospect is a lead, then an MQL, from these scores.
LEAD_SCORE_LEAD_THRESHOLD = int(os.environ.get("LEAD_SCORE_LEAD_THRESHOLD", "20"))
LEAD_SCORE_MQL_THRESHOLD = int(os.environ.get("LEAD_SCORE_MQL_THRESHOLD", "50"))

# Security: strict by default outside DEBUG; each switch can be overridden by environment.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(60 * 60 * 12)))
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Sessions end after this many seconds without a request, and this many after the login,
# whatever the activity (config/security.py SessionTimeoutMiddleware).
SESSION_IDLE_TIMEOUT = int(os.environ.get("SESSION_IDLE_TIMEOUT", "7200"))
SESSION_ABSOLUTE_TIMEOUT = int(os.environ.get("SESSION_ABSOLUTE_TIMEOUT", "43200"))

# django-axes: AXES_FAILURE_LIMIT wrong passwords for one username from one address lock that
# pair out for AXES_COOLOFF_MINUTES; other users and other addresses can still log in.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
# The client address is REMOTE_ADDR unless a trusted reverse proxy sets X-Forwarded-For:
# otherwise anyone could pick a new address per attempt in a header.
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    if env_bool("SECURE_PROXY_SSL_HEADER", False)
    else ("REMOTE_ADDR",)
)

# Content-Security-Policy (django-csp): scripts only from this site and with the response's
# nonce, never inline handlers or eval; no plugins, frames, foreign forms or <base>. Plotly's
# stylesheet ships in static/css/app.css (see there), so styles need no 'unsafe-inline'.
# CSP_REPORT_ONLY=1 sends the same policy as report-only, to try a change on a live site.
# Violations are posted to /csp-report/ and logged (config/security.py).
_CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "report-uri": ["/csp-report/"],
    }
}
if _CSP_REPORT_ONLY:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

# Uploads: a request body held in memory (forms, JSON) may be this large; an API batch of
# 1,000 events is about 0.5 MB. Import files (CSV/XLSX) may be IMPORT_MAX_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 2**20)))
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(100 * 2**20)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # limit/offset paging that answers 400 on a bad value instead of ignoring it.
    "DEFAULT_PAGINATION_CLASS": "config.org.api_pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER", "1200/minute"),
        # Event batches of up to 1,000 items, per API token.
        "ingest": os.environ.get("API_THROTTLE_INGEST", "600/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Customer Circle API",
    "DESCRIPTION": "REST API of the four circles: customers, experience, platform, strategy.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package, never a CDN: users may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation documents the 400/403/404/429 DRF answers (see config/org/api.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.org.api.document_error_responses",
    ],
}

# django-q2: ORM broker by default (survives restarts, needs nothing else), Redis when set.
Q_CLUSTER = {
    "name": "customer_circle",
    "workers": int(os.environ.get("Q2_WORKERS", "2")),
    "timeout": int(os.environ.get("Q2_TIMEOUT", "300")),
    "retry": int(os.environ.get("Q2_RETRY", "360")),
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 1000,
    "sync": env_bool("Q2_SYNC", False),
    "label": _("Task queue"),
}
if os.environ.get("Q2_BROKER", "orm").startswith("redis"):
    Q_CLUSTER["redis"] = os.environ["Q2_BROKER"]
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # django-axes logs every login reset at INFO; lockouts (WARNING) still show.
        "axes": {"level": "WARNING"},
    },
}
