"""``manage.py rebuild_customer_metrics``: recompute CustomerMetrics and lifecycle stages."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from customers.metrics import metrics_rebuild
from customers.models import Customer


class Command(BaseCommand):
    help = (
        "Recompute CustomerMetrics (orders, events, NPS, RFM, lead score) and lifecycle stage, "
        "set-based in chunks; all customers, or only those given with --customer."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--customer",
            type=int,
            action="append",
            dest="customer_ids",
            metavar="ID",
            help="Only this customer id (repeatable).",
        )

    def handle(self, *args, customer_ids: list[int] | None, verbosity: int, **options):
        if customer_ids:
            missing = set(customer_ids) - set(
                Customer.objects.filter(pk__in=customer_ids).values_list("pk", flat=True)
            )
            if missing:
                raise CommandError(f"no customer with id {', '.join(map(str, sorted(missing)))}")
        started = time.monotonic()
        bar = tqdm(total=None, unit="customer", desc="Customer metrics", disable=verbosity < 1)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        written = metrics_rebuild(customer_ids=customer_ids, progress=progress)
        bar.close()
        if verbosity >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Computed metrics of {written:,} customers in "
                    f"{time.monotonic() - started:.1f} s."
                )
            )
