"""Where the demo's email goes: files on this machine, never an SMTP server.

``manage.py demo`` points ``EMAIL_BACKEND`` of its web server and task worker at
:class:`DemoOutboxBackend` (unless a local backend is configured already), so campaign
emails and test sends of the demo company land in ``DEMO_OUTBOX`` as ``.log`` files, one
per connection (a batch of a send), readable with any text editor.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.mail.backends.filebased import EmailBackend

DEMO_OUTBOX = Path(settings.MEDIA_ROOT) / "demo-mail"  # never served, never committed
LOCAL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "config.demo.mail.DemoOutboxBackend",
)
# Provider endpoints of SMS, LINE and push: the demo never hands them its messages.
PROVIDER_SETTINGS = ("CHANNEL_WEBHOOK_SMS", "CHANNEL_WEBHOOK_LINE", "CHANNEL_WEBHOOK_PUSH")


class DemoOutboxBackend(EmailBackend):
    """Django's file backend writing into ``DEMO_OUTBOX`` unless told another path."""

    def __init__(self, *args, file_path: str | None = None, **kwargs) -> None:
        super().__init__(*args, file_path=file_path or str(DEMO_OUTBOX), **kwargs)


def demo_environment(environ, *, email_backend: str, site_url: str) -> dict[str, str]:
    """The variables to change for the demo's children so nothing leaves the machine.

    Email goes to files unless a local backend is configured already; SMS, LINE and push
    provider endpoints are blanked; without a ``SITE_URL`` the links in demo messages
    (tracking, unsubscribe) point at the local web server.
    """
    changes = {key: "" for key in PROVIDER_SETTINGS if environ.get(key)}
    if email_backend not in LOCAL_BACKENDS:
        changes["EMAIL_BACKEND"] = "config.demo.mail.DemoOutboxBackend"
    if not environ.get("SITE_URL"):
        changes["SITE_URL"] = site_url
    return changes
