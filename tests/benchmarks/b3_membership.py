"""B3: materialising segment membership, in full and for the customers that changed.

A benchmark segment "email consent granted" holds about half the company (≈500k members at
1M customers). Two measurements:

- **full**: ``customers.segments.segment_refresh`` of the segment from an empty membership
  (its first computation: ≈500k rows written), against hand-written SQL doing the same set
  change in one transaction (``DELETE … NOT EXISTS``, ``INSERT … SELECT`` driven by the
  consent index, recount). ``before_each`` empties the membership again.
- **incremental**: 1 % of the customers (10k at 1M) changed their email consent, half
  of the members withdrawing and as many non-members granting it;
  ``customers.segments.segment_membership_sync`` brings the segment up to date for them
  (the other dynamic segments are set aside meanwhile, so both sides update one
  segment), against a hand-written ``DELETE … NOT EXISTS`` / ``INSERT … SELECT`` over the
  same ids. ``before_each`` restores those customers' membership as it was before the
  change.

Everything is undone afterwards: the consents flipped back, the segment and its rows
deleted, the other segments' ``computed_at`` restored. Targets (issue 8): full ≤ 5 s,
incremental ≤ 200 ms; ours ≤ 1.5× the reference's median time.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.benchmarks.harness import Result, abab, log, time_ratio

SCENARIO = "B3"
FULL_PAIRS, INCREMENTAL_PAIRS = 5, 7
FULL_TARGET, INCREMENTAL_TARGET = 5.0, 0.200
RATIO_BOUND = 1.5
CHANGED_SHARE = 0.01  # 10k of 1M customers
SEGMENT_NAME = "B3 benchmark: email subscribers"
RULES = {"op": "and", "children": [{"type": "consent", "channel": "email", "status": "granted"}]}

MISSES = """
B3 at 1M on SQLite, first slice: full 5.3 s vs 7.9 s; incremental 4.1 s vs 2.2 s (ratio
1.89). Profile (pyinstrument, 10k ids on the 100k company): CPU was 60 ms of a 250–450 ms
wall time, the rest waiting on the disk (the membership and its indexes written through
the WAL); compiling two 5,000-placeholder IN lists per chunk was 40 % of the CPU. Closed by
design, in two steps: (1) the sync binds the ids as ONE parameter per statement
(``json_each(%s)`` on SQLite, ``unnest(%s::bigint[])`` on PostgreSQL) in chunks of 50k, as
the hand-written SQL does (incremental 4.1 s → 0.86 s); (2) the membership table lost its two
redundant indexes (``segment_id`` alone is the prefix of the unique (segment, customer)
index, and ``customer_id`` was indexed twice: customers migration 0011 drops the indexes
only), so each member is written into two B-trees and the key instead of four
(SQLite incremental 0.86 s → 0.36 s, full 1.85 s → 1.5 s; the reference gains as well, it
writes the same table). What remains: the incremental 200 ms is missed by 1.8× on SQLite,
by the reference too, now CPU-bound (0.32 s CPU of 0.36 s wall): for each of the 10k ids
the rule's consent and customer lookups, the membership probe, and the 5k deletes and 5k
inserts each walk 1M-row B-trees. On PostgreSQL the full refresh was foreign-key checks
(7.3 s for 475k rows, the reference 7.7 s): ``EXPLAIN (ANALYZE, BUFFERS)`` with
``SET CONSTRAINTS ALL IMMEDIATE`` showed the two RI triggers (customer and segment) at
475,168 calls each, ~4.8 s or 62 % of the refresh.
Closed by design: membership is derived data, rewritten by every refresh, and Django's
collector already cascades deletes of segments and customers to it, so its two keys have
no database constraint (``db_constraint=False``, customers migration 0012): full 7.3 s →
3.5 s (met; the reference, on the same table, 3.1 s). The incremental 200 ms is still
missed on both databases. On PostgreSQL ours is 613 ms against the reference's 308 ms in the
benchmark (ratio 2.0, over the 1.5 bound; every pair alike). Outside the benchmark, on the
same company, from an empty segment, ours takes 150–216 ms against 214–272 ms with the
commit itself 2–4 ms and no on-commit work (statements, commit and on-commit hooks timed
apart), so the gap comes from the benchmark's starting state
(full membership restored, 5k to remove and 5k to add): our DELETE is the ORM's
``… AND NOT (customer_id IN (matching))`` where the reference writes ``NOT EXISTS``. Next
step: EXPLAIN the two DELETEs in that state; if the ``NOT IN`` plan is the cost, write the
sync's exits as ``NOT EXISTS`` like its entries. Plan for the incremental on both databases:
evaluate the rule once per change, where it happens: the consent and metrics writers
already know which customers changed which field, so the sync can skip segments whose rules
do not read that field (a field → segments map built when rules are saved), which for a 10k
consent change leaves only consent-based segments.
"""

MEMBERSHIP = "customers_segmentmembership"
MATCHES = """
    SELECT 1 FROM customers_consent k JOIN customers_customer c ON c.id = k.customer_id
    WHERE k.customer_id = {id} AND k.channel = 'email' AND k.status = 'granted'
      AND c.merged_into_id IS NULL"""
FULL_DELETE = f"""
DELETE FROM {MEMBERSHIP} WHERE segment_id = %s
  AND NOT EXISTS ({MATCHES.format(id=f"{MEMBERSHIP}.customer_id")})"""
FULL_INSERT = f"""
INSERT INTO {MEMBERSHIP} (segment_id, customer_id, added_at)
SELECT %s, k.customer_id, %s
FROM customers_consent k JOIN customers_customer c ON c.id = k.customer_id
WHERE k.channel = 'email' AND k.status = 'granted' AND c.merged_into_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM {MEMBERSHIP} e
                  WHERE e.segment_id = %s AND e.customer_id = k.customer_id)"""
RECOUNT = f"""
UPDATE customers_segment SET computed_at = %s,
  member_count = (SELECT COUNT(*) FROM {MEMBERSHIP} WHERE segment_id = %s)
