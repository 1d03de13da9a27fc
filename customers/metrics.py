"""CustomerMetrics, computed set-based: one upsert per chunk of customers, never row by row.

The order, event and survey tables belong to the outer circles, which this app may not
import; they contribute through :func:`register_metric_source`. A source receives the
customer scope and the time of the rebuild, and returns querysets grouped by
``customer_id`` whose other columns are named after ``CustomerMetrics`` fields
(``order_count``, ``revenue_total``, ``first_order_at``, ``last_order_at``,
``event_count``, ``last_event_at``, ``last_event_by_type``, ``last_nps``,
``lead_score``). :func:`metrics_rebuild` joins them onto the customer table in one
``INSERT … SELECT … ON CONFLICT DO UPDATE`` per chunk (SQLite and PostgreSQL alike), then
derives:

* ``average_order_value`` = revenue ÷ orders, rounded to the yen;
* RFM scores 1–5 over the customers with orders: the four quintile boundaries (the last
  value of each of the first four fifths, in ascending order) of last
  order time, order count and revenue are read from the whole population, and a customer
  scores 1 plus the number of boundaries their value is *above* (so ties share a score and
  the many one-time buyers all get frequency 1);
* ``Customer.lifecycle_stage``: prospect (no order), churned (last order over 365 days
  ago), dormant (180–365 days), loyal (5+ orders, or R, F and M all 4+), repeat (2–4
  orders), first purchase (one recent order).

With ``customer_ids`` only those customers are recomputed (the incremental path called by
ingestion and imports); their RFM scores are placed against the current boundaries of
everyone (re-read at most every ten minutes once there are 10k buyers), never a rescan of
every customer's orders and events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Protocol

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from customers.models import Customer, CustomerMetrics, Identity, LifecycleStage

CHUNK = 20_000
ID_CHUNK = 5_000
DORMANT_AFTER = dt.timedelta(days=180)
CHURNED_AFTER = dt.timedelta(days=365)
LOYAL_ORDERS = 5
REUSE_BOUNDARIES_FROM = 10_000
BOUNDARY_TTL = 600
BOUNDARY_CACHE_KEY = "customers:metrics:rfm-boundaries"

#: Fields a metric source may fill, with the value of a customer it has no row for.
SOURCE_FIELDS: dict[str, str] = {
    "identity_count": "0",
    "order_count": "0",
    "revenue_total": "0",
    "first_order_at": "NULL",
    "last_order_at": "NULL",
    "event_count": "0",
    "last_event_at": "NULL",
    "last_event_by_type": "{}",  # replaced by the backend's empty-JSON literal
    "last_nps": "NULL",
    "lead_score": "0",
}


class MetricSource(Protocol):
    def __call__(self, *, scope: dict, now: dt.datetime) -> Iterable[QuerySet]: ...


_sources: list[MetricSource] = []


def register_metric_source(source: MetricSource) -> MetricSource:
    """Add a source of per-customer aggregates; usable as a decorator, idempotent."""
    if source not in _sources:
        _sources.append(source)
    return source


def metric_sources() -> list[MetricSource]:
    return list(_sources)


@register_metric_source
def identity_metrics(*, scope: dict, now: dt.datetime) -> list[QuerySet]:
    """Circle ①'s own contribution: how many identifiers each person has."""
    return [
        Identity.objects.filter(**scope)
        .order_by()
        .values("customer_id")
        .annotate(identity_count=Count("pk"))
    ]


# --- expressions the sources use --------------------------------------------------------


class IsoTimestamp(Func):
    """A UTC timestamp as ISO-8601 text (``2026-05-01T09:30:00Z``) on either database."""

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="strftime('%%%%Y-%%%%m-%%%%dT%%%%H:%%%%M:%%%%SZ', %(expressions)s)",
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template=(
                "to_char((%(expressions)s) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
        )


class JSONStripNulls(Func):
    """A JSON object without its null members (keys of types never seen)."""

    output_field = JSONField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # RFC 7396 merge patch: a null member in the patch means "absent".
        return self.as_sql(compiler, connection, template="json_patch('{}', %(expressions)s)")

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="jsonb_strip_nulls(%(expressions)s)")


# --- rebuild ----------------------------------------------------------------------------


