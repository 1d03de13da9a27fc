"""``manage.py rebuild_rollups``: recompute the read models of the reports.

Without options: every daily rollup from all raw rows (events, orders, answers, deliveries),
then the acquisition cohorts and the campaign outcomes — after an import of history, a bulk
correction, or to check that nothing drifted. ``--days N`` recomputes only the last N days
of the daily rollups (what the nightly schedule does with 35) and then the cohorts and
outcomes, which are always recomputed whole. ``--clv`` also refits the predicted customer
value. ``--customers`` only recomputes the customer-level read models (RFM cells, dormancy
snapshots, the current fit's CLV summary when missing): once on a database seeded before
they existed. ``--install-schedules`` creates (or corrects) the django-q2 schedules of the reports.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from reports.cohorts import cohorts_refresh
from reports.customer_rollups import clv_summary_rebuild, customer_rollups_refresh
from reports.outcomes import campaign_outcomes_refresh
from reports.predictions import predictions_refresh
from reports.rollups import rollups_rebuild, rollups_refresh
from reports.tasks import ensure_report_schedules


class Command(BaseCommand):
    help = (
        "Recompute the report rollups: every day of the daily rollups (or the last --days N), "
        "then cohorts and campaign outcomes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            metavar="N",
            help="Only recompute the last N days of the daily rollups (N ≥ 1).",
        )
        parser.add_argument(
            "--clv", action="store_true", help="Also refit the predicted customer value."
        )
        parser.add_argument(
            "--customers",
            action="store_true",
            help="Only recompute the customer-level read models (RFM, dormancy, CLV summary).",
        )
        parser.add_argument(
            "--install-schedules",
            action="store_true",
            help="Create or correct the django-q2 schedules of the reports, then stop.",
        )

    def handle(self, *args, days: int | None, clv: bool, verbosity: int, **options):
        if options["install_schedules"]:
            changed = ensure_report_schedules()
            self.stdout.write("Schedules installed." if changed else "Schedules already in place.")
            return
        if options["customers"]:
            self._step(
                verbosity,
                "Customer read models",
                lambda: customer_rollups_refresh() + clv_summary_rebuild(),
                "rows",
            )
            return
        if days is not None and days < 1:
            raise CommandError("--days: expected a number of days, 1 or more")
        started = time.monotonic()
        self._step(
            verbosity,
            f"Daily rollups, last {days} days" if days else "Daily rollups, every day",
            lambda: rollups_refresh(days_back=days) if days else rollups_rebuild(),
            "days" if days else "rows",
        )
        self._step(verbosity, "Cohorts", cohorts_refresh, "rows")
        self._step(verbosity, "Campaign outcomes", campaign_outcomes_refresh, "rows")
        if clv:
            fit = self._step(verbosity, "Predicted customer value", predictions_refresh, "")
            if fit.error:
                self.stderr.write(f"The CLV fit failed: {fit.error}")
        if verbosity >= 1:
            self.stdout.write(
                self.style.SUCCESS(f"Rollups recomputed in {time.monotonic() - started:.1f} s.")
            )

    def _step(self, verbosity: int, label: str, run, unit: str):
        began = time.monotonic()
        result = run()
        if verbosity >= 1:
            if isinstance(result, dict):
                done = ", ".join(f"{name} {count:,}" for name, count in result.items())
                what = f"{done} {unit}"
            elif isinstance(result, int):
                what = f"{result:,} {unit}"
            else:
                what = f"{getattr(result, 'customers', 0):,} customers"
            self.stdout.write(f"{label}: {what} ({time.monotonic() - began:.1f} s)")
        return result
