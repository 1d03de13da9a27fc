"""Fixtures of the report tests: the real local SMTP server of the campaign tests."""

from __future__ import annotations

from tests.journeys.conftest import smtp_server  # noqa: F401  (a fixture, used by name)
