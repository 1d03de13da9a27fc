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
from reports.models import ClvFit, ClvSummary, CustomerPrediction

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
    current = ClvFit.objects.succeeded().first()
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
    """Headline sums of the predictions: over every customer, those stored with the fit
    (:class:`~reports.models.ClvSummary`, one row); else one aggregate query."""
    summary = _summary(segment_id)
    if summary is not None:
        return Totals(
            customers=summary.customers,
            repeat_buyers=summary.repeat_buyers,
            mean_p_alive=summary.mean_p_alive,
            expected_purchases=summary.expected_purchases,
            clv=Decimal(summary.clv),
            likely_lapsed=summary.likely_lapsed,
        )
    return prediction_totals_direct(segment_id=segment_id)


def _summary(segment_id: int | None):
    if segment_id is not None:
        return None
    return clv_summary_current()


def _stored_bins(labels: list[str], stored: list) -> list[Bin] | None:
    if len(stored) != len(labels):
        return None
    return [
        Bin(label=label, one_time=one_time, repeat=repeat, clv=Decimal(clv))
        for label, (one_time, repeat, clv) in zip(labels, stored, strict=True)
    ]


def prediction_totals_direct(*, segment_id: int | None = None) -> Totals:
    """:func:`prediction_totals` from the predictions, in one aggregate query."""
    return _totals(predictions(segment_id=segment_id).aggregate(**_totals_aggregates()))


def _totals_aggregates(prefix: str = "") -> dict:
    # With a prefix, no alias shadows a column ("clv") other aggregates filter on.
    return {
        f"{prefix}customers": Count("pk"),
        f"{prefix}repeat_buyers": Count("pk", filter=Q(frequency__gt=0)),
        f"{prefix}mean_p_alive": Avg("p_alive"),
        f"{prefix}expected_purchases": Coalesce(Sum("expected_purchases"), 0.0),
        f"{prefix}clv": Sum("clv"),
        f"{prefix}likely_lapsed": Count("pk", filter=Q(p_alive__lt=0.3)),
    }


def _totals(data: dict, prefix: str = "") -> Totals:
    return Totals(
        customers=data[f"{prefix}customers"],
        repeat_buyers=data[f"{prefix}repeat_buyers"],
        mean_p_alive=data[f"{prefix}mean_p_alive"],
        expected_purchases=float(data[f"{prefix}expected_purchases"]),
        clv=Decimal(data[f"{prefix}clv"] or 0),
        likely_lapsed=data[f"{prefix}likely_lapsed"],
    )


def prediction_figures(*, segment_id: int | None = None) -> tuple[Totals, list[Bin], list[Bin]]:
    """Totals, P(alive) histogram and value histogram together: stored with the fit over
    every customer; for a segment's members ONE aggregate query (one pass over the
    predictions with the membership probe, instead of three)."""
    if segment_id is None:
        return (
            prediction_totals(),
            p_alive_histogram(),
            value_histogram(),
        )
    return prediction_figures_direct(segment_id=segment_id)


def prediction_figures_direct(
    *, segment_id: int | None = None
) -> tuple[Totals, list[Bin], list[Bin]]:
    """:func:`prediction_figures` from the predictions, in one aggregate query."""
    data = predictions(segment_id=segment_id).aggregate(
        **_totals_aggregates("t_"), **_p_alive_aggregates("pa_"), **_value_aggregates("v_")
    )
    return _totals(data, "t_"), _p_alive_bins(data, "pa_"), _value_bins(data, "v_")


def _p_alive_labels() -> list[str]:
    return [
        f"{index / P_ALIVE_BINS:.1f}–{(index + 1) / P_ALIVE_BINS:.1f}"
        for index in range(P_ALIVE_BINS)
    ]


def _value_labels() -> list[str]:
    edges = [*VALUE_EDGES, None]
    return [
        f"¥{low:,}–" + (f"¥{edges[index + 1]:,}" if edges[index + 1] is not None else "")
        for index, low in enumerate(VALUE_EDGES)
    ]


def p_alive_histogram(*, segment_id: int | None = None) -> list[Bin]:
    """Customers per P(alive) bin of 0.1, split one-time / repeat buyers: stored with the
    fit over every customer, else one query."""
    summary = _summary(segment_id)
    stored = summary and _stored_bins(_p_alive_labels(), summary.p_alive_bins)
    return stored or p_alive_histogram_direct(segment_id=segment_id)


def value_histogram(*, segment_id: int | None = None) -> list[Bin]:
    """Customers and summed predicted value per value band: stored with the fit over every
    customer, else one query."""
    summary = _summary(segment_id)
    stored = summary and _stored_bins(_value_labels(), summary.value_bins)
    return stored or value_histogram_direct(segment_id=segment_id)


def p_alive_histogram_direct(*, segment_id: int | None = None) -> list[Bin]:
    """Customers per P(alive) bin of 0.1, split one-time / repeat buyers (one query)."""
    return _p_alive_bins(predictions(segment_id=segment_id).aggregate(**_p_alive_aggregates()))


