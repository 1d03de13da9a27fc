"""Reads of the customers report: the RFM grid, its cells' customers, dormancy and churn.

RFM scores are those of :mod:`customers.metrics` (1–5 per dimension over customers with
completed orders, by quintile boundaries of the whole population), as of the last metrics
computation. Dormant and churned use the same thresholds as the lifecycle stage
(``customers.metrics.DORMANT_AFTER`` = 180 days, ``CHURNED_AFTER`` = 365 days), measured
back from the end of the period instead of from now:

- dormant: the last completed order before the period end lies 180–365 days before it;
- churned: it lies more than 365 days before it;
- the rates are shares of the customers with at least one completed order before the end.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DateField,
    Exists,
    IntegerField,
    Min,
    OuterRef,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.metrics import CHURNED_AFTER, DORMANT_AFTER
from customers.models import Customer, CustomerMetrics, SegmentMembership
from experience.models import Order
from reports.models import DormancyDay, DormancyMonth
from reports.models import RfmCell as StoredRfmCell
from reports.rollups import day_bounds

SCORES = (1, 2, 3, 4, 5)
ACTIVE, DORMANT, CHURNED, NOT_YET = 0, 1, 2, 3


@dataclass(frozen=True)
class RfmCell:
    recency: int
    frequency: int
    customers: int = 0
    revenue: Decimal = Decimal(0)


@dataclass
class RfmGrid:
    cells: dict[tuple[int, int], RfmCell]

    @property
    def customers(self) -> int:
        return sum(cell.customers for cell in self.cells.values())

    @property
    def revenue(self) -> Decimal:
        return sum((cell.revenue for cell in self.cells.values()), Decimal(0))

    def cell(self, recency: int, frequency: int) -> RfmCell:
        return self.cells.get((recency, frequency), RfmCell(recency, frequency))


def _members(segment_id: int) -> Exists:
    return Exists(
        SegmentMembership.objects.filter(segment_id=segment_id, customer_id=OuterRef("customer_id"))
    )


def rfm_grid(*, segment_id: int | None = None) -> RfmGrid:
    """Customers and their lifetime revenue per (recency, frequency) score.

    Over every buyer: the stored cells (:class:`~reports.models.RfmCell`, 25 rows at most)
    once they were computed; restricted to a segment's members (or before the first
    computation): one GROUP BY over the customers' metrics (:func:`rfm_grid_direct`)."""
    if segment_id is None:
        stored = rfm_cells_stored()
        if stored is not None:
            return RfmGrid({(cell.recency, cell.frequency): cell for cell in stored})
    return rfm_grid_direct(segment_id=segment_id)


def rfm_grid_direct(*, segment_id: int | None = None) -> RfmGrid:
    """:func:`rfm_grid` computed from the metrics, in one GROUP BY."""
    metrics = CustomerMetrics.objects.filter(
        rfm_recency__isnull=False, rfm_frequency__isnull=False, customer__merged_into__isnull=True
    )
    if segment_id is not None:
        metrics = metrics.filter(_members(segment_id))
    rows = (
        metrics.values("rfm_recency", "rfm_frequency")
        .annotate(customers=Count("pk"), revenue=Coalesce(Sum("revenue_total"), Decimal(0)))
        .order_by()
    )
    return RfmGrid(
        {
            (row["rfm_recency"], row["rfm_frequency"]): RfmCell(
                row["rfm_recency"], row["rfm_frequency"], row["customers"], Decimal(row["revenue"])
            )
            for row in rows
        }
    )


def rfm_cell_rules(recency: int, frequency: int, *, segment_id: int | None = None) -> dict:
    """Segment rules that describe exactly one RFM cell (two ``metric`` conditions), within
    a segment's members when given (a ``segment`` condition)."""
    children: list[dict] = [
        {"type": "metric", "field": "rfm_recency", "op": "eq", "value": recency},
        {"type": "metric", "field": "rfm_frequency", "op": "eq", "value": frequency},
    ]
    if segment_id is not None:
        children.append({"type": "segment", "segment": segment_id})
    return {"op": "and", "children": children}


