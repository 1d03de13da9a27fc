"""B1: the ingest API, 1,000 events per request, identity resolution included.

Ours: ``POST /api/v1/events`` through Django's test client (every middleware, token
authentication, throttling, the real view and ``experience.ingest.events_ingest``), one
client, ``REQUESTS`` requests of 1,000 events each per run. The JSON bodies are built
before timing. Each request mixes people as a web shop sends them: about 70 % of the
people are known to the company (their cookie, email, app user ID or phone, read from the
company's identities), 30 % are new (a fresh cookie, a third of them also an email), five
events per person (page, product, cart, search views with properties fitting the types'
schemas). The follow-up work (metrics, segment membership, situations) is owed as one
``EventFollowUp`` row per request, written with the events; a drain task is queued for the
worker only when none is due (once per batch window), as in production. The drain itself
is not part of the figure: before every run the rows of the previous one are deleted, as a
worker would have drained them.

Reference: the SAME rows that our path stored (read back after the warm-up run: resolved
customer ids, type and touchpoint ids, properties as stored) inserted raw into the events
table, 1,000 rows per transaction like ours: ``executemany`` on SQLite, ``COPY`` on
PostgreSQL (the database's own bulk-load limit).

Before every run (untimed) what the previous run stored is deleted: its events and the
identities it created (both carry this benchmark's source). The profiles it created stay
until the end (the reference's rows point at the warm-up's), so every run of ours
resolves and creates the same people again. On PostgreSQL every storing transaction takes
the ingest advisory lock (``experience.ingest.INGEST_LOCK``): single-client throughput.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random

from django.db import connection, transaction

from tests.benchmarks.harness import Result, abab, log, rate_ratio

MISSES = """
The ratio target is met at the large company since the redesign (SQLite 0.52: ours 4.7k/s
against 9.1k/s raw executemany); the absolute 100k/80k events/s is out of reach of the
reference itself, which at 1M customers and 10M events stores only ~9k/s on SQLite and
~12k/s with COPY on PostgreSQL at 1,000 rows per transaction on this shared 2-core machine
(wall time 1.5-6x CPU time: page-cache misses on a 6 GB file and the other helpers' load).
Done: the events table lost its two redundant foreign-key indexes (customer_id and
touchpoint_id lead composite indexes; 7 -> 5 B-trees per row; migration 0005 drops the
indexes only, no table rebuild); the follow-up is owed as ONE EventFollowUp row written in
the storing transaction by one INSERT … SELECT … RETURNING, and a drain task is queued only
when none is due (once per batch window) instead of a q2 enqueue per request (pickle, sign,
extra committed insert: 16 % of the profile); identity resolution gets one entry per
distinct person (a batch of 1,000 events names ~200 people), not per item.
Remaining profile (CPU, SQLite large: ours 4.6 s per 50k events vs 1.9 s for the raw
insert): identity resolution (union-find, new profiles and identities: 3,009 new people
per run) and item validation in Python are most of the 2.7 s difference; wall time is
dominated by random page reads of the identity, customer and event indexes.
Plan to reach the absolute target: (1) an append-only inbox table without secondary
indexes (COPY/executemany speed, ~0.1 ms per event) that the API writes to after
validation, folded into events by the worker in large set-based batches (identity
resolution per 50k events instead of per 1k, sorted index inserts); (2) monthly partitions
of events on PostgreSQL (DESIGN §7) so the hot partition's indexes stay shallow and cached;
(3) validation compiled per event type (one closure per schema, identifiers normalised
once per distinct value) and resolve_customers taking already-normalised keys (it
normalises again: customers/identity.py, owned by the import helper); (4) several clients:
SQLite serialises writers, PostgreSQL serialises storing transactions on INGEST_LOCK, so a
second client only overlaps validation (about a third of the CPU).
"""
SOURCE = "bench-b1"
REQUESTS = int(os.environ.get("B1_REQUESTS", "50"))
EVENTS_PER_REQUEST = 1_000
EVENTS_PER_PERSON = 5
KNOWN_SHARE = 0.7
TARGETS = {"sqlite": 100_000, "postgresql": 80_000}
MIN_RATIO = 0.35
PAIRS = 5
EVENT_COLUMNS = (
    "customer_id",
    "event_type_id",
    "touchpoint_id",
    "occurred_at",
    "source",
    "event_id",
    "properties",
    "value_bits",
    "received_at",
)


def _known_people(count: int) -> list[dict[str, str]]:
    """Identifiers of ``count`` known people, one kind each, spread over the table."""
    from customers.models import Identity

    kinds = ["cookie", "email", "app", "phone"]
    people: list[dict[str, str]] = []
    per_kind = count // len(kinds) + 1
    for kind in kinds:
        rows = Identity.objects.filter(kind=kind).values_list("customer_id", "value")
        total = rows.count()
        step = max(total // per_kind, 1)
        seen: set[int] = set()
        for customer_id, value in rows.order_by("pk")[: step * per_kind : step]:
            if customer_id not in seen:
                seen.add(customer_id)
                people.append({kind: value})
    random.Random(8).shuffle(people)
    return people[:count]


def _event(rng: random.Random, number: int, identifiers: dict, when: dt.datetime) -> dict:
    sku = f"FL{rng.randrange(1, 400):03d}-{rng.randrange(1, 4)}"
    price = rng.choice([1800, 2400, 3200, 4400, 5500, 8800])
    kind = rng.random()
    if kind < 0.45:
        event = {"type": "page_view", "properties": {"path": f"/c/{rng.randrange(60)}"}}
    elif kind < 0.8:
        event = {"type": "product_view", "properties": {"sku": sku, "price": price}}
    elif kind < 0.9:
        event = {"type": "search", "properties": {"query": rng.choice(["rose", "蘭", "gift"])}}
    else:
        event = {
            "type": "add_to_cart",
            "properties": {"sku": sku, "price": price, "quantity": rng.randrange(1, 4)},
            "values": ["convenience"],
        }
    event.update(
        occurred_at=when.isoformat(timespec="seconds"),
        event_id=f"b1-{number:08d}",
        identifiers=identifiers,
        touchpoint=rng.choice(["web-shop", "web-shop", "app"]),
    )
    return event


def build_bodies(known: list[dict[str, str]]) -> list[bytes]:
    """The request bodies of one run (same every run: same event_ids, same people)."""
    rng = random.Random(1)
    jst = dt.timezone(dt.timedelta(hours=9))
    start = dt.datetime.now(jst).replace(microsecond=0) - dt.timedelta(days=2)
    people_per_request = EVENTS_PER_REQUEST // EVENTS_PER_PERSON
    bodies = []
    number = 0
    known_at = 0
    for request in range(REQUESTS):
        events = []
        for person in range(people_per_request):
            if rng.random() < KNOWN_SHARE and known_at < len(known):
                identifiers = known[known_at]
                known_at += 1
            else:
                identifiers = {"cookie": f"b1c-{request:03d}-{person:04d}"}
                if rng.random() < 1 / 3:
                    identifiers["email"] = f"b1.{request}.{person}@example.jp"
            when = start + dt.timedelta(seconds=rng.randrange(0, 36 * 3600))
            for _ in range(EVENTS_PER_PERSON):
                when += dt.timedelta(seconds=rng.randrange(5, 90))
                events.append(_event(rng, number, identifiers, when))
                number += 1
        rng.shuffle(events)
        bodies.append(json.dumps({"events": events}, ensure_ascii=False).encode())
    return bodies


def _table() -> str:
    from experience.models import Event

    return connection.ops.quote_name(Event._meta.db_table)


def _delete_stored() -> None:
    from customers.models import Identity

    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table()} WHERE {quote('source')} = %s", [SOURCE])
        cursor.execute(
            f"DELETE FROM {quote(Identity._meta.db_table)} WHERE {quote('source')} = %s",
            [SOURCE],
        )


def _delete_follow_ups(newest: int) -> None:
    """What a worker's drain would have done with the follow-up rows of a run (untimed)."""
    from experience.models import EventFollowUp

    EventFollowUp.objects.filter(pk__gt=newest).delete()


def _migrate_experience() -> None:
    """Apply experience's schema changes a cached company predates (dropped indexes, the
    follow-up table): quick DDL, no table rebuild."""
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "experience"]
    if executor.migration_plan(targets):
        log("B1: applying experience migrations to the company")
        call_command("migrate", "experience", verbosity=0)


