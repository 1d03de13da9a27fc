"""Reads of the value report: LTV by acquisition channel and cohort, F2 and retention.

Everything is computed from the acquisition cohorts (:mod:`reports.cohorts`), summed over
the first orders' touchpoints into their **channels** (a channel names no department-owned
thing, so the figures cover every customer, as company-wide customer figures do).

Which cohorts a period covers: the cohort months whose first day falls in the period (the
default 365 days cover the last twelve whole months plus the current one's start); a period
too short to hold a first day of a month covers the month it ends in.

Maturity: an n-month LTV exists only once a cohort's first n months are over; the LTV curve
at offset k averages only cohorts whose month k is over, so young cohorts do not pull it
down. The retention heatmap shows every month up to the current one (the current month so
far). The headline 12-month LTV counts the months observed so far of each cohort.

Segment and persona filter: the rollup cannot be split by segment, so for a segment the same
cells are computed directly from the members' completed orders (one streamed query, folded
by :func:`reports.cohorts.fold_orders` exactly as the rollup is).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import Order
from reports.catalog import Period, ReportFilters
from reports.cohorts import (
    CohortCell,
    CohortFold,
    MonthCell,
    cohort_orders,
    fold_orders,
    month_start,
    months_between,
    stream_rows,
)
from reports.models import Cohort, CohortMonth

LTV_MONTHS = (3, 6, 12)
MAX_HEATMAP = 24
UNKNOWN_CHANNEL = ""


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def period_months(period: Period) -> list[dt.date]:
    """The cohort months a period covers: those whose first day falls in it, else the month
    the period ends in."""
    months = []
    month = month_start(period.start)
    if month < period.start:
        month = add_months(month, 1)
    while month <= period.end:
        months.append(month)
        month = add_months(month, 1)
    return months or [month_start(period.end)]


def _round(value: Decimal | float) -> int:
    return int(Decimal(value).quantize(Decimal(1), ROUND_HALF_UP))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- Reading the cells --------------------------------------------------------------------


def cohort_cells(*, filters: ReportFilters, months: list[dt.date]) -> CohortFold:
    """Cohort and month cells of ``months`` keyed by acquisition channel, restricted to the
    filter's channel and, when a segment is chosen, to its members."""
    first, last = min(months), max(months)
    if filters.segment_id is not None:
        return _member_cells(filters=filters, first=first, last=last)
    cohorts = Cohort.objects.filter(cohort__gte=first, cohort__lte=last)
    cohort_months = CohortMonth.objects.filter(cohort__gte=first, cohort__lte=last)
    if filters.channel:
        cohorts = cohorts.filter(touchpoint__channel=filters.channel)
        cohort_months = cohort_months.filter(touchpoint__channel=filters.channel)
    fold = CohortFold({}, {})
    for row in (
        cohorts.values("cohort", "touchpoint__channel")
        .annotate(
            n=Sum("customers"), r=Sum("repeaters"), r90=Sum("repeaters_90d"), rev=Sum("revenue")
        )
        .order_by()
    ):
        key = (row["cohort"], row["touchpoint__channel"] or UNKNOWN_CHANNEL)
        fold.cohorts[key] = CohortCell(row["n"], row["r"], row["r90"], int(row["rev"]))
    for row in (
        cohort_months.values("cohort", "touchpoint__channel", "offset")
        .annotate(n=Sum("customers"), o=Sum("orders"), rev=Sum("revenue"))
        .order_by()
    ):
        key = (row["cohort"], row["touchpoint__channel"] or UNKNOWN_CHANNEL, row["offset"])
        fold.months[key] = MonthCell(row["n"], row["o"], int(row["rev"]))
    return fold


def _member_cells(*, filters: ReportFilters, first: dt.date, last: dt.date) -> CohortFold:
    members = SegmentMembership.objects.filter(segment_id=filters.segment_id).values("customer_id")
    orders = Order.objects.filter(customer_id__in=members)
    fold = fold_orders(stream_rows(cohort_orders(orders, key="touchpoint__channel")))
    keep = {
        key
        for key in fold.cohorts
        if first <= key[0] <= last and (not filters.channel or key[1] == filters.channel)
    }
    return CohortFold(
        {
            (month, channel or UNKNOWN_CHANNEL): cell
            for (month, channel), cell in fold.cohorts.items()
            if (month, channel) in keep
        },
        {
            (month, channel or UNKNOWN_CHANNEL, offset): cell
            for (month, channel, offset), cell in fold.months.items()
            if (month, channel) in keep
        },
    )


# --- Figures from the cells -------------------------------------------------------------


@dataclass(frozen=True)
class CohortSummary:
    """One cohort month, every channel of the filter summed."""

    cohort: dt.date
    customers: int
    repeaters: int
    repeaters_90d: int
    revenue: int
    offsets: dict[int, MonthCell]

    @property
    def f2_rate(self) -> float | None:
        return _rate(self.repeaters, self.customers)

    @property
    def f2_rate_90d(self) -> float | None:
        return _rate(self.repeaters_90d, self.customers)

    @property
    def ltv_to_date(self) -> int:
        return _round(Decimal(self.revenue) / self.customers)


