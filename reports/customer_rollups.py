"""Customer-level read models of the customers (RFM, dormancy) and CLV reports.

Their sources have one row per customer (``CustomerMetrics``, ``CustomerPrediction``: 1M
rows at the large company), so an aggregate over them costs seconds however it is written.
The aggregates are stored instead and report pages read a few dozen rows:

- :class:`~reports.models.RfmCell`: the RFM grid over every buyer;
- :class:`~reports.models.DormancyDay` / :class:`~reports.models.DormancyMonth`: dormancy
  and churn per month of first order at the end of the as-of days the report's presets
  ask for — today, the ends of the previous periods (7, 30, 90, 365 days back) and the
  same day a year earlier — all in one GROUP BY;
- :class:`~reports.models.HeadlineSnapshot` "strategy" and "customer": the home cards'
  NPS and LTV over the last 12 months (a year of raw orders and answers), and the count of
  customers and the share known by several identifiers (every profile and identifier),
  read while under 30 minutes old, with the time they were computed shown;
- :class:`~reports.models.ClvSummary`: totals and histograms of a fit's predictions,
  stored with the predictions (:func:`clv_summary_store`), and its
  :class:`~reports.models.ClvSegmentValue` rows (each segment's predicted value), stored
  then and recomputed with the RFM and dormancy tables, since memberships move.

Each is computed by the same selector function a page would otherwise run
(``reports.selectors.rfm`` / ``reports.selectors.clv``), so a stored figure equals the
direct one as of ``computed_at``. :func:`customer_rollups_refresh` replaces the RFM and
dormancy tables whole in one transaction; it runs with the cohorts every 15 minutes
(``reports.tasks.slow_rollups_task``), in ``rollups_rebuild`` (the seed and the
``rebuild_rollups`` command) and alone with ``rebuild_rollups --customers``. RFM scores
change when ``customers.metrics`` recomputes them; revenue and last orders move with
orders, so these figures lag ingestion by up to 15 minutes, as the cohorts do.

Pages fall back to the direct query when a figure is not stored: a segment filter (the
members of one segment, one GROUP BY restricted by ``EXISTS`` on its memberships), a
custom as-of day, a fit stored before this table existed.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from customers.models import SegmentMembership
from reports.models import (
    ClvFit,
    ClvSegmentValue,
    ClvSummary,
    DormancyDay,
    DormancyMonth,
    HeadlineSnapshot,
    RfmCell,
)
from reports.selectors import STORED_HEADLINES
from reports.selectors.clv import (
    clv_summary_current,
    prediction_figures_direct,
    segment_value_rows,
)
from reports.selectors.rfm import dormancy_by_month, rfm_grid_direct

PRESET_DAYS = (7, 30, 90, 365)


def snapshot_days(today: dt.date) -> list[dt.date]:
    """The as-of days the report's presets use: the period end (today), the end of each
    preset's previous period and the same day a year earlier."""
    days = {today, *(today - dt.timedelta(days=n) for n in PRESET_DAYS)}
    try:
        days.add(today.replace(year=today.year - 1))
    except ValueError:  # 29 February
        days.add(today.replace(year=today.year - 1, day=28))
    return sorted(days)


def customer_rollups_refresh(*, now: dt.datetime | None = None) -> int:
    """Recompute the RFM cells and the dormancy snapshots whole; returns the rows written."""
    now = now or timezone.now()
    grid = rfm_grid_direct()
    dormancy = dormancy_by_month(snapshot_days(timezone.localdate(now)))
    with transaction.atomic():
        RfmCell.objects.all().delete()
        cells = RfmCell.objects.bulk_create(
            RfmCell(
                recency=cell.recency,
                frequency=cell.frequency,
                customers=cell.customers,
                revenue=cell.revenue,
                computed_at=now,
            )
            for cell in grid.cells.values()
        )
        # The empty grid is stored too: "computed, no buyers" is not "never computed".
        if not cells:
            RfmCell.objects.create(recency=0, frequency=0, customers=0, computed_at=now)
        DormancyDay.objects.all().delete()
        months = []
        for as_of, by_month in dormancy.items():
            day = DormancyDay.objects.create(as_of=as_of, computed_at=now)
            months += [
                DormancyMonth(
                    day=day,
                    month=month,
                    buyers=counted.buyers,
                    dormant=counted.dormant,
                    churned=counted.churned,
                )
                for month, counted in by_month
            ]
        DormancyMonth.objects.bulk_create(months)
    headline_store(now=now)
    written = len(cells) + len(dormancy) + len(months) + len(STORED_HEADLINES)
    summary = clv_summary_current()
    if summary is not None:  # memberships move between refits
        written += clv_segment_values_store(summary)
    return written


def headline_store(*, now: dt.datetime) -> None:
    """Store the headlines the home cards read from snapshots (``STORED_HEADLINES``: the
    customer circle's counts, the strategy circle's NPS and LTV over the year before ``now``)."""
    for name, compute in STORED_HEADLINES.items():
        HeadlineSnapshot.objects.update_or_create(
            name=name, defaults={"computed_at": now, "data": compute(now)}
        )


# --- CLV --------------------------------------------------------------------------------------


def clv_summary_store(fit: ClvFit) -> ClvSummary:
    """Aggregate the current predictions (those of ``fit``) into its summary, replacing any
    earlier one; called by ``reports.predictions.predictions_store`` in its transaction."""
    totals, p_alive_bins, value_bins = prediction_figures_direct()

    def bins(rows):
        return [[row.one_time, row.repeat, str(row.clv)] for row in rows]

    summary, _created = ClvSummary.objects.update_or_create(
        fit=fit,
        defaults={
            "customers": totals.customers,
            "repeat_buyers": totals.repeat_buyers,
            "mean_p_alive": totals.mean_p_alive,
            "expected_purchases": totals.expected_purchases,
            "clv": totals.clv,
            "likely_lapsed": totals.likely_lapsed,
            "p_alive_bins": bins(p_alive_bins),
            "value_bins": bins(value_bins),
            "computed_at": timezone.now(),
        },
    )
    clv_segment_values_store(summary)
    return summary


def clv_segment_values_store(summary: ClvSummary) -> int:
    """Replace the per-segment values of ``summary`` (every segment with members, one
    GROUP BY over memberships left-joined to predictions); returns the rows written."""
    now = timezone.now()
    rows = [
        ClvSegmentValue(
            summary=summary,
            segment_id=row["segment_id"],
            members=row["members"],
            predicted=row["predicted"],
            mean_p_alive=row["mean_p_alive"],
            expected_purchases=row["expected_purchases"],
            clv=row["clv"],
        )
        for row in segment_value_rows(SegmentMembership.objects.all())
    ]
    with transaction.atomic():
        ClvSegmentValue.objects.filter(summary=summary).delete()
        ClvSegmentValue.objects.bulk_create(rows, batch_size=2_000)
        ClvSummary.objects.filter(pk=summary.pk).update(segments_at=now)
    summary.segments_at = now
    return len(rows)


def clv_summary_rebuild() -> int:
    """Store the summary of the current fit when missing (a database whose predictions
    predate the table); returns 1 when one was stored."""
    fit = ClvFit.objects.succeeded().first()
    if fit is None or ClvSummary.objects.filter(fit=fit).exists():
        return 0
    clv_summary_store(fit)
    return 1
