"""``manage.py demo``: migrate, seed the demo company once, print the logins, run the stack."""

from __future__ import annotations

import json
import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from config.demo.mail import DEMO_OUTBOX, demo_environment
from config.demo.seed import (
    DEMO_API_TOKEN,
    DEMO_LOGINS,
    SIZES,
    ensure_demo_api_token,
    ensure_demo_logins,
    seed_demo,
)
from config.demo.stack import run_stack
from customers.models import Customer
from customers.tasks import ensure_segment_schedules
from journeys.tasks import ensure_campaign_schedules
from reports.tasks import ensure_report_schedules

EXAMPLE_BATCH = {
    "events": [
        {
            "type": "page_view",
            "occurred_at": "2026-11-22T10:00:00+09:00",
            "identifiers": {"cookie": "demo-cookie-1"},
            "properties": {"path": "/"},
        }
    ]
}


def _url(addrport: str) -> str:
    """The local web server's address, without a trailing slash."""
    host, _, port = addrport.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{port}"


class Command(BaseCommand):
    help = (
        "Run Customer Circle locally with the demo company: migrate, seed on first run, "
        "then the web server and the task worker until Ctrl-C."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--size", choices=list(SIZES), default="default")
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument(
            "--setup-only", action="store_true", help="Prepare the database, start nothing."
        )

    def handle(self, *args, size: str, addrport: str, setup_only: bool, verbosity: int, **opts):
        call_command("migrate", interactive=False, verbosity=max(verbosity - 1, 0))
        if existing := Customer.objects.count():
            self.stdout.write(f"Reusing the {existing:,} customers already in the database.")
        else:
            self.stdout.write(f"Seeding the {size} demo company (first run only)…")
            result = seed_demo(size=size, progress=verbosity > 0)
            self.stdout.write(f"Seeded in {result.seconds:.0f} s.")
        ensure_demo_logins()
        ensure_demo_api_token()
        ensure_segment_schedules()
        ensure_campaign_schedules()
        ensure_report_schedules()
        # The children (web server, task worker) read these: demo mail stays on this machine.
        os.environ.update(
            demo_environment(
                os.environ, email_backend=settings.EMAIL_BACKEND, site_url=_url(addrport)
            )
        )
        self.stdout.write(self._banner(addrport))
        if setup_only:
            return
        connection.close()  # the children open their own; do not hold SQLite locks meanwhile
        exit_code = run_stack(addrport=addrport, log=self.stdout.write)
        if exit_code:
            raise CommandError("The demo stack stopped unexpectedly.", returncode=exit_code)

    @staticmethod
    def _mail_destination() -> str:
        backend = os.environ.get("EMAIL_BACKEND", settings.EMAIL_BACKEND)
        if backend == "config.demo.mail.DemoOutboxBackend":
            return f"files in {DEMO_OUTBOX}"
        return backend.rsplit(".", 2)[-2] + " backend"

    def _banner(self, addrport: str) -> str:
        """The URL and the logins, as a table a developer can copy from."""
        url = _url(addrport) + "/"
        rows = [("username", "password", "department", "role", "personal data")]
        rows += [
            (
                login.username,
                login.password,
                login.department_slug or "-",
                login.role or "admin",
                "visible" if login.sees_personal_data else "masked",
            )
            for login in DEMO_LOGINS
        ]
        widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        rule = "=" * max(len(line) for line in lines)
        return "\n".join(
            [
                rule,
                "Customer Circle demo: Hanamori 花守 (flowers & gifts)",
                f"Open {url}  (Ctrl-C stops the web server and the task worker)",
                "",
                *lines,
                "",
                "Send events as the web shop (API token of CRM, source web-shop):",
                f"  curl -X POST {url}api/v1/events -H 'Authorization: Bearer {DEMO_API_TOKEN}' \\",
                f"    -H 'Content-Type: application/json' -d '{json.dumps(EXAMPLE_BATCH)}'",
                "",
                "Campaigns run every minute in the task worker; nothing leaves this machine:",
                f"  emails: {self._mail_destination()}",
                "  SMS, LINE and push providers: not configured in the demo",
                rule,
            ]
        )
