"""Daily rollups: the read models report pages use instead of the raw rows.

One rule for every table: a rollup row is keyed by a **local day** (the current time zone,
Asia/Tokyo by default) and is always recomputed whole from the raw rows of that day, in one
transaction (delete the day's rows, insert the day's aggregates). So a rollup equals a
direct computation on raw data by construction, and refreshing twice changes nothing.

Which days to recompute:

- days of raw rows added since the last run (``RollupState.last_id``, the highest id seen);
- today and yesterday, because feedback lands "now": an open, a click, a conversion or a
  delivery counts on the day it happened, so it only ever changes today's row;
- ``rollups_rebuild`` recomputes every day (the ``rebuild_rollups`` command), and
  ``rollups_refresh(days_back=N)`` the last N days (the nightly schedule), which picks up
  rarer changes of old rows (an order returned weeks later, a profile merge).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, Model, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from experience.models import Event, Order, Survey, SurveyResponse
from journeys.models import Delivery
from reports.models import DailyAnswers, DailyDeliveries, DailyEvents, DailyOrders, RollupState

NOT_SENT = (Delivery.Status.SUPPRESSED, Delivery.Status.CAPPED, Delivery.Status.FAILED)
DELIVERY_STEPS = (
    ("sent", "sent_at"),
    ("delivered", "delivered_at"),
    ("opened", "opened_at"),
    ("clicked", "clicked_at"),
    ("converted", "converted_at"),
)


def local_day(field: str) -> TruncDate:
    """The local calendar day of a datetime column, in the current time zone."""
    return TruncDate(field, tzinfo=timezone.get_current_timezone())


def day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Aware datetimes ``[first 00:00, last+1 00:00)`` in the current time zone."""
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(first, dt.time.min, tzinfo=tz),
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days ``(first, last)``."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + dt.timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


# --- Aggregates of one run of days ------------------------------------------------------------


def _event_rows(lo: dt.datetime, hi: dt.datetime) -> list[DailyEvents]:
    aggregates = (
        Event.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi)
        .annotate(day=local_day("occurred_at"))
        .values("day", "event_type_id", "touchpoint_id", "value_bits")
        .annotate(events=Count("pk"), customers=Count("customer_id", distinct=True))
        .order_by()
    )
    return [DailyEvents(**row) for row in aggregates]


def _first_order() -> Q:
    """A completed order with no earlier completed order of the same customer."""
    earlier = Order.objects.filter(
        customer_id=OuterRef("customer_id"), status=Order.Status.COMPLETED
    ).filter(
        Q(ordered_at__lt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__lt=OuterRef("pk"))
    )
    return ~Q(Exists(earlier))


def _order_rows(lo: dt.datetime, hi: dt.datetime) -> list[DailyOrders]:
    first = _first_order()
    aggregates = (
        Order.objects.filter(status=Order.Status.COMPLETED, ordered_at__gte=lo, ordered_at__lt=hi)
        .annotate(day=local_day("ordered_at"))
        .values("day", "touchpoint_id")
        .annotate(
            orders=Count("pk"),
            revenue=Coalesce(Sum("total"), 0, output_field=IntegerField()),
            customers=Count("customer_id", distinct=True),
            first_orders=Count("pk", filter=first),
            first_revenue=Coalesce(Sum("total", filter=first), 0, output_field=IntegerField()),
        )
        .order_by()
    )
    return [DailyOrders(**row) for row in aggregates]


def _answer_rows(lo: dt.datetime, hi: dt.datetime) -> list[DailyAnswers]:
    nps = Q(survey__kind=Survey.Kind.NPS)
    aggregates = (
        SurveyResponse.objects.filter(answered_at__gte=lo, answered_at__lt=hi)
        .annotate(day=local_day("answered_at"))
        .values("day", "survey_id", "touchpoint_id")
        .annotate(
            answers=Count("pk"),
            scored=Count("score"),
            score_sum=Coalesce(Sum("score"), 0),
            promoters=Count("pk", filter=nps & Q(score__gte=9)),
            passives=Count("pk", filter=nps & Q(score__gte=7, score__lte=8)),
            detractors=Count("pk", filter=nps & Q(score__lte=6)),
            comments=Count("pk", filter=~Q(comment="")),
        )
        .order_by()
    )
    return [DailyAnswers(**row) for row in aggregates]