def summaries(fold: CohortFold, months: list[dt.date]) -> list[CohortSummary]:
    """Per cohort month (those of ``months`` with customers), channels summed, oldest first."""
    totals: dict[dt.date, CohortCell] = defaultdict(CohortCell)
    for (month, _channel), cell in fold.cohorts.items():
        total = totals[month]
        total.customers += cell.customers
        total.repeaters += cell.repeaters
        total.repeaters_90d += cell.repeaters_90d
        total.revenue += cell.revenue
    offsets: dict[dt.date, dict[int, MonthCell]] = defaultdict(lambda: defaultdict(MonthCell))
    for (month, _channel, offset), cell in fold.months.items():
        total = offsets[month][offset]
        total.customers += cell.customers
        total.orders += cell.orders
        total.revenue += cell.revenue
    wanted = set(months)
    return [
        CohortSummary(
            month,
            cell.customers,
            cell.repeaters,
            cell.repeaters_90d,
            cell.revenue,
            dict(offsets[month]),
        )
        for month, cell in sorted(totals.items())
        if month in wanted and cell.customers
    ]


def complete_months(cohort: dt.date, today: dt.date) -> int:
    """How many of a cohort's months are over on ``today``."""
    return max(months_between(cohort, today), 0)


def ltv_after(summary: CohortSummary, months: int, today: dt.date) -> int | None:
    """Revenue per customer in the cohort's first ``months`` months; None until they are over."""
    if complete_months(summary.cohort, today) < months:
        return None
    revenue = sum(cell.revenue for offset, cell in summary.offsets.items() if offset < months)
    return _round(Decimal(revenue) / summary.customers)


@dataclass(frozen=True)
class Headline:
    customers: int
    f2_rate: float | None
    f2_rate_90d: float | None
    ltv_12: int | None


def headline(rows: list[CohortSummary]) -> Headline:
    """F2 rates and 12-month LTV (months observed so far) of the cohorts in ``rows``."""
    customers = sum(row.customers for row in rows)
    revenue = sum(
        cell.revenue for row in rows for offset, cell in row.offsets.items() if offset < 12
    )
    return Headline(
        customers=customers,
        f2_rate=_rate(sum(row.repeaters for row in rows), customers),
        f2_rate_90d=_rate(sum(row.repeaters_90d for row in rows), customers),
        ltv_12=_round(Decimal(revenue) / customers) if customers else None,
    )


def ltv_curves(
    fold: CohortFold, months: list[dt.date], today: dt.date
) -> dict[str, list[tuple[int, int]]]:
    """Cumulative revenue per customer by months since the first order, per acquisition
    channel. Month k's revenue per customer averages the cohorts that have completed month
    k; the curve adds these up, so it never falls when young cohorts drop out."""
    wanted = set(months)
    sizes: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for (month, channel), cell in fold.cohorts.items():
        if month in wanted and cell.customers:
            sizes[channel][month] = cell.customers
    revenue: dict[tuple[str, dt.date, int], int] = {}
    for (month, channel, offset), cell in fold.months.items():
        revenue[(channel, month, offset)] = cell.revenue
    curves = {}
    for channel, cohorts in sorted(sizes.items()):
        points = []
        cumulative = Decimal(0)
        horizon = max(complete_months(month, today) for month in cohorts)
        for offset in range(horizon):
            mature = [month for month in cohorts if complete_months(month, today) > offset]
            customers = sum(cohorts[month] for month in mature)
            spent = sum(revenue.get((channel, month, offset), 0) for month in mature)
            cumulative += Decimal(spent) / customers
            points.append((offset, _round(cumulative)))
        if points:
            curves[channel] = points
    return curves


def retention(
    rows: list[CohortSummary], today: dt.date
) -> tuple[list[CohortSummary], int, list[list[float | None]]]:
    """The latest ``MAX_HEATMAP`` cohorts, the number of offsets shown and, per cohort, the
    share of its customers buying in each month since the first (None: not reached yet)."""
    rows = rows[-MAX_HEATMAP:]
    width = min(
        max((months_between(row.cohort, today) + 1 for row in rows), default=0), MAX_HEATMAP
    )
    grid = []
    for row in rows:
        reached = months_between(row.cohort, today)
        grid.append(
            [
                (row.offsets[offset].customers if offset in row.offsets else 0) / row.customers
                if offset <= reached
                else None
                for offset in range(width)
            ]
        )
    return rows, width, grid


@dataclass(frozen=True)
class ValueReport:
    """Everything the value report shows, as plain data."""

    today: dt.date
    months: list[dt.date]
    rows: list[CohortSummary]
    headline: Headline
    previous: Headline | None
    curves: dict[str, list[tuple[int, int]]]


def value_report(*, filters: ReportFilters, today: dt.date | None = None) -> ValueReport:
    """The cohorts of the period (and of the comparison period, for the headline)."""
    today = today or timezone.localdate()
    months = period_months(filters.period)
    previous_months = period_months(filters.compare) if filters.compare else []
    fold = cohort_cells(filters=filters, months=months + previous_months)
    rows = summaries(fold, months)
    return ValueReport(
        today=today,
        months=months,
        rows=rows,
        headline=headline(rows),
        previous=headline(summaries(fold, previous_months)) if filters.compare else None,
        curves=ltv_curves(fold, months, today),
    )