def rfm_cell_customers(
    *, recency: int, frequency: int, segment_id: int | None = None
) -> QuerySet[Customer]:
    """The customers of one cell (members of a segment, if given), highest lifetime revenue
    first, with their metrics."""
    customers = Customer.objects.filter(
        merged_into__isnull=True, metrics__rfm_recency=recency, metrics__rfm_frequency=frequency
    )
    if segment_id is not None:
        customers = customers.filter(
            Exists(
                SegmentMembership.objects.filter(segment_id=segment_id, customer_id=OuterRef("pk"))
            )
        )
    return customers.select_related("metrics").order_by("-metrics__revenue_total", "pk")


# --- Dormancy and churn ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dormancy:
    """Customers with an order before the as-of moment, and how many are dormant / churned."""

    buyers: int = 0
    dormant: int = 0
    churned: int = 0

    def rate(self, part: int) -> float | None:
        return round(part * 100 / self.buyers, 1) if self.buyers else None

    @property
    def dormant_rate(self) -> float | None:
        return self.rate(self.dormant)

    @property
    def churn_rate(self) -> float | None:
        return self.rate(self.churned)

    def __add__(self, other: Dormancy) -> Dormancy:
        return Dormancy(
            self.buyers + other.buyers, self.dormant + other.dormant, self.churned + other.churned
        )


@dataclass
class DormancyReport:
    as_of: dt.date
    current: Dormancy
    previous: Dormancy | None
    previous_as_of: dt.date | None
    by_month: list[tuple[dt.date, Dormancy]] = field(default_factory=list)


def _as_of(day: dt.date) -> dt.datetime:
    """The end of a local day: the moment dormancy is measured at."""
    return day_bounds(day, day)[1]


def _state(moment: dt.datetime) -> Case:
    """A customer's state at ``moment`` from their metrics; only customers who ordered again
    since ``moment`` need their orders (index probes on (customer, ordered_at))."""
    dormant_from, churned_before = moment - DORMANT_AFTER, moment - CHURNED_AFTER
    completed = Order.objects.filter(
        customer_id=OuterRef("customer_id"), status=Order.Status.COMPLETED
    )
    return Case(
        When(first_order_at__gte=moment, then=Value(NOT_YET)),
        When(last_order_at__lt=churned_before, then=Value(CHURNED)),
        When(last_order_at__lt=dormant_from, then=Value(DORMANT)),
        When(last_order_at__lt=moment, then=Value(ACTIVE)),
        When(
            Exists(completed.filter(ordered_at__gte=dormant_from, ordered_at__lt=moment)),
            then=Value(ACTIVE),
        ),
        When(
            Exists(completed.filter(ordered_at__gte=churned_before, ordered_at__lt=dormant_from)),
            then=Value(DORMANT),
        ),
        default=Value(CHURNED),
        output_field=IntegerField(),
    )


def _local_month(first: dt.datetime, last_day: dt.date) -> Case:
    """The local month (its first day) of ``first_order_at``, from the month of ``first`` up
    to that of ``last_day``, as plain comparisons with each month's start: the database's
    own time-zone conversion would cost a function call per row on SQLite."""
    month = timezone.localtime(first).date().replace(day=1)
    whens = []
    while month <= last_day:
        following = (month + dt.timedelta(days=32)).replace(day=1)
        whens.append(
            When(first_order_at__lt=day_bounds(following, following)[0], then=Value(month))
        )
        month = following
    return Case(*whens, default=Value(None), output_field=DateField())


def _fold(states: dict[int, int]) -> Dormancy:
    return Dormancy(
        buyers=sum(n for state, n in states.items() if state != NOT_YET),
        dormant=states.get(DORMANT, 0),
        churned=states.get(CHURNED, 0),
    )