def _delete_created(newest_customer: int, newest_task: int, newest_follow_up: int) -> None:
    from django_q.models import OrmQ

    from customers.models import Customer

    _delete_stored()
    _delete_follow_ups(newest_follow_up)
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(Customer._meta.db_table)} WHERE {quote('id')} > %s",
            [newest_customer],
        )
        cursor.execute(
            f"DELETE FROM {quote(OrmQ._meta.db_table)} WHERE {quote('id')} > %s", [newest_task]
        )


def _stored_rows() -> list[tuple]:
    """The rows our path stored, as the driver takes them back (text on SQLite)."""
    quote = connection.ops.quote_name
    if connection.vendor == "sqlite":
        # ``|| ''`` drops the declared type, so no converter turns the text into objects.
        columns = [f"{quote(c)} || ''" if c.endswith("_at") else quote(c) for c in EVENT_COLUMNS]
    else:
        columns = [f"{quote(c)}::text" if c == "properties" else quote(c) for c in EVENT_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {_table()} WHERE {quote('source')} = %s "
            f"ORDER BY {quote('id')}",
            [SOURCE],
        )
        return cursor.fetchall()


def reference_insert(rows: list[tuple]) -> int:
    """Insert ``rows`` raw, ``EVENTS_PER_REQUEST`` per transaction."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in EVENT_COLUMNS)
    for start in range(0, len(rows), EVENTS_PER_REQUEST):
        chunk = rows[start : start + EVENTS_PER_REQUEST]
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {_table()} ({columns}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO {_table()} ({columns}) "
                    f"VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})",
                    chunk,
                )
    return len(rows)


def run(*, database: str, size: str) -> list[Result]:
    from django.db.models import Max
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django_q.models import OrmQ

    from config.org.models import ApiToken, Department
    from config.org.tokens import api_token_create
    from customers.models import Customer
    from experience.models import EventFollowUp

    setup_test_environment()
    _migrate_experience()
    newest_follow_up = EventFollowUp.objects.aggregate(m=Max("pk"))["m"] or 0
    newest_customer = Customer.objects.aggregate(m=Max("pk"))["m"] or 0
    newest_task = OrmQ.objects.aggregate(m=Max("pk"))["m"] or 0
    _delete_stored()
    ApiToken.objects.filter(source=SOURCE).delete()
    _token, secret = api_token_create(
        name="B1 benchmark",
        department=Department.objects.order_by("pk").first(),
        source=SOURCE,
        by=None,
    )
    people = REQUESTS * EVENTS_PER_REQUEST // EVENTS_PER_PERSON
    bodies = build_bodies(_known_people(int(people * KNOWN_SHARE) + 1))
    total = REQUESTS * EVENTS_PER_REQUEST
    client = Client(headers={"authorization": f"Bearer {secret}"})

    def ours() -> int:
        accepted = 0
        for body in bodies:
            response = client.post("/api/v1/events", body, content_type="application/json")
            if response.status_code != 200:
                raise RuntimeError(
                    f"ingest answered {response.status_code}: {response.content[:300]}"
                )
            data = response.json()
            if data["rejected"]:
                raise RuntimeError(f"rejected items: {data['rejected'][:3]}")
            accepted += data["accepted"]
        return accepted

    def before_each() -> None:
        _delete_stored()
        _delete_follow_ups(newest_follow_up)

    try:
        before_each()
        ours()  # stores the rows the reference inserts
        rows = _stored_rows()
        if len(rows) != total:
            raise RuntimeError(f"stored {len(rows)} of {total} events")
        new_people = Customer.objects.filter(pk__gt=newest_customer).count()
        log(f"B1: {total} events, {new_people} new profiles per run, {len(bodies)} requests")
        measured_ours, measured_ref = abab(
            ours,
            lambda: reference_insert(rows),
            pairs=PAIRS,
            before_each=before_each,
            log=log,
        )
    finally:
        _delete_created(newest_customer, newest_task, newest_follow_up)
        ApiToken.objects.filter(source=SOURCE).delete()
    ratio = rate_ratio(measured_ours, measured_ref)
    target = TARGETS[database]
    met = (measured_ours.rate or 0) >= target and ratio >= MIN_RATIO
    reference = "COPY" if database == "postgresql" else "executemany"
    return [
        Result(
            scenario="B1",
            name=f"ingest API, {EVENTS_PER_REQUEST:,} events/request, identity resolution, "
            f"{size} company",
            database=database,
            ours=measured_ours,
            reference=measured_ref,
            reference_label=f"raw {reference} of the same rows",
            comparison=f"rate ours/ref ≥ {MIN_RATIO}",
            ratio=ratio,
            target=f"≥ {target // 1000}k events/s",
            met=met,
            notes=f"{total:,} events in {REQUESTS} requests per run, "
            f"{new_people:,} new profiles per run; one client.",
        )
    ]
