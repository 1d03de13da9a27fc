"""``manage.py seed_demo``: load the Hanamori demo company into the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from config.demo.seed import (
    SIZES,
    DemoDataError,
    demo_data_reset,
    ensure_demo_logins,
    seed_demo,
)
from customers.models import Customer


class Command(BaseCommand):
    help = (
        "Create the demo company (a Japanese flower and gift chain) with customers, events, "
        "orders and campaigns; does nothing when customers already exist unless --reset."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--size", choices=list(SIZES), default="default")
        parser.add_argument("--seed", type=int, default=42, help="Same seed, same company.")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo company first (refused when the data is not demo data).",
        )

    def handle(self, *args, size: str, seed: int, reset: bool, verbosity: int, **options):
        if reset:
            try:
                demo_data_reset()
            except DemoDataError as exc:
                raise CommandError(str(exc)) from exc
        elif existing := Customer.objects.count():
            ensure_demo_logins()
            self._say(
                verbosity,
                f"The database already holds {existing:,} customers: nothing seeded "
                "(use --reset to replace the demo company).",
            )
            return
        result = seed_demo(size=size, seed=seed, progress=verbosity > 0)
        self._say(verbosity, f"Seeded the {size} demo company in {result.seconds:.1f} s:")
        for label, count in result.counts.items():
            self._say(verbosity, f"  {label:<28} {count:>12,}")
        self._say(verbosity, "Seconds per stage:")
        for stage, seconds in result.phases.items():
            self._say(verbosity, f"  {stage:<40} {seconds:>8.1f}")

    def _say(self, verbosity: int, message: str) -> None:
        if verbosity > 0:
            self.stdout.write(message)