WHERE id = %s"""
# The changed ids travel as one parameter: a JSON array on SQLite, an array on PostgreSQL.
IDS = {
    "sqlite": "IN (SELECT value FROM json_each(%s))",
    "postgresql": "= ANY(%s::bigint[])",
}
INCREMENTAL_DELETE = f"""
DELETE FROM {MEMBERSHIP} WHERE segment_id = %s AND customer_id {{ids}}
  AND NOT EXISTS ({MATCHES.format(id=f"{MEMBERSHIP}.customer_id")})"""
INCREMENTAL_INSERT = f"""
INSERT INTO {MEMBERSHIP} (segment_id, customer_id, added_at)
SELECT %s, c.id, %s FROM customers_customer c
WHERE c.id {{ids}} AND c.merged_into_id IS NULL
  AND EXISTS (SELECT 1 FROM customers_consent k
              WHERE k.customer_id = c.id AND k.channel = 'email' AND k.status = 'granted')
  AND NOT EXISTS (SELECT 1 FROM {MEMBERSHIP} e WHERE e.segment_id = %s AND e.customer_id = c.id)"""
MOVE_COUNT = "UPDATE customers_segment SET member_count = member_count + %s WHERE id = %s"


def _execute(sql: str, params: list) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def _ids_param(ids: list[int]):
    import json

    from django.db import connection

    return json.dumps(ids) if connection.vendor == "sqlite" else ids


def reference_full(segment_id: int) -> int:
    """The full refresh in hand-written SQL: drop who left, add who joined, recount."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with transaction.atomic():
        _execute(FULL_DELETE, [segment_id])
        _execute(FULL_INSERT, [segment_id, now, segment_id])
        _execute(RECOUNT, [now, segment_id, segment_id])
    return _member_count(segment_id)


def reference_incremental(segment_id: int, ids: list[int]) -> int:
    """The same set change for the changed customers only; the count moves by the net."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    ids_sql, ids_param = IDS[connection.vendor], _ids_param(ids)
    with transaction.atomic():
        left = _execute(INCREMENTAL_DELETE.format(ids=ids_sql), [segment_id, ids_param])
        joined = _execute(
            INCREMENTAL_INSERT.format(ids=ids_sql), [segment_id, now, ids_param, segment_id]
        )
        _execute(MOVE_COUNT, [joined - left, segment_id])
    return len(ids)


def _member_count(segment_id: int) -> int:
    from customers.models import SegmentMembership

    return SegmentMembership.objects.filter(segment_id=segment_id).count()


def _members(segment_id: int) -> set[int]:
    from customers.models import SegmentMembership

    return set(
        SegmentMembership.objects.filter(segment_id=segment_id).values_list(
            "customer_id", flat=True
        )
    )


def _empty(segment_id: int) -> None:
    _execute(f"DELETE FROM {MEMBERSHIP} WHERE segment_id = %s", [segment_id])


def _pick_changed(total: int) -> tuple[list[int], list[int]]:
    """Half members to withdraw, half non-members to grant: unmerged, spread over ids."""
    from customers.models import Consent

    half = max(500, round(total * CHANGED_SHARE) // 2)
    email = Consent.objects.filter(channel="email", customer__merged_into__isnull=True)

    def spread(status: str) -> list[int]:
        ids = list(
            email.filter(status=status)
            .order_by("customer_id")
            .values_list("customer_id", flat=True)
        )
        step = max(1, len(ids) // half)
        return ids[::step][:half]

    return spread("granted"), spread("withdrawn")


def _set_email(ids: list[int], status: str) -> None:
    from customers.models import Consent

    for start in range(0, len(ids), 5_000):
        Consent.objects.filter(customer_id__in=ids[start : start + 5_000], channel="email").update(
            status=status
        )


def _restore_membership(segment_id: int, changed: list[int], members: list[int]) -> Callable:
    """A ``before_each``: the changed customers' rows as before the change, count too."""
    from django.db import connection
    from django.utils import timezone

    from customers.models import Segment

    def restore() -> None:
        ids_sql = IDS[connection.vendor]
        _execute(
            f"DELETE FROM {MEMBERSHIP} WHERE segment_id = %s AND customer_id {ids_sql}",
            [segment_id, _ids_param(changed)],
        )
        added = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {MEMBERSHIP} (segment_id, customer_id, added_at) VALUES (%s, %s, %s)",
                [(segment_id, pk, added) for pk in members],
            )
        Segment.objects.filter(pk=segment_id).update(member_count=_member_count(segment_id))

    return restore


