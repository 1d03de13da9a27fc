"""Every UI string is translatable and shipped in Japanese, compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

LOCALE = Path(settings.BASE_DIR) / "locale"
PO = LOCALE / "ja" / "LC_MESSAGES" / "django.po"


def gettext_tools_or_skip() -> None:
    """gettext's tools are needed to extract strings; CI installs them, so it must not skip."""
    if shutil.which("xgettext") and shutil.which("msgattrib"):
        return
    message = "gettext is not installed (apt-get install gettext): translation check SKIPPED"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def test_every_string_in_the_code_has_a_japanese_translation(tmp_path):
    """Extract the strings afresh from a copy of the tree: none may be new or untranslated.

    makemessages writes into ``./locale`` of the folder it scans, so it runs on a copy and
    the shipped catalogue is never touched.
    """
    gettext_tools_or_skip()
    tree = tmp_path / "tree"
    shutil.copytree(
        settings.BASE_DIR,
        tree,
        ignore=shutil.ignore_patterns(
            ".*",
            "__pycache__",
            "*.egg-info",
            "tests",
            "static",
            "staticfiles",
            "test-results",
            "media",
            "db.sqlite3*",
        ),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-obsolete", "-v", "0"],
        cwd=tree,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    fresh = tree / "locale" / "ja" / "LC_MESSAGES" / "django.po"

    untranslated = subprocess.run(
        ["msgattrib", "--untranslated", "--no-wrap", str(fresh)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fuzzy = subprocess.run(
        ["msgattrib", "--only-fuzzy", "--no-wrap", str(fresh)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert untranslated == "", f"run `make messages` and translate:\n{untranslated}"
    assert fuzzy == "", f"fuzzy (unchecked) translations:\n{fuzzy}"


def test_compiled_catalogue_is_shipped_and_up_to_date():
    mo = PO.with_suffix(".mo")

    assert mo.exists(), "run `make messages` to compile locale/ja"
    assert mo.stat().st_mtime >= PO.stat().st_mtime or _same_catalogue(PO, mo)


def _same_catalogue(po: Path, mo: Path) -> bool:
    """Git does not keep file times, so compare the contents when the .mo looks older."""
    if not shutil.which("msgfmt"):
        return True
    compiled = subprocess.run(
        ["msgfmt", "-o", "-", str(po)], capture_output=True, check=True
    ).stdout
    return compiled == mo.read_bytes()


def test_the_four_circles_are_named_in_japanese():
    with translation.override("ja"):
        names = [translation.gettext(name) for name in ("Customer", "Experience", "Strategy")]

    assert names == ["顧客", "体験", "戦略"]