def _delivery_rows(lo: dt.datetime, hi: dt.datetime) -> list[DailyDeliveries]:
    cells: dict[tuple[dt.date, int], dict] = defaultdict(dict)
    contacted = ~Q(status=Delivery.Status.HOLDOUT)

    def fold(queryset: QuerySet, field: str, **aggregates) -> None:
        rows = (
            queryset.filter(**{f"{field}__gte": lo, f"{field}__lt": hi})
            .annotate(day=local_day(field))
            .values("day", "campaign_id")
            .annotate(**aggregates)
            .order_by()
        )
        for row in rows:
            key = (row.pop("day"), row.pop("campaign_id"))
            cells[key].update(row)

    deliveries = Delivery.objects.all()
    for name, field in DELIVERY_STEPS:
        fold(deliveries.filter(contacted), field, **{name: Count("pk")})
    fold(
        deliveries.filter(contacted),
        "converted_at",
        revenue=Coalesce(Sum("revenue"), 0, output_field=IntegerField()),
    )
    fold(
        deliveries,
        "created_at",
        held_out=Count("pk", filter=Q(status=Delivery.Status.HOLDOUT)),
        not_sent=Count("pk", filter=Q(status__in=NOT_SENT)),
    )
    return [
        DailyDeliveries(day=day, campaign_id=campaign_id, **values)
        for (day, campaign_id), values in cells.items()
        if any(values.values())
    ]


@dataclass(frozen=True)
class DailyRollup:
    """A daily rollup table, the raw table it reads and how to aggregate a run of days.

    ``timestamps`` lists the columns whose days a newly added raw row touches.
    """

    name: str
    model: type[Model]
    source: type[Model]
    timestamps: tuple[str, ...]
    aggregate: Callable[[dt.datetime, dt.datetime], list[Model]]


DAILY_ROLLUPS = (
    DailyRollup("events", DailyEvents, Event, ("occurred_at",), _event_rows),
    DailyRollup("orders", DailyOrders, Order, ("ordered_at",), _order_rows),
    DailyRollup("answers", DailyAnswers, SurveyResponse, ("answered_at",), _answer_rows),
    DailyRollup(
        "deliveries",
        DailyDeliveries,
        Delivery,
        ("created_at", *(field for _name, field in DELIVERY_STEPS)),
        _delivery_rows,
    ),
)


def rollup_days(rollup: DailyRollup, days: Iterable[dt.date]) -> int:
    """Recompute ``rollup`` for ``days`` (each run of consecutive days in one transaction);
    returns the number of rollup rows written."""
    written = 0
    for first, last in day_ranges(days):
        lo, hi = day_bounds(first, last)
        rows = rollup.aggregate(lo, hi)
        with transaction.atomic():
            rollup.model.objects.filter(day__gte=first, day__lte=last).delete()
            rollup.model.objects.bulk_create(rows, batch_size=2_000)
        written += len(rows)
    return written


def _new_row_days(rollup: DailyRollup, after_id: int, up_to_id: int) -> set[dt.date]:
    new = rollup.source.objects.filter(pk__gt=after_id, pk__lte=up_to_id)
    days: set[dt.date] = set()
    for field in rollup.timestamps:
        days.update(
            new.filter(**{f"{field}__isnull": False})
            .annotate(day=local_day(field))
            .values_list("day", flat=True)
            .order_by()
            .distinct()
        )
    return days


def rollups_refresh(*, days_back: int = 0, now: dt.datetime | None = None) -> dict[str, int]:
    """Fold in what arrived since the last run: recompute the days of new raw rows, today,
    yesterday and, with ``days_back``, every day of that many days before today.

    Returns the number of days recomputed per rollup.
    """
    today = timezone.localdate(now or timezone.now())
    recent = {today - dt.timedelta(days=offset) for offset in range(max(days_back, 2))}
    done = {}
    for rollup in DAILY_ROLLUPS:
        state, _created = RollupState.objects.get_or_create(name=rollup.name)
        up_to = rollup.source.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        days = recent | _new_row_days(rollup, state.last_id, up_to)
        rollup_days(rollup, days)
        RollupState.objects.filter(name=rollup.name).update(
            last_id=up_to, refreshed_at=timezone.now()
        )
        done[rollup.name] = len(days)
    return done


def rollups_rebuild() -> dict[str, int]:
    """Recompute every daily rollup from all raw rows; returns the rows written per rollup."""
    written = {}
    for rollup in DAILY_ROLLUPS:
        up_to = rollup.source.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        days = _new_row_days(rollup, 0, up_to)
        with transaction.atomic():
            rollup.model.objects.all().delete()
            written[rollup.name] = rollup_days(rollup, days)
        now = timezone.now()
        RollupState.objects.update_or_create(
            name=rollup.name, defaults={"last_id": up_to, "refreshed_at": now, "rebuilt_at": now}
        )
    return written