def dormancy_by_month(
    as_of_days: list[dt.date], *, segment_id: int | None = None
) -> dict[dt.date, list[tuple[dt.date, Dormancy]]]:
    """Each as-of day's buyers, dormant and churned customers per month of first order
    (months with buyers only, oldest first), in ONE GROUP BY over the customers' metrics:
    one state column per day. The direct computation behind :func:`dormancy` and the
    snapshots of :mod:`reports.customer_rollups`."""
    days = sorted(set(as_of_days))
    metrics = CustomerMetrics.objects.filter(
        first_order_at__isnull=False, customer__merged_into__isnull=True
    )
    if segment_id is not None:
        metrics = metrics.filter(_members(segment_id))
    first = metrics.aggregate(first=Min("first_order_at"))["first"] if days else None
    if first is None:
        return {day: [] for day in days}
    annotations = {"month": _local_month(first, days[-1])}
    for index, day in enumerate(days):
        annotations[f"state_{index}"] = _state(_as_of(day))
    rows = metrics.annotate(**annotations).values(*annotations).annotate(n=Count("pk")).order_by()
    counts: list[dict[dt.date, dict[int, int]]] = [
        defaultdict(lambda: defaultdict(int)) for _day in days
    ]
    for row in rows:
        if row["month"] is None:  # first order after the last as-of month: not yet a buyer
            continue
        for index, day in enumerate(days):
            if row["month"] <= day:  # later months: first order after this as-of moment
                counts[index][row["month"]][row[f"state_{index}"]] += row["n"]
    result = {}
    for index, day in enumerate(days):
        by_month = [(month, _fold(states)) for month, states in sorted(counts[index].items())]
        result[day] = [(month, counted) for month, counted in by_month if counted.buyers]
    return result


def dormancy(
    *, as_of: dt.date, previous_as_of: dt.date | None = None, segment_id: int | None = None
) -> DormancyReport:
    """Dormant and churn rates at the end of ``as_of`` (and of ``previous_as_of``), with the
    current rates per acquisition month (local month of the first completed order).

    Over every buyer, from the stored snapshots of those days
    (:mod:`reports.customer_rollups`, a few dozen rows) when both are there; otherwise —
    a segment's members, a day not kept — one GROUP BY over the customers' metrics.
    """
    wanted = [as_of] if previous_as_of is None else [as_of, previous_as_of]
    found = None
    if segment_id is None:
        found = dormancy_snapshots(wanted)
    if found is None:
        found = dormancy_by_month(wanted, segment_id=segment_id)
    by_month = found[as_of]
    previous = None
    if previous_as_of is not None:
        previous = sum((counted for _month, counted in found[previous_as_of]), Dormancy())
    return DormancyReport(
        as_of=as_of,
        current=sum((counted for _month, counted in by_month), Dormancy()),
        previous=previous,
        previous_as_of=previous_as_of,
        by_month=by_month,
    )


def rfm_cells_stored() -> list[RfmCell] | None:
    """The stored RFM cells (``RfmCell`` rows as ``RfmCell`` dataclasses), or None before
    the first computation."""
    rows = list(StoredRfmCell.objects.all())
    if not rows:
        return None
    return [
        RfmCell(row.recency, row.frequency, row.customers, row.revenue)
        for row in rows
        if row.recency  # the (0, 0) marker of an empty grid
    ]


def dormancy_snapshots(
    days: list[dt.date],
) -> dict[dt.date, list[tuple[dt.date, Dormancy]]] | None:
    """``{as_of: [(month, Dormancy), …]}`` from the stored snapshots, or None unless every
    one of ``days`` is stored (one query)."""
    stored = {day.as_of: [] for day in DormancyDay.objects.filter(as_of__in=days)}
    if len(stored) < len(set(days)):
        return None
    rows = DormancyMonth.objects.filter(day__as_of__in=days).values_list(
        "day__as_of", "month", "buyers", "dormant", "churned"
    )
    for as_of, month, buyers, dormant, churned in rows.order_by("day__as_of", "month"):
        stored[as_of].append((month, Dormancy(buyers, dormant, churned)))
    return stored
