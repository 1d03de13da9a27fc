"""Reads of circle ②: touchpoints the user may see and the behaviour recorded there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import FieldDoesNotExist
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from experience.models import (
    Event,
    ExperienceValue,
    Order,
    Survey,
    SurveyResponse,
    Touchpoint,
)
from experience.nps import nps_counts, nps_score

KIND_ORDER = (Touchpoint.Kind.ONLINE, Touchpoint.Kind.OFFLINE, Touchpoint.Kind.APP)
RECENT_DAYS = 30
NPS_DAYS = 365
DETAIL_WEEKS = 12
LATEST_COMMENTS = 10


def experience_headline(user, *, since: dt.datetime) -> dict[str, int]:
    """Active touchpoints the user can see, and events company-wide since ``since``.

    Events are behaviour of company-wide customers, so they are counted for everyone; the
    count is a range scan of the ``(occurred_at, event_type)`` index.
    """
    return {
        "touchpoints_active": Touchpoint.objects.visible_to(user).filter(is_active=True).count(),
        "events_30d": Event.objects.filter(occurred_at__gte=since).count(),
    }


def _kind_order():
    return Case(
        *(When(kind=kind, then=Value(position)) for position, kind in enumerate(KIND_ORDER)),
        default=Value(len(KIND_ORDER)),
    )


def _event_count(*, since: dt.datetime, until: dt.datetime | None = None) -> Coalesce:
    """Events of the outer touchpoint in ``[since, until)``: a correlated sub-query that
    range-scans the ``(touchpoint, occurred_at)`` index once per touchpoint row."""
    events = Event.objects.filter(touchpoint=OuterRef("pk"), occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    counted = events.order_by().values("touchpoint").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def touchpoint_list(user, *, since: dt.datetime) -> QuerySet[Touchpoint]:
    """Touchpoints visible to the user, online → offline → app, with events since ``since``.

    One query for the rows (owner department joined, event count as a correlated
    sub-query over the ``(touchpoint, occurred_at)`` index) plus one prefetch of values.
    """
    return (
        Touchpoint.objects.visible_to(user)
        .select_related("owner_department")
        .prefetch_related("experience_values")
        .annotate(recent_event_count=_event_count(since=since))
        .order_by(_kind_order(), "name")
    )


# --- NPS attribution -------------------------------------------------------------------------


def nps_responses(*, since: dt.datetime) -> QuerySet[SurveyResponse]:
    """NPS answers since ``since``, each with ``attributed_touchpoint``: the touchpoint it
    was answered for, else the touchpoint of its survey."""
    return (
        SurveyResponse.objects.filter(answered_at__gte=since, survey__kind=Survey.Kind.NPS)
        .annotate(attributed_touchpoint=Coalesce("touchpoint_id", "survey__touchpoint_id"))
        .order_by()
    )


def _with_nps(counts: dict) -> dict:
    return {**counts, "score": nps_score(**counts)}


EMPTY_NPS = {"total": 0, "promoters": 0, "detractors": 0}


# --- The touchpoint map ----------------------------------------------------------------------


@dataclass(frozen=True)
class TouchpointMapFilters:
    """What the map is narrowed to; empty values mean "any"."""

    kind: str = ""
    channel: str = ""
    value: str = ""
    department_id: int | None = None
    include_inactive: bool = False


@dataclass
class TouchpointMap:
    """The rows of the map (touchpoints with their figures) and the totals row."""

    rows: list[Touchpoint]
    totals: dict = field(default_factory=dict)


def touchpoint_map(
    user, *, filters: TouchpointMapFilters | None = None, now: dt.datetime | None = None
) -> TouchpointMap:
    """Visible touchpoints with volume (30 days and the 30 before), orders and 12-month NPS.

    Three queries whatever the number of touchpoints: the rows (event and order counts as
    correlated sub-queries on the ``(touchpoint, occurred_at)`` index and the order table),
    their experience values, and one grouped query of NPS counts per attributed touchpoint.
    Each row gets ``events_30d``, ``events_prev_30d``, ``trend`` ("up", "down", "flat"),
    ``orders_30d`` and ``nps`` (``total``, ``promoters``, ``detractors``, ``score``).
    """
    filters = filters or TouchpointMapFilters()
    now = now or timezone.now()
    since = now - dt.timedelta(days=RECENT_DAYS)
    before = since - dt.timedelta(days=RECENT_DAYS)
    touchpoints = Touchpoint.objects.visible_to(user)
    if not filters.include_inactive:
        touchpoints = touchpoints.filter(is_active=True)
    if filters.kind:
        touchpoints = touchpoints.filter(kind=filters.kind)
    if filters.channel:
        touchpoints = touchpoints.filter(channel=filters.channel)
    if filters.department_id:
        touchpoints = touchpoints.filter(owner_department_id=filters.department_id)
    if filters.value:
        touchpoints = touchpoints.filter(
            pk__in=Touchpoint.experience_values.through.objects.filter(
                experiencevalue__code=filters.value
            ).values("touchpoint_id")
        )
    orders = (
        Order.objects.filter(touchpoint=OuterRef("pk"), ordered_at__gte=since)
        .exclude(status=Order.Status.CANCELLED)
        .order_by()
        .values("touchpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = list(
        touchpoints.select_related("owner_department")
        .prefetch_related("experience_values")
        .annotate(
            events_30d=_event_count(since=since),
            events_prev_30d=_event_count(since=before, until=since),
            orders_30d=Coalesce(Subquery(orders, output_field=IntegerField()), 0),
        )
        .order_by(_kind_order(), "name", "pk")
    )
    nps_by_touchpoint: dict[int, dict] = {}
    if rows:
        grouped = (
            nps_responses(since=now - dt.timedelta(days=NPS_DAYS))
            .filter(attributed_touchpoint__in=[row.pk for row in rows])
            .values("attributed_touchpoint")
            .annotate(**nps_counts())
        )
        nps_by_touchpoint = {
            item["attributed_touchpoint"]: {key: item[key] for key in EMPTY_NPS} for item in grouped
        }
    totals = {"events_30d": 0, "events_prev_30d": 0, "orders_30d": 0, **EMPTY_NPS}
    for row in rows:
        row.trend = (
            "up"
            if row.events_30d > row.events_prev_30d
            else "down"
            if row.events_30d < row.events_prev_30d
            else "flat"
        )
        row.nps = _with_nps(nps_by_touchpoint.get(row.pk, EMPTY_NPS))
        for key in ("events_30d", "events_prev_30d", "orders_30d"):
            totals[key] += getattr(row, key)
        for key in EMPTY_NPS:
            totals[key] += row.nps[key]
    totals["nps"] = _with_nps({key: totals[key] for key in EMPTY_NPS})
    totals["count"] = len(rows)
    return TouchpointMap(rows=rows, totals=totals)


# --- One touchpoint --------------------------------------------------------------------------


def touchpoint_detail_figures(touchpoint: Touchpoint, *, now: dt.datetime | None = None) -> dict:
    """Figures of the detail page in four queries: events per type (30 days), events per
    week (12 weeks, oldest first, empty weeks included), NPS counts (12 months) and the
    latest comments with their customers."""
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    since = now - dt.timedelta(days=RECENT_DAYS)
    by_type = list(
        Event.objects.filter(touchpoint=touchpoint, occurred_at__gte=since)
        .order_by()
        .values("event_type__name", "event_type__description")
        .annotate(n=Count("pk"))
        .order_by("-n", "event_type__name")
    )
    this_week = timezone.localtime(now, tz).date()
    this_week -= dt.timedelta(days=this_week.weekday())
    first_week = this_week - dt.timedelta(weeks=DETAIL_WEEKS - 1)
    week_start = dt.datetime.combine(first_week, dt.time.min, tzinfo=tz)
    # One conditional count per week between local Monday midnights, in one pass over the
    # covering (touchpoint, occurred_at) index: no per-row week truncation (on SQLite a
    # Python function called for every event: 2 s for 300k events).
    starts = [first_week + dt.timedelta(weeks=i) for i in range(DETAIL_WEEKS + 1)]
    bounds = [dt.datetime.combine(day, dt.time.min, tzinfo=tz) for day in starts]
    counted = Event.objects.filter(
        touchpoint=touchpoint, occurred_at__gte=week_start, occurred_at__lt=bounds[-1]
    ).aggregate(
        **{
            f"w{i}": Count(
                "pk", filter=Q(occurred_at__gte=bounds[i], occurred_at__lt=bounds[i + 1])
            )
            for i in range(DETAIL_WEEKS)
        }
    )
    weeks = [{"start": starts[i], "n": counted[f"w{i}"] or 0} for i in range(DETAIL_WEEKS)]
    responses = nps_responses(since=now - dt.timedelta(days=NPS_DAYS)).filter(
        attributed_touchpoint=touchpoint.pk
    )
    counts = responses.aggregate(**nps_counts())
    nps = _with_nps(counts)
    nps["passives"] = counts["total"] - counts["promoters"] - counts["detractors"]
    comments = list(
        responses.exclude(comment="")
        .select_related("customer")
        .order_by("-answered_at", "-pk")[:LATEST_COMMENTS]
    )
    return {
        "events_by_type": by_type,
        "events_30d": sum(item["n"] for item in by_type),
        "weeks": weeks,
        "weeks_max": max((week["n"] for week in weeks), default=0),
        "nps": nps,
        "comments": comments,
    }


def touchpoint_surveys(touchpoint: Touchpoint, user) -> QuerySet[Survey]:
    """Surveys attached to the touchpoint that the user may see."""
    return (
        Survey.objects.visible_to(user)
        .filter(touchpoint=touchpoint)
        .select_related("owner_department")
        .order_by("name")
    )


def touchpoints_for_activity(user) -> QuerySet[Touchpoint]:
    """Active touchpoints the user may see, offline first: where staff meet customers."""
    order = Case(
        When(kind=Touchpoint.Kind.OFFLINE, then=Value(0)),
        default=Value(1),
    )
    return Touchpoint.objects.visible_to(user).filter(is_active=True).order_by(order, "name", "pk")


# --- Experience values -----------------------------------------------------------------------


def experience_value_overview(user, *, now: dt.datetime | None = None) -> list[ExperienceValue]:
    """The five values with the touchpoints and campaigns the user may see that are meant to
    deliver each, and the events company-wide that delivered it in the last 30 days.

    Campaigns live in an outer circle: they are reached through the reverse relation of
    ``ExperienceValue`` and scoped with their own ``visible_to``, without importing them.
    Four queries: values with their visible touchpoints, campaign counts, event counts.
    Each value gets ``visible_touchpoints``, ``campaign_count`` (``None`` when the platform
    circle is not installed) and ``events_30d``.
    """
    now = now or timezone.now()
    values = list(
        ExperienceValue.objects.prefetch_related(
            Prefetch(
                "touchpoints",
                queryset=Touchpoint.objects.visible_to(user)
                .select_related("owner_department")
                .order_by(_kind_order(), "name"),
                to_attr="visible_touchpoints",
            )
        ).order_by("position", "pk")
    )
    campaign_counts: dict[int, int] | None = None
    try:
        relation = ExperienceValue._meta.get_field("campaigns")
    except FieldDoesNotExist:  # the platform circle is not installed
        relation = None
    if relation is not None:
        campaigns = relation.related_model.objects.visible_to(user)
        through = relation.through
        value_column = f"{ExperienceValue._meta.model_name}_id"
        campaign_column = f"{relation.related_model._meta.model_name}_id"
        campaign_counts = dict(
            through.objects.filter(**{f"{campaign_column}__in": campaigns.values("pk")})
            .order_by()
            .values(value_column)
            .annotate(n=Count("pk"))
            .values_list(value_column, "n")
        )
    bits = {value.code: ExperienceValue.bits_for([value.code]) for value in values}
    delivered = (
        Event.objects.filter(occurred_at__gte=now - dt.timedelta(days=RECENT_DAYS))
        .exclude(value_bits=0)
        .annotate(**{f"bit_{code}": F("value_bits").bitand(bit) for code, bit in bits.items()})
        .aggregate(**{code: Count("pk", filter=Q(**{f"bit_{code}__gt": 0})) for code in bits})
        if bits
        else {}
    )
    for value in values:
        value.campaign_count = None if campaign_counts is None else campaign_counts.get(value.pk, 0)
        value.events_30d = delivered.get(value.code) or 0
    return values