def _p_alive_aggregates(prefix: str = "") -> dict:
    aggregates = {}
    for index in range(P_ALIVE_BINS):
        low, high = index / P_ALIVE_BINS, (index + 1) / P_ALIVE_BINS
        in_bin = Q(p_alive__gte=low) if index else Q()
        if index < P_ALIVE_BINS - 1:
            in_bin &= Q(p_alive__lt=high)
        aggregates[f"{prefix}one_{index}"] = Count("pk", filter=in_bin & Q(frequency=0))
        aggregates[f"{prefix}rep_{index}"] = Count("pk", filter=in_bin & Q(frequency__gt=0))
    return aggregates


def _p_alive_bins(data: dict, prefix: str = "") -> list[Bin]:
    return [
        Bin(label=label, one_time=data[f"{prefix}one_{index}"], repeat=data[f"{prefix}rep_{index}"])
        for index, label in enumerate(_p_alive_labels())
    ]


def value_histogram_direct(*, segment_id: int | None = None) -> list[Bin]:
    """Customers and summed predicted value per value band (one query)."""
    return _value_bins(predictions(segment_id=segment_id).aggregate(**_value_aggregates()))


def _value_aggregates(prefix: str = "") -> dict:
    aggregates = {}
    edges = [*VALUE_EDGES, None]
    for index, low in enumerate(VALUE_EDGES):
        high = edges[index + 1]
        in_bin = Q(clv__gte=low) if index else Q()
        if high is not None:
            in_bin &= Q(clv__lt=high)
        aggregates[f"{prefix}one_{index}"] = Count("pk", filter=in_bin & Q(frequency=0))
        aggregates[f"{prefix}rep_{index}"] = Count("pk", filter=in_bin & Q(frequency__gt=0))
        aggregates[f"{prefix}clv_{index}"] = Sum("clv", filter=in_bin)
    return aggregates


def _value_bins(data: dict, prefix: str = "") -> list[Bin]:
    return [
        Bin(
            label=label,
            one_time=data[f"{prefix}one_{index}"],
            repeat=data[f"{prefix}rep_{index}"],
            clv=Decimal(data[f"{prefix}clv_{index}"] or 0),
        )
        for index, label in enumerate(_value_labels())
    ]


def value_by_segment(*, user, department=None, segment_id: int | None = None) -> list[SegmentValue]:
    """Predicted value of the segments ``user`` can see (owned by ``department`` if given),
    highest total first; with ``segment_id``, counting only that segment's members too.

    Without ``segment_id``: the values stored with the fit's summary
    (:class:`~reports.models.ClvSegmentValue`, refreshed every 15 minutes and at each
    refit), restricted to the visible segments; else one aggregate query over memberships
    left-joined to predictions.
    """
    segments = Segment.objects.visible_to(user)
    if department is not None:
        segments = segments.filter(owner_department=department)
    summary = _summary(segment_id)
    if summary is not None and summary.segments_at is not None:
        from reports.models import ClvSegmentValue

        rows = (
            ClvSegmentValue.objects.filter(summary=summary, segment__in=segments.values("pk"))
            .order_by("-clv", "segment__name")
            .values(
                "segment_id",
                "segment__name",
                "members",
                "predicted",
                "mean_p_alive",
                "expected_purchases",
                "clv",
            )[:SEGMENT_ROWS]
        )
        return [_segment_value(row) for row in rows]
    memberships = SegmentMembership.objects.filter(segment__in=segments.values("pk"))
    if segment_id is not None:
        memberships = memberships.filter(
            Exists(
                SegmentMembership.objects.filter(
                    segment_id=segment_id, customer_id=OuterRef("customer_id")
                )
            )
        )
    rows = segment_value_rows(memberships).order_by("-clv", "segment__name")[:SEGMENT_ROWS]
    return [_segment_value(row) for row in rows]


def segment_value_rows(memberships: QuerySet) -> QuerySet:
    """Per segment of ``memberships``: members, predicted members, mean P(alive), expected
    purchases and summed CLV (one GROUP BY, unordered)."""
    prediction = "customer__prediction"
    return (
        memberships.values("segment_id", "segment__name")
        .annotate(
            members=Count("pk"),
            predicted=Count(f"{prediction}__pk"),
            mean_p_alive=Avg(f"{prediction}__p_alive"),
            expected_purchases=Coalesce(Sum(f"{prediction}__expected_purchases"), 0.0),
            clv=Coalesce(Sum(f"{prediction}__clv"), Decimal(0)),
        )
        .order_by()
    )


def _segment_value(row: dict) -> SegmentValue:
    return SegmentValue(
        segment_id=row["segment_id"],
        name=row["segment__name"],
        members=row["members"],
        predicted=row["predicted"],
        mean_p_alive=row["mean_p_alive"],
        expected_purchases=float(row["expected_purchases"]),
        clv=Decimal(row["clv"]),
    )


def clv_summary_current() -> ClvSummary | None:
    """The summary of the fit behind the current predictions, if stored (one query)."""
    latest = ClvFit.objects.succeeded().values("pk")[:1]
    return ClvSummary.objects.filter(fit__in=latest).first()
