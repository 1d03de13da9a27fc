"""The settings module read from the environment, checked in fresh ``manage.py`` processes."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Only what Python itself needs is passed on: no setting leaks in from the calling shell.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a new process whose settings come only from ``env``."""
    inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = manage("check", DEBUG="0", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="circle.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        # Sender identity is required in production (journeys/checks.py).
        COMPANY_NAME="Circle Flowers K.K.",
        COMPANY_ADDRESS="1-1 Chiyoda, Tokyo",
        SITE_URL="https://circle.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_show_tokyo_time_and_ship_japanese_and_english(tmp_path):
    script = (
        "import json; from django.conf import settings; print(json.dumps({"
        "'time_zone': settings.TIME_ZONE, 'use_tz': settings.USE_TZ, "
        "'languages': [code for code, _ in settings.LANGUAGES]}))"
    )
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )

    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["time_zone"] == "Asia/Tokyo"
    assert settings["use_tz"] is True
    assert {"ja", "en"} <= set(settings["languages"])


def test_readme_documents_every_environment_variable():
    source = (BASE_DIR / "config" / "settings.py").read_text()
    read = set(
        re.findall(
            r'(?:environ\.get\(|environ\[|env_bool\(|env_list\()\s*"([A-Z][A-Z0-9_]*)"', source
        )
    )
    readme = (BASE_DIR / "README.md").read_text()

    assert {"SECRET_KEY", "DATABASE_URL", "EMAIL_BACKEND", "Q2_BROKER"} <= read
    assert sorted(name for name in read if f"| `{name}` |" not in readme) == []
