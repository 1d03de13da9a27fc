"""B2: the live count of a segment with five mixed conditions, over every customer.

Ours is ``customers.segments.segment_count`` — what the builder's count preview and the
segments API call: validate the rule tree, compile it to ONE query (the metrics join plus
``EXISTS`` sub-queries) and ``COUNT(*)`` it. The reference asks the same question in SQL
written by hand for the database at hand (the event type id looked up once beforehand, as a
person writing the query would). Both counts must agree before anything is timed.

Targets (issue 8): p95 ≤ 250 ms on SQLite, ≤ 150 ms on PostgreSQL; ours ≤ 1.2× the
reference's median time.
"""

from __future__ import annotations

import datetime as dt

from tests.benchmarks.harness import Result, abab, log, time_ratio

SCENARIO = "B2"
PAIRS = 7
TARGET_P95 = {"sqlite": 0.250, "postgresql": 0.150}
RATIO_BOUND = 1.2
EVENT_DAYS, ORDER_DAYS = 30, 365
RANKS = ["silver", "gold", "platinum"]

MISSES = """
B2 at 1M (before this slice: SQLite 2.57 s vs 1.26 s hand-written, ratio 2.03). Profile
(EXPLAIN QUERY PLAN + timings on the 100k company): both queries scanned all customers and
probed consent/event/order per row; ours also evaluated the JSON attribute three times per
row (JSON_TYPE key test, JSON_TYPE + JSON_EXTRACT in Django's CASE) and each value once more.
Closed by design: attribute eq/in compiles on SQLite to ONE ``COALESCE(JSON_EXTRACT(…) IN
(…), 0)`` (still two-valued), and customers migration 0010 adds the covering index
``customers_metrics_nps_idx (last_nps, customer_id)`` so the NPS range drives the plan (6 %
of customers) for ours and the reference alike (100k company: 46 vs 30 ms, was 160 vs 115).
What remains at 1M: the plan still visits every promoter (~60k) and probes three EXISTS per
row, so SQLite stays above 250 ms on this loaded machine. Plan: typed, indexed columns for
CHOICE attributes (a generated column per declared attribute, or an attribute-value side
table) so the planner can intersect the rank and NPS indexes, and an index Event
(customer, event_type, occurred_at) for event-in-window conditions.
"""

# Silver-or-better members, subscribed by email, who looked at a product in the last 30
# days, completed an order within a year and last answered the NPS survey 9 or 10.
RULES = {
    "op": "and",
    "children": [
        {"type": "attribute", "key": "member_rank", "op": "in", "value": RANKS},
        {"type": "consent", "channel": "email", "status": "granted"},
        {"type": "event", "event": "product_view", "within_days": EVENT_DAYS},
        {"type": "order", "within_days": ORDER_DAYS},
        {"type": "nps", "category": "promoter"},
    ],
}

_RANK_SQL = {
    "sqlite": "json_extract(c.attributes, '$.member_rank')",
    "postgresql": "c.attributes ->> 'member_rank'",
}
REFERENCE_SQL = """
SELECT COUNT(*)
FROM customers_customer c
JOIN customers_customermetrics m ON m.customer_id = c.id
WHERE c.merged_into_id IS NULL
  AND {rank} IN (%s, %s, %s)
  AND EXISTS (SELECT 1 FROM customers_consent k
              WHERE k.customer_id = c.id AND k.channel = 'email' AND k.status = 'granted')
  AND EXISTS (SELECT 1 FROM experience_event e
              WHERE e.customer_id = c.id AND e.event_type_id = %s AND e.occurred_at >= %s)
  AND EXISTS (SELECT 1 FROM experience_order o
              WHERE o.customer_id = c.id AND o.status = 'completed' AND o.ordered_at >= %s)
  AND m.last_nps BETWEEN 9 AND 10
"""


def reference_count(event_type_id: int, now: dt.datetime) -> int:
    """The same question in hand-written SQL."""
    from django.db import connection

    sql = REFERENCE_SQL.format(rank=_RANK_SQL[connection.vendor])
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        *RANKS,
        event_type_id,
        adapt(now - dt.timedelta(days=EVENT_DAYS)),
        adapt(now - dt.timedelta(days=ORDER_DAYS)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


SCHEMA = ("customers", "0010_metrics_nps_index")


def ensure_schema() -> None:
    """Apply the customers migration the segment queries rely on, if the company predates it.

    The benchmark companies are seeded once and reused; a migration added since is not in
    them. Only this app's migration (and whatever it depends on) is applied, with fresh
    planner statistics for the new index on SQLite. Both sides of B2 plan with it.
    """
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    if MigrationRecorder(connection).migration_qs.filter(app=SCHEMA[0], name=SCHEMA[1]).exists():
        return
    log(f"applying migration {'.'.join(SCHEMA)} to this company")
    call_command("migrate", *SCHEMA, verbosity=0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customermetrics")


def run(*, database: str, size: str) -> list[Result]:
    from django.db import transaction
    from django.utils import timezone

    from customers.models import Customer
    from customers.segments import segment_count, segment_queryset
    from experience.models import EventType

    ensure_schema()
    event_type_id = EventType.objects.get(name="product_view").pk
    for _attempt in range(3):  # another process may be writing to the company meanwhile
        now = timezone.now()
        with transaction.atomic():  # one snapshot for both counts on SQLite
            expected = reference_count(event_type_id, now)
            got = segment_queryset(RULES, now=now).count()
        if got == expected:
            break
    else:
        raise AssertionError(f"B2: the compiler counts {got}, the hand-written SQL {expected}")
    customers = Customer.objects.count()
    log(f"B2 on {database} ({size}, {customers} customers): {expected} match")

    ours, reference = abab(
        lambda: segment_count(RULES),
        lambda: reference_count(event_type_id, timezone.now()),
        pairs=PAIRS,
        log=log,
    )
    ratio = time_ratio(ours, reference)
    target = TARGET_P95[database]
    met = ours.p95 <= target and ratio <= RATIO_BOUND
    return [
        Result(
            scenario=SCENARIO,
            name=f"segment count, 5 mixed conditions, {customers:,} customers",
            database=database,
            ours=ours,
            reference=reference,
            reference_label="hand-written SQL (same count)",
            comparison=f"time ours/ref ≤ {RATIO_BOUND}",
            ratio=ratio,
            target=f"p95 ≤ {target * 1000:.0f} ms",
            met=met,
            notes=(
                f"{expected:,} customers match: member_rank in silver/gold/platinum AND email "
                f"consent granted AND product_view within {EVENT_DAYS} days AND a completed "
                f"order within {ORDER_DAYS} days AND NPS promoter."
            ),
            extra={"count": expected, "customers": customers, "size": size},
        )
    ]
