"""Daily rollups: the read models report pages use instead of the raw rows.

One rule for every table: a rollup row is keyed by a **local day** (the current time zone,
Asia/Tokyo by default) and is always recomputed whole from the raw rows of that day: one
transaction deletes the day's rows and inserts the day's aggregates (events, orders and
answers with one ``INSERT … SELECT``, so their rows never travel through Python). A rollup
therefore equals a direct computation on raw data by construction, and refreshing twice
changes nothing.

Which days to recompute (``rollups_refresh``, every minute):

- days of raw rows added since the last run: ``RollupState.last_id`` is the highest id seen,
  and a new row touches the day of each of its timestamps;
- days whose "first order" mark a new completed order may take away: a back-dated order
  becomes its customer's first, so that customer's previous first order is not any more;
- today and yesterday, because feedback lands "now": an open, a click, a conversion counts
  on the day it happened (not on the day the delivery was created), so it only ever
  changes today's row — and yesterday's, for the minute around midnight;
- with ``days_back=N`` every day of the last N (the nightly run uses 35): the rarer changes
  of old rows an id watermark cannot see — an order returned weeks later, a profile merge,
  deleted rows, a row committed after a higher id had already been read.

``rollups_rebuild`` (the ``rebuild_rollups`` command) recomputes every day in one
transaction, so pages keep reading the old rows until it commits. Writers of one rollup are
serialised by a row lock on its ``RollupState`` (PostgreSQL), so an overlapping refresh
never inserts a day twice.

``local_day`` is the local calendar day of a datetime column. Django's ``TruncDate`` runs a
Python function per row on SQLite (13 s for the demo's 1.1M events); in a zone without
daylight saving time (Asia/Tokyo) the day is plain date arithmetic, ``date(col, '+540
minutes')``, which SQLite evaluates natively. PostgreSQL uses ``AT TIME ZONE`` anyway.

Deliveries: the step timestamps (``sent_at``… ``converted_at``) have no index, so the
refresh of today reads the delivery table once per run (one scan, not one per step).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from experience.models import Event, Order, Survey, SurveyResponse
from experience.nps import DETRACTOR_MAX, PROMOTER_MIN
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
RECENT_DAYS = 2  # today and yesterday, recomputed by every refresh
CHUNK_DAYS = 31  # a rebuild aggregates at most this many days per statement


# --- Local days -----------------------------------------------------------------------------


@functools.cache
def fixed_offset_minutes(tzname: str) -> int | None:
    """The zone's UTC offset in minutes when it has been the same since 1970 (no daylight
    saving time, no change of standard time through 2100), else None."""
    try:
        zone = zoneinfo.ZoneInfo(tzname)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    offsets = {
        dt.datetime(year, month, 1, tzinfo=dt.UTC).astimezone(zone).utcoffset()
        for year in range(1970, 2101)
        for month in range(1, 13)
    }
    if len(offsets) != 1:
        return None
    return int(offsets.pop().total_seconds() // 60)


class LocalDate(TruncDate):
    """``TruncDate`` that SQLite computes natively when the zone has a fixed offset."""

    def as_sqlite(self, compiler, connection, **extra_context):
        tzname = self.get_tzname()
        minutes = fixed_offset_minutes(tzname) if tzname else None
        if minutes is None or connection.timezone_name != "UTC":
            return super().as_sql(compiler, connection)
        sql, params = compiler.compile(self.lhs)
        # The modifier is an int formatted by us: a literal keeps SELECT and GROUP BY equal.
        return f"date({sql}, '{minutes:+d} minutes')", params


def local_day(field: str) -> LocalDate:
    """The local calendar day of a datetime column, in the current time zone."""
    return LocalDate(field, tzinfo=timezone.get_current_timezone())


def day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Aware datetimes ``[first 00:00, last+1 00:00)`` in the current time zone."""
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(first, dt.time.min, tzinfo=tz),
        dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def day_ranges(
    days: Iterable[dt.date], *, max_days: int | None = None
) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days ``(first, last)``, each at most ``max_days``
    long."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if (
            ranges
            and ranges[-1][1] + dt.timedelta(days=1) == day
            and (max_days is None or (day - ranges[-1][0]).days < max_days)
        ):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# --- Aggregates of one run of days ------------------------------------------------------------
#
# Each returns either a ``values()`` queryset whose keys are the rollup's columns (inserted
# with INSERT … SELECT) or a list of unsaved rollup rows.


def _event_rows(lo: dt.datetime, hi: dt.datetime) -> QuerySet:
    return (
        Event.objects.filter(occurred_at__gte=lo, occurred_at__lt=hi)
        .annotate(day=local_day("occurred_at"))
        .values("day", "event_type_id", "touchpoint_id", "value_bits")
        .annotate(events=Count("pk"), customers=Count("customer_id", distinct=True))
        .order_by()
    )


def _first_order() -> Q:
    """A completed order with no earlier completed order of the same customer (ties at the
    same instant go to the lower id)."""
    earlier = Order.objects.filter(
        customer_id=OuterRef("customer_id"), status=Order.Status.COMPLETED
    ).filter(
        Q(ordered_at__lt=OuterRef("ordered_at"))
        | Q(ordered_at=OuterRef("ordered_at"), pk__lt=OuterRef("pk"))
    )
    return ~Q(Exists(earlier))