def run(*, database: str, size: str) -> list[Result]:
    from django.db import transaction

    from config.org.models import Department
    from customers.models import Customer, Segment
    from customers.segments import segment_membership_sync, segment_refresh

    customers = Customer.objects.count()
    Segment.objects.filter(name=SEGMENT_NAME).delete()  # a crashed run's leftover
    segment = Segment.objects.create(
        name=SEGMENT_NAME,
        kind=Segment.Kind.DYNAMIC,
        rules=RULES,
        owner_department=Department.objects.order_by("pk").first(),
    )
    others = dict(
        Segment.objects.filter(kind=Segment.Kind.DYNAMIC, computed_at__isnull=False)
        .exclude(pk=segment.pk)
        .values_list("pk", "computed_at")
    )
    withdraw: list[int] = []
    grant: list[int] = []
    try:
        # Full: both sides must produce the same membership from empty.
        members = segment_refresh(segment=segment)
        expected = _members(segment.pk)
        _empty(segment.pk)
        reference_full(segment.pk)
        if _members(segment.pk) != expected:
            raise AssertionError("B3: the full refreshes disagree")
        log(f"B3 on {database} ({size}, {customers} customers): {members} members")
        full_ours, full_ref = abab(
            lambda: segment_refresh(segment=segment),
            lambda: reference_full(segment.pk),
            pairs=FULL_PAIRS,
            before_each=lambda: _empty(segment.pk),
            log=log,
        )

        # Incremental: the starting state is the full membership; then consents change.
        _empty(segment.pk)
        segment_refresh(segment=segment)
        withdraw, grant = _pick_changed(customers)
        changed = sorted(withdraw + grant)
        _set_email(withdraw, "withdrawn")
        _set_email(grant, "granted")
        Segment.objects.filter(pk__in=others).update(computed_at=None)
        restore = _restore_membership(segment.pk, changed, withdraw)
        restore()
        segment_membership_sync(customer_ids=changed)
        after = _members(segment.pk)
        restore()
        reference_incremental(segment.pk, changed)
        if _members(segment.pk) != after or not (set(grant) <= after) or set(withdraw) & after:
            raise AssertionError("B3: the incremental refreshes disagree")
        inc_ours, inc_ref = abab(
            lambda: (segment_membership_sync(customer_ids=changed), len(changed))[1],
            lambda: reference_incremental(segment.pk, changed),
            pairs=INCREMENTAL_PAIRS,
            before_each=restore,
            log=log,
        )
    finally:
        with transaction.atomic():
            _set_email(withdraw, "granted")
            _set_email(grant, "withdrawn")
            for pk, computed_at in others.items():
                Segment.objects.filter(pk=pk).update(computed_at=computed_at)
            _empty(segment.pk)
            segment.delete()

    full_ours.items = full_ref.items = members
    full_ratio = time_ratio(full_ours, full_ref)
    inc_ratio = time_ratio(inc_ours, inc_ref)
    return [
        Result(
            scenario=SCENARIO,
            name=f"segment refresh, full, {members:,} members of {customers:,}",
            database=database,
            ours=full_ours,
            reference=full_ref,
            reference_label="hand-written DELETE…NOT EXISTS + INSERT…SELECT",
            comparison=f"time ours/ref ≤ {RATIO_BOUND}",
            ratio=full_ratio,
            target=f"≤ {FULL_TARGET:.0f} s",
            met=full_ours.median <= FULL_TARGET and full_ratio <= RATIO_BOUND,
            notes="From an empty membership (first computation); rule: email consent granted.",
            extra={"members": members, "customers": customers, "size": size},
        ),
        Result(
            scenario=SCENARIO,
            name=f"segment refresh, incremental, {len(changed):,} customers changed",
            database=database,
            ours=inc_ours,
            reference=inc_ref,
            reference_label="hand-written DELETE…NOT EXISTS + INSERT…SELECT on the ids",
            comparison=f"time ours/ref ≤ {RATIO_BOUND}",
            ratio=inc_ratio,
            target=f"≤ {INCREMENTAL_TARGET * 1000:.0f} ms",
            met=inc_ours.median <= INCREMENTAL_TARGET and inc_ratio <= RATIO_BOUND,
            notes=(
                f"{len(withdraw):,} members withdrew email consent and {len(grant):,} "
                "non-members granted it; ours = segment_membership_sync(customer_ids=…) "
                "with this segment the only computed dynamic one."
            ),
            extra={"changed": len(changed), "customers": customers, "size": size},
        ),
    ]
