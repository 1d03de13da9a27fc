"""Reads of the CLV report: the fit in use, its holdout check and aggregates of predictions.

Predictions are a customer-level read model (:class:`~reports.models.CustomerPrediction`),
so every figure here is one aggregate query over it, optionally restricted to the members
of a segment. Nothing names a customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from customers.models import Segment, SegmentMembership
from reports.models import ClvFit, CustomerPrediction

P_ALIVE_BINS = 10
"""P(alive) histogram: ten bins of 0.1 (the last one includes 1)."""
VALUE_EDGES = (0, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000)
"""Predicted value histogram (yen): [0, 5k), [5k, 10k) … [500k, ∞)."""
SEGMENT_ROWS = 50


@dataclass(frozen=True)
class FitState:
    """The fit the predictions come from and, when it differs, the last (failed) attempt."""

    current: ClvFit | None
    failed: ClvFit | None


@dataclass(frozen=True)
class Totals:
    customers: int
    repeat_buyers: int
    mean_p_alive: float | None
    expected_purchases: float
    clv: Decimal
    likely_lapsed: int  # P(alive) < 0.3


@dataclass(frozen=True)
class Bin:
    label: str
    one_time: int  # customers without a repeat purchase
    repeat: int
    clv: Decimal = Decimal(0)

    @property
    def customers(self) -> int:
        return self.one_time + self.repeat


@dataclass(frozen=True)
class SegmentValue:
    segment_id: int
    name: str
    members: int
    predicted: int
    mean_p_alive: float | None
    expected_purchases: float
    clv: Decimal

    @property
    def mean_clv(self) -> Decimal | None:
        return (self.clv / self.predicted).quantize(Decimal(1)) if self.predicted else None


def fit_state() -> FitState:
    """The fit behind the current predictions, and a later failed attempt if any (2 queries
    at most)."""
    latest = ClvFit.objects.order_by("-fitted_at", "-pk").first()
    if latest is None or not latest.error:
        return FitState(current=latest, failed=None)
    current = ClvFit.objects.filter(error="").order_by("-fitted_at", "-pk").first()
    return FitState(current=current, failed=latest)


def predictions(*, segment_id: int | None = None) -> QuerySet[CustomerPrediction]:
    """Every prediction, or those of the segment's current members."""
    rows = CustomerPrediction.objects.all()
    if segment_id is not None:
        rows = rows.filter(
            Exists(
                SegmentMembership.objects.filter(
                    segment_id=segment_id, customer_id=OuterRef("customer_id")
                )
            )
        )
    return rows


def prediction_totals(*, segment_id: int | None = None) -> Totals:
    """Headline sums of the predictions, in one aggregate query."""
    data = predictions(segment_id=segment_id).aggregate(
        customers=Count("pk"),
        repeat_buyers=Count("pk", filter=Q(frequency__gt=0)),
        mean_p_alive=Avg("p_alive"),
        expected_purchases=Coalesce(Sum("expected_purchases"), 0.0),
        clv=Sum("clv"),
        likely_lapsed=Count("pk", filter=Q(p_alive__lt=0.3)),
    )
    return Totals(
        customers=data["customers"],
        repeat_buyers=data["repeat_buyers"],
        mean_p_alive=data["mean_p_alive"],
        expected_purchases=float(data["expected_purchases"]),
        clv=Decimal(data["clv"] or 0),
        likely_lapsed=data["likely_lapsed"],
    )


def p_alive_histogram(*, segment_id: int | None = None) -> list[Bin]:
    """Customers per P(alive) bin of 0.1, split one-time / repeat buyers (one query)."""
    aggregates = {}
    for index in range(P_ALIVE_BINS):
        low, high = index / P_ALIVE_BINS, (index + 1) / P_ALIVE_BINS
        in_bin = Q(p_alive__gte=low) if index else Q()
        if index < P_ALIVE_BINS - 1:
            in_bin &= Q(p_alive__lt=high)
        aggregates[f"one_{index}"] = Count("pk", filter=in_bin & Q(frequency=0))
        aggregates[f"rep_{index}"] = Count("pk", filter=in_bin & Q(frequency__gt=0))
    data = predictions(segment_id=segment_id).aggregate(**aggregates)
    return [
        Bin(
            label=f"{index / P_ALIVE_BINS:.1f}–{(index + 1) / P_ALIVE_BINS:.1f}",
            one_time=data[f"one_{index}"],
            repeat=data[f"rep_{index}"],
        )
        for index in range(P_ALIVE_BINS)
    ]


def value_histogram(*, segment_id: int | None = None) -> list[Bin]:
    """Customers and summed predicted value per value band (one query)."""
    aggregates = {}
    edges = [*VALUE_EDGES, None]
    for index, low in enumerate(VALUE_EDGES):
        high = edges[index + 1]
        in_bin = Q(clv__gte=low) if index else Q()
        if high is not None:
            in_bin &= Q(clv__lt=high)
        aggregates[f"one_{index}"] = Count("pk", filter=in_bin & Q(frequency=0))
        aggregates[f"rep_{index}"] = Count("pk", filter=in_bin & Q(frequency__gt=0))
        aggregates[f"clv_{index}"] = Sum("clv", filter=in_bin)
    data = predictions(segment_id=segment_id).aggregate(**aggregates)
    bins = []
    for index, low in enumerate(VALUE_EDGES):
        high = edges[index + 1]
        label = f"¥{low:,}–" + (f"¥{high:,}" if high is not None else "")
        bins.append(
            Bin(
                label=label,
                one_time=data[f"one_{index}"],
                repeat=data[f"rep_{index}"],
                clv=Decimal(data[f"clv_{index}"] or 0),
            )
        )
    return bins


def value_by_segment(*, user, department=None, segment_id: int | None = None) -> list[SegmentValue]:
    """Predicted value of the segments ``user`` can see (owned by ``department`` if given),
    highest total first; with ``segment_id``, counting only that segment's members too.

    One aggregate query over memberships left-joined to predictions.
    """
    segments = Segment.objects.visible_to(user)
    if department is not None:
        segments = segments.filter(owner_department=department)
    memberships = SegmentMembership.objects.filter(segment__in=segments.values("pk"))
    if segment_id is not None:
        memberships = memberships.filter(
            Exists(
                SegmentMembership.objects.filter(
                    segment_id=segment_id, customer_id=OuterRef("customer_id")
                )
            )
        )
    prediction = "customer__prediction"
    rows = (
        memberships.values("segment_id", "segment__name")
        .annotate(
            members=Count("pk"),
            predicted=Count(f"{prediction}__pk"),
            mean_p_alive=Avg(f"{prediction}__p_alive"),
            expected_purchases=Coalesce(Sum(f"{prediction}__expected_purchases"), 0.0),
            clv=Coalesce(Sum(f"{prediction}__clv"), Decimal(0)),
        )
        .order_by("-clv", "segment__name")[:SEGMENT_ROWS]
    )
    return [
        SegmentValue(
            segment_id=row["segment_id"],
            name=row["segment__name"],
            members=row["members"],
            predicted=row["predicted"],
            mean_p_alive=row["mean_p_alive"],
            expected_purchases=float(row["expected_purchases"]),
            clv=Decimal(row["clv"]),
        )
        for row in rows
    ]