def metrics_rebuild(
    *,
    customer_ids: Iterable[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Recompute CustomerMetrics (and lifecycle stage) of all or some customers.

    Returns how many profiles were computed; merged-away profiles have no metrics.
    ``progress(done, total)`` is called after each chunk. ``now`` (default: the current
    time) anchors recency windows, so a history generated up to a given moment scores the
    same whenever it is computed.
    """
    now = now or timezone.now()
    scopes = list(_scopes(customer_ids))
    total = sum(size for _scope, size in scopes)
    done = 0
    written = 0
    for scope, size in scopes:
        with transaction.atomic():
            written += _upsert_aggregates(scope, now)
        done += size
        if progress:
            progress(done, total)
    if not scopes:
        return 0
    boundaries = _rfm_boundaries(reuse=customer_ids is not None)
    for scope, _size in scopes:
        with transaction.atomic():
            _score(scope, boundaries, now)
    return written


def _scopes(customer_ids: Iterable[int] | None) -> Iterable[tuple[dict, int]]:
    """Lookups on ``customer_id`` that cut the work into chunks, with their sizes."""
    if customer_ids is not None:
        ids = sorted({int(pk) for pk in customer_ids})
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            yield {"customer_id__in": chunk}, len(chunk)
        return
    first = Customer.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    if first is None:
        return
    for low in range(first, last + 1, CHUNK):
        high = min(low + CHUNK, last + 1)
        yield {"customer_id__gte": low, "customer_id__lt": high}, high - low


def _customer_scope_sql(scope: dict, alias: str) -> tuple[str, list]:
    if "customer_id__in" in scope:
        ids = scope["customer_id__in"]
        return f"{alias}.id IN ({', '.join(['%s'] * len(ids))})", list(ids)
    return f"{alias}.id >= %s AND {alias}.id < %s", [
        scope["customer_id__gte"],
        scope["customer_id__lt"],
    ]


def _empty_json() -> str:
    return "'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"


def _upsert_aggregates(
    scope: dict,
    now: dt.datetime,
    *,
    sources: Iterable[MetricSource] | None = None,
    replace: bool = True,
) -> int:
    """One ``INSERT … SELECT … ON CONFLICT`` for the customers of ``scope``: every metric
    source (or only ``sources``) joined in; existing rows updated, or kept (``replace``)."""
    CustomerMetrics.objects.filter(customer__merged_into__isnull=False, **scope).delete()
    qn = connection.ops.quote_name
    joins: list[str] = []
    params: list = []
    provided: dict[str, str] = {}
    index = 0
    for source in _sources if sources is None else sources:
        for queryset in source(scope=scope, now=now):
            sql, source_params = queryset.query.get_compiler(connection=connection).as_sql()
            alias = f"s{index}"
            index += 1
            joins.append(f"LEFT JOIN ({sql}) {alias} ON {alias}.customer_id = c.id")
            params.extend(source_params)
            for name in queryset.query.annotation_select:
                if name not in SOURCE_FIELDS:
                    raise ValueError(f"metric source {source!r} returns unknown field {name!r}")
                provided[name] = f"{alias}.{qn(name)}"

    columns: dict[str, str] = {}
    for name, default in SOURCE_FIELDS.items():
        default_sql = _empty_json() if name == "last_event_by_type" else default
        columns[name] = (
            f"COALESCE({provided[name]}, {default_sql})" if name in provided else default_sql
        )
    columns["average_order_value"] = (
        f"CASE WHEN {columns['order_count']} > 0 "
        f"THEN ROUND({columns['revenue_total']} * 1.0 / {columns['order_count']}) ELSE 0 END"
    )
    columns["updated_at"] = "%s"
    where, where_params = _customer_scope_sql(scope, "c")
    names = list(columns)
    table = qn(CustomerMetrics._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(qn(n) for n in ['customer_id', *names])}) "
        f"SELECT c.id, {', '.join(columns[n] for n in names)} "
        f"FROM {qn(Customer._meta.db_table)} c {' '.join(joins)} "
        f"WHERE c.merged_into_id IS NULL AND {where} "
        f"ON CONFLICT ({qn('customer_id')}) "
        + (
            "DO UPDATE SET " + ", ".join(f"{qn(n)} = excluded.{qn(n)}" for n in names)
            if replace
            else "DO NOTHING"
        )
    )
    # Placeholders appear in order: select list (updated_at), joins, where.
    all_params = [connection.ops.adapt_datetimefield_value(now), *params, *where_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        return max(cursor.rowcount, 0)


_RFM_DIMENSIONS = {
    "rfm_recency": "last_order_at",
    "rfm_frequency": "order_count",
    "rfm_monetary": "revenue_total",
}


def _rfm_boundaries(*, reuse: bool) -> dict[str, list]:
    """The four quintile boundaries of each RFM dimension over customers with orders.

    Reading them costs ordered scans of every buyer (about 0.9 s at 35k buyers on SQLite),
    too much for each ingestion batch; with many buyers they drift slowly, so the
    incremental path reuses the ones cached by the last call for ``BOUNDARY_TTL``.
    """
    buyers = CustomerMetrics.objects.filter(order_count__gt=0)
    count = buyers.count()
    if reuse and count >= REUSE_BOUNDARIES_FROM:
        cached = cache.get(BOUNDARY_CACHE_KEY)
        if cached is not None:
            return cached
    boundaries: dict[str, list] = {}
    for score, column in _RFM_DIMENSIONS.items():
        ordered = buyers.order_by(column).values_list(column, flat=True)
        boundaries[score] = (
            [ordered[max(count * k // 5 - 1, 0)] for k in range(1, 5)] if count else []
        )
    if count >= REUSE_BOUNDARIES_FROM:
        cache.set(BOUNDARY_CACHE_KEY, boundaries, BOUNDARY_TTL)
    return boundaries


def _score(scope: dict, boundaries: dict[str, list], now: dt.datetime) -> None:
    """RFM scores and lifecycle stage of the customers of ``scope``, in two updates."""
    updates = {}
    for score, column in _RFM_DIMENSIONS.items():
        above = [
            Case(When(**{f"{column}__gt": bound}, then=Value(1)), default=Value(0))
            for bound in boundaries[score]
        ]
        expression = Value(1)
        for term in above:
            expression = expression + term
        updates[score] = Case(
            When(order_count=0, then=Value(None)),
            default=expression,
            output_field=IntegerField(),
        )
    CustomerMetrics.objects.filter(**scope).update(**updates)

    stage = (
        CustomerMetrics.objects.filter(customer_id=OuterRef("pk"))
        .annotate(stage=lifecycle_stage_expression(now))
        .values("stage")[:1]
    )
    customer_scope = {key.replace("customer_id", "pk"): value for key, value in scope.items()}
    Customer.objects.filter(
        merged_into__isnull=True, metrics__isnull=False, **customer_scope
    ).exclude(lifecycle_stage=Subquery(stage)).update(lifecycle_stage=Subquery(stage))


def lifecycle_stage_expression(now: dt.datetime) -> Case:
    """The lifecycle stage as a SQL expression over CustomerMetrics fields."""
    top_rfm = Q(rfm_recency__gte=4, rfm_frequency__gte=4, rfm_monetary__gte=4)
    return Case(
        When(order_count=0, then=Value(LifecycleStage.PROSPECT)),
        When(last_order_at__lt=now - CHURNED_AFTER, then=Value(LifecycleStage.CHURNED)),
        When(last_order_at__lt=now - DORMANT_AFTER, then=Value(LifecycleStage.DORMANT)),
        When(Q(order_count__gte=LOYAL_ORDERS) | top_rfm, then=Value(LifecycleStage.LOYAL)),
        When(order_count__gte=2, then=Value(LifecycleStage.REPEAT)),
        default=Value(LifecycleStage.FIRST_PURCHASE),
        output_field=CharField(),
    )


def metrics_insert_new(*, customer_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Metrics of people created a moment ago, reading only their identifiers.

    A profile an import just created has no orders, events or answers yet, only the
    identifiers it was created with, so of every metric source only circle ①'s own
    (:func:`identity_metrics`) can give it a value; the rest are the defaults, with no
    RFM scores and the default lifecycle stage. Rows that exist are left as they are.
    Returns how many rows were written.
    """
    now = now or timezone.now()
    written = 0
    for scope, _size in _scopes(customer_ids):
        with transaction.atomic():
            written += _upsert_aggregates(scope, now, sources=[identity_metrics], replace=False)
    return written
