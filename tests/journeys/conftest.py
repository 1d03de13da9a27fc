"""Fixtures of the campaign tests."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.journeys.smtp import SmtpServer


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free local port, with Django's SMTP backend pointed at it."""
    server = SmtpServer().start()
    try:
        with override_settings(**server.django_settings()):
            yield server
    finally:
        server.stop()