def _order_rows(lo: dt.datetime, hi: dt.datetime) -> QuerySet:
    first = _first_order()
    return (
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


def _answer_rows(lo: dt.datetime, hi: dt.datetime) -> QuerySet:
    nps = Q(survey__kind=Survey.Kind.NPS)
    return (
        SurveyResponse.objects.filter(answered_at__gte=lo, answered_at__lt=hi)
        .annotate(day=local_day("answered_at"))
        .values("day", "survey_id", "touchpoint_id")
        .annotate(
            answers=Count("pk"),
            scored=Count("score"),
            score_sum=Coalesce(Sum("score"), 0),
            promoters=Count("pk", filter=nps & Q(score__gte=PROMOTER_MIN)),
            passives=Count("pk", filter=nps & Q(score__gt=DETRACTOR_MAX, score__lt=PROMOTER_MIN)),
            detractors=Count("pk", filter=nps & Q(score__lte=DETRACTOR_MAX)),
            comments=Count("pk", filter=~Q(comment="")),
        )
        .order_by()
    )


def _delivery_rows(lo: dt.datetime, hi: dt.datetime) -> list[DailyDeliveries]:
    """Each step is counted on the local day of its own timestamp.

    The step timestamps have no index, so each would cost a scan of the deliveries: one
    query reads the rows with any timestamp in ``[lo, hi)`` (one scan) and Python folds
    them, which for the minute's refresh of today is a few hundred rows.
    """
    timestamps = ("created_at", *(field for _name, field in DELIVERY_STEPS))
    touched = Q()
    for field in timestamps:
        touched |= Q(**{f"{field}__gte": lo, f"{field}__lt": hi})
    rows = (
        Delivery.objects.filter(touched)
        .values_list("campaign_id", "status", "revenue", *timestamps)
        .order_by()
    )
    zone = timezone.get_current_timezone()
    names = ("sent", "delivered", "opened", "clicked", "converted", "revenue", "held_out")
    cells: dict[tuple[dt.date, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys((*names, "not_sent"), 0)
    )
    for campaign_id, status, revenue, created_at, *steps in rows.iterator(chunk_size=5_000):
        if lo <= created_at < hi:
            cell = cells[(created_at.astimezone(zone).date(), campaign_id)]
            cell["held_out"] += status == Delivery.Status.HOLDOUT
            cell["not_sent"] += status in NOT_SENT
        if status == Delivery.Status.HOLDOUT:
            continue
        for (name, _field), at in zip(DELIVERY_STEPS, steps, strict=True):
            if at is not None and lo <= at < hi:
                cell = cells[(at.astimezone(zone).date(), campaign_id)]
                cell[name] += 1
                if name == "converted":
                    cell["revenue"] += int(revenue or 0)
    return [
        DailyDeliveries(day=day, campaign_id=campaign_id, **values)
        for (day, campaign_id), values in sorted(cells.items())
        if any(values.values())
    ]


def _first_order_days(after_id: int, up_to_id: int) -> set[dt.date]:
    """Days of the first completed orders of customers with a new completed order: a
    back-dated new order takes the "first order" mark from that earlier one."""
    customers = Order.objects.filter(
        pk__gt=after_id, pk__lte=up_to_id, status=Order.Status.COMPLETED
    ).values("customer_id")
    firsts = (
        Order.objects.filter(
            customer_id__in=customers, status=Order.Status.COMPLETED, pk__lte=after_id
        )
        .values("customer_id")
        .annotate(first=Min("ordered_at"))
        .values_list("first", flat=True)
        .order_by()
    )
    return {timezone.localdate(first) for first in firsts}


@dataclass(frozen=True)
class DailyRollup:
    """A daily rollup table, the raw table it reads and how to aggregate a run of days.

    ``timestamps`` lists the columns whose days a newly added raw row touches;
    ``more_days(after_id, up_to_id)`` adds days that new rows change indirectly.
    """

    name: str
    model: type[Model]
    source: type[Model]
    timestamps: tuple[str, ...]
    aggregate: Callable[[dt.datetime, dt.datetime], QuerySet | list[Model]]
    more_days: Callable[[int, int], set[dt.date]] | None = None


DAILY_ROLLUPS = (
    DailyRollup("events", DailyEvents, Event, ("occurred_at",), _event_rows),
    DailyRollup("orders", DailyOrders, Order, ("ordered_at",), _order_rows, _first_order_days),
    DailyRollup("answers", DailyAnswers, SurveyResponse, ("answered_at",), _answer_rows),
    DailyRollup(
        "deliveries",
        DailyDeliveries,
        Delivery,
        ("created_at", *(field for _name, field in DELIVERY_STEPS)),
        _delivery_rows,
    ),
)
EVENTS_ROLLUP = next(rollup for rollup in DAILY_ROLLUPS if rollup.name == "events")


# --- Writing -------------------------------------------------------------------------------


def _insert(model: type[Model], rows: QuerySet | list[Model]) -> int:
    """Insert aggregate rows: a ``values()`` queryset as one INSERT … SELECT, a list with
    ``bulk_create``; returns the number of rows."""
    if isinstance(rows, list):
        model.objects.bulk_create(rows, batch_size=2_000)
        return len(rows)
    columns = [model._meta.get_field(key).column for key in _value_keys(rows)]
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    sql, params = rows.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM ({sql}) AS aggregates", params
        )
        return cursor.rowcount


def _value_keys(rows: QuerySet) -> list[str]:
    query = rows.query
    return [*query.values_select, *query.annotation_select]


def _lock(rollup: DailyRollup) -> None:
    """Serialise writers of one rollup until the transaction ends (PostgreSQL; SQLite
    serialises writes anyway)."""
    RollupState.objects.get_or_create(name=rollup.name)
    RollupState.objects.select_for_update().filter(name=rollup.name).exists()


def rollup_days(rollup: DailyRollup, days: Iterable[dt.date]) -> int:
    """Recompute ``rollup`` for ``days`` (each run of consecutive days in one transaction);
    returns the number of rollup rows written."""
    written = 0
    for first, last in day_ranges(days, max_days=CHUNK_DAYS):
        lo, hi = day_bounds(first, last)
        with transaction.atomic():
            _lock(rollup)
            rollup.model.objects.filter(day__gte=first, day__lte=last).delete()
            written += _insert(rollup.model, rollup.aggregate(lo, hi))
    return written


def _last_id(rollup: DailyRollup) -> int:
    return rollup.source.objects.aggregate(last=Max("pk"))["last"] or 0


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
    if rollup.more_days is not None and after_id:
        days |= rollup.more_days(after_id, up_to_id)
    return days


def _all_days(rollup: DailyRollup) -> list[dt.date]:
    """Every local day from the source's earliest to its latest timestamp."""
    bounds = rollup.source.objects.aggregate(
        **{f"min_{f}": Min(f) for f in rollup.timestamps},
        **{f"max_{f}": Max(f) for f in rollup.timestamps},
    )
    values = [value for value in bounds.values() if value is not None]
    if not values:
        return []
    return _days_between(timezone.localdate(min(values)), timezone.localdate(max(values)))


def rollups_refresh(*, days_back: int = 0, now: dt.datetime | None = None) -> dict[str, int]:
    """Fold in what arrived since the last run: recompute the days of new raw rows, today,
    yesterday and, with ``days_back``, every day of that many days up to today.

    Returns the number of days recomputed per rollup.
    """
    today = timezone.localdate(now or timezone.now())
    recent = {today - dt.timedelta(days=n) for n in range(max(days_back, RECENT_DAYS))}
    return {rollup.name: _refresh(rollup, recent) for rollup in DAILY_ROLLUPS}


def _refresh(rollup: DailyRollup, days: set[dt.date]) -> int:
    """Recompute ``days`` and the days of rows added since the last run; move the mark."""
    state, _created = RollupState.objects.get_or_create(name=rollup.name)
    up_to = _last_id(rollup)
    days = days | _new_row_days(rollup, state.last_id, up_to)
    rollup_days(rollup, days)
    RollupState.objects.filter(name=rollup.name).update(last_id=up_to, refreshed_at=timezone.now())
    return len(days)


def events_rollup_follow(touched) -> int:
    """Events listener (``experience.pipeline.register_events_listener``): fold the events
    just stored into ``DailyEvents`` at once, in the worker that processed them.

    The every-minute schedule alone left the events rollup up to a minute (plus the
    scheduler's own period) behind ingestion; this keeps it seconds behind. Only the days
    of the new rows are recomputed (no "today and yesterday" pass, no other rollup), so
    the cost follows the batch: one aggregate over the new rows' days. The schedule still
    runs, for orders, answers, deliveries and late commits. Returns 1 when a refresh was
    queued on commit.
    """
    if not touched:
        return 0
    transaction.on_commit(_follow_events)
    return 1


def _follow_events() -> None:
    """After the processing transaction commits (at once outside one): its rows are
    visible, and the refresh does not lengthen the transaction that holds the ingest lock."""
    _refresh(EVENTS_ROLLUP, set())


def rollups_rebuild() -> dict[str, int]:
    """Recompute every daily rollup from all raw rows, each rollup in one transaction, then
    the customer-level read models (``reports.customer_rollups``); returns the rows written
    per daily rollup."""
    written = {}
    for rollup in DAILY_ROLLUPS:
        with transaction.atomic():
            _lock(rollup)
            up_to = _last_id(rollup)
            rollup.model.objects.all().delete()
            written[rollup.name] = rollup_days(rollup, _all_days(rollup))
            now = timezone.now()
            RollupState.objects.filter(name=rollup.name).update(
                last_id=up_to, refreshed_at=now, rebuilt_at=now
            )
    # The customer-level read models (RFM cells, dormancy snapshots, the CLV summary).
    from reports.customer_rollups import clv_summary_rebuild, customer_rollups_refresh

    customer_rollups_refresh()
    clv_summary_rebuild()
    return written
