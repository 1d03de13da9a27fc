"""Event ingestion: validate a batch item by item, store the valid ones, idempotently.

The API (``POST /api/v1/events``), the CSV import of offline events and the staff activity
form all come through here. Each item is checked on its own (type in the registry, an
aware time that is neither in the future nor ancient, at least one valid identifier, an
active touchpoint, properties fitting the type's schema, known experience values); the
valid ones are then stored together:

1. one query finds the ``(source, event_id)`` pairs already stored, so a replayed batch
   stores nothing and reports its items as ``duplicates`` (an ``event_id`` repeated inside
   the batch counts once too);
2. ONE :func:`customers.identity.resolve_customers` call maps every distinct person's
   identifiers to a profile (unknown people become profiles, cookie-only ones anonymous;
   an item carrying a cookie and an email merges the two);
3. one raw ``INSERT … ON CONFLICT DO NOTHING`` stores the events, so two workers replaying
   the same batch at once still store each event once (the partial unique constraint on
   ``(source, event_id)`` arbitrates);
4. :func:`experience.pipeline.events_stored` queues the follow-up work after commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.org.models import Department
from customers.identity import KINDS, IdentifierError, normalize_identifier, resolve_customers
from experience.event_types import parse_aware_datetime, validate_properties
from experience.models import Event, EventType, ExperienceValue, Touchpoint

MAX_ITEMS = 1_000
"""Items one API request may carry."""
MAX_FUTURE = dt.timedelta(minutes=5)
"""Clock skew tolerated for ``occurred_at`` in the future."""
MAX_AGE = dt.timedelta(days=3 * 365)
"""Older events are refused: a typo in the year, not history worth loading this way."""
EVENT_ID_MAX = 100
LOOKUP_CHUNK = 1_000
INGEST_LOCK = 0x1E5E_0E7E
"""PostgreSQL advisory lock key taken by every storing transaction (see ``events_store``)."""
ITEM_KEYS = frozenset(
    {"type", "occurred_at", "event_id", "identifiers", "touchpoint", "properties", "values"}
)
KIND_LIST = ", ".join(sorted(KINDS))
VALUE_CODES = list(ExperienceValue.Code.values)
"""Bit i of ``Event.value_bits`` is code i (the order ``ExperienceValue.bits_for`` uses)."""


class BatchTooLarge(ValueError):
    """More items than :data:`MAX_ITEMS`: the whole request is refused."""


@dataclass(frozen=True)
class Rejection:
    """Why item ``index`` of a batch was not stored: ``field`` is a path like
    ``identifiers.email`` or ``properties.price`` ("" for the item as a whole)."""

    index: int
    field: str
    reason: str


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    customer_ids: list[int] = field(default_factory=list)
    """Customer of each stored (accepted) item, in the order of the batch."""


@dataclass
class CleanEvent:
    """One item that passed validation, in database terms."""

    type_name: str
    type_id: int
    occurred_at: dt.datetime
    identifiers: dict[str, str]
    event_id: str | None = None
    touchpoint_id: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    value_bits: int = 0


class EventValidator:
    """Checks items against the registry; one instance serves one batch or one file.

    Event types and touchpoints are read once (two queries) and kept; ``now`` is fixed at
    creation, so a whole batch is judged against the same clock.
    """

    def __init__(self, *, now: dt.datetime | None = None) -> None:
        self.now = now or timezone.now()
        self.types: dict[str, tuple[int, dict]] = {
            name: (pk, schema or {})
            for pk, name, schema in EventType.objects.values_list("pk", "name", "property_schema")
        }
        self.touchpoints: dict[str, tuple[int, bool]] = {
            code: (pk, active)
            for pk, code, active in Touchpoint.objects.values_list("pk", "code", "is_active")
        }

    def clean(self, item: Any) -> tuple[CleanEvent | None, list[tuple[str, str]]]:
        """The item as a :class:`CleanEvent`, or ``None`` with every (field, reason)."""
        if not isinstance(item, Mapping):
            return None, [("", "must be an object")]
        problems: list[tuple[str, str]] = []
        unknown = [key for key in item if key not in ITEM_KEYS]
        for key in unknown:
            problems.append((str(key), "unknown field (properties belong in 'properties')"))

        type_name = item.get("type")
        schema: dict | None = None
        type_id = 0
        if not isinstance(type_name, str) or not type_name:
            problems.append(("type", "is required: the name of a registered event type"))
        elif type_name not in self.types:
            problems.append(("type", f"unknown event type '{type_name[:60]}'"))
        else:
            type_id, schema = self.types[type_name]

        occurred_at = self._occurred_at(item.get("occurred_at"), problems)

        event_id = item.get("event_id")
        if event_id is not None:
            if not isinstance(event_id, str):
                problems.append(("event_id", "must be a string"))
            elif len(event_id) > EVENT_ID_MAX:
                problems.append(("event_id", f"is longer than {EVENT_ID_MAX} characters"))
            elif not event_id.strip():
                event_id = None

        identifiers = self._identifiers(item.get("identifiers"), problems)

        touchpoint_id = None
        code = item.get("touchpoint")
        if code not in (None, ""):
            found = self.touchpoints.get(code) if isinstance(code, str) else None
            if found is None:
                problems.append(("touchpoint", f"unknown touchpoint code '{str(code)[:60]}'"))
            elif not found[1]:
                problems.append(("touchpoint", f"touchpoint '{code}' is not active"))
            else:
                touchpoint_id = found[0]

        properties = item.get("properties")
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            problems.append(("properties", "must be an object"))
        elif schema:
            problems.extend(validate_properties(schema, properties))

        value_bits = 0
        values = item.get("values")
        if values not in (None, []):
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                problems.append(("values", "must be a list of experience value codes"))
            else:
                try:
                    value_bits = sum({1 << VALUE_CODES.index(code) for code in values})
                except ValueError:
                    unknown_code = next(code for code in values if code not in VALUE_CODES)
                    problems.append(
                        (
                            "values",
                            f"unknown experience value '{unknown_code}' "
                            f"(use {', '.join(VALUE_CODES)})",
                        )
                    )
        if problems:
            return None, problems
        return (
            CleanEvent(
                type_name=type_name,
                type_id=type_id,
                occurred_at=occurred_at,
                identifiers=identifiers,
                event_id=event_id,
                touchpoint_id=touchpoint_id,
                properties=properties,
                value_bits=value_bits,
            ),
            [],
        )

    def _occurred_at(self, raw: Any, problems: list[tuple[str, str]]) -> dt.datetime | None:
        if raw in (None, ""):
            problems.append(("occurred_at", "is required (ISO 8601 with a time zone)"))
            return None
        if isinstance(raw, dt.datetime):
            value = raw if raw.tzinfo is not None else None
            if value is None:
                problems.append(("occurred_at", "has no time zone"))
                return None
        elif isinstance(raw, str):
            value = parse_aware_datetime(raw)
            if value is None:
                try:
                    dt.datetime.fromisoformat(raw)
                except ValueError:
                    reason = "not an ISO 8601 date and time, e.g. 2026-11-22T10:00:00+09:00"
                else:
                    reason = "has no time zone: add Z or an offset such as +09:00"
                problems.append(("occurred_at", reason))
                return None
        else:
            problems.append(("occurred_at", "must be an ISO 8601 string"))
            return None
        if value > self.now + MAX_FUTURE:
            problems.append(("occurred_at", "is more than 5 minutes in the future"))
            return None
        if value < self.now - MAX_AGE:
            problems.append(("occurred_at", "is more than 3 years in the past"))
            return None
        return value.astimezone(dt.UTC)

    def _identifiers(self, raw: Any, problems: list[tuple[str, str]]) -> dict[str, str]:
        if not isinstance(raw, Mapping):
            problems.append(
                ("identifiers", f"must be an object of identifier kind → value ({KIND_LIST})")
            )
            return {}
        clean: dict[str, str] = {}
        bad = False
        for kind, value in raw.items():
            if value is None or value == "":
                continue
            if kind not in KINDS:
                problems.append(
                    (f"identifiers.{kind}", f"unknown identifier kind (use {KIND_LIST})")
                )
                bad = True
                continue
            if not isinstance(value, str | int) or isinstance(value, bool):
                problems.append((f"identifiers.{kind}", "must be a string"))
                bad = True
                continue
            try:
                clean[kind] = normalize_identifier(kind, value)
            except IdentifierError as exc:
                problems.append((f"identifiers.{kind}", str(exc)))
                bad = True
        if not clean and not bad:
            problems.append(("identifiers", f"give at least one identifier ({KIND_LIST})"))
        return clean


# --------------------------------------------------------------------------- storing


@dataclass
class StoreResult:
    stored: list[int]
    """Index (into the events given) of each event stored now, in order."""
    customer_ids: list[int]
    """Customer of each stored event, parallel to ``stored``."""
    duplicates: int


def _stored_event_ids(source: str, event_ids: list[str]) -> set[str]:
    """The ``event_ids`` already stored from ``source``: one query per ``LOOKUP_CHUNK``.

    Raw SQL over the partial unique index: compiling ``IN`` with 1,000 parameters through
    the ORM cost more than running it.
    """
    connection = connections[router.db_for_read(Event)]
    quote = connection.ops.quote_name
    meta = Event._meta
    found: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(event_ids), LOOKUP_CHUNK):
            chunk = event_ids[start : start + LOOKUP_CHUNK]
            cursor.execute(
                f"SELECT {quote('event_id')} FROM {quote(meta.db_table)} "
                f"WHERE {quote('source')} = %s AND {quote('event_id')} IN "
                f"({', '.join(['%s'] * len(chunk))})",
                [source, *chunk],
            )
            found.update(row[0] for row in cursor.fetchall())
    return found


def lock_ingest() -> None:
    """PostgreSQL: take :data:`INGEST_LOCK` until the transaction ends (SQLite's IMMEDIATE
    transactions are serial already)."""
    connection = connections[router.db_for_write(Event)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])


@transaction.atomic
def events_record(*, events: Sequence[Event]) -> list[Event]:
    """Store events the platform itself produced for customers it already knows.

    Staff activities, survey answers and detected situations need no identity resolution:
    each ``Event`` names its customer, event type (instance) and an ``event_id``. Events
    whose ``(source, event_id)`` is already stored are skipped, so a replay adds nothing;
    the rest are inserted in bulk (with their ids) and handed to the after-ingest pipeline.
    Holds the ingest lock like :func:`events_store` (the follow-up rows rely on it).
    """
    lock_ingest()
    fresh: list[Event] = []
    for source in {event.source for event in events}:
        ids = [event.event_id for event in events if event.source == source]
        known = _stored_event_ids(source, ids)
        fresh += [e for e in events if e.source == source and e.event_id not in known]
    stored = Event.objects.bulk_create(fresh, batch_size=1000)
    touched: dict[str, set[int]] = {}
    for event in stored:
        touched.setdefault(event.event_type.name, set()).add(event.customer_id)
    from experience.pipeline import events_stored

    events_stored(touched={name: sorted(ids) for name, ids in touched.items()})
    return stored


SELECTED_EVENT_COLUMNS = ("ev_customer", "ev_at", "ev_key", "ev_properties")


@transaction.atomic
def events_record_selected(rows: QuerySet, *, event_type: EventType, source: str) -> int:
    """Store one event per row of ``rows`` in one ``INSERT … SELECT``; how many were new.

    :func:`events_record` for the platform's high-volume events (a dispatch writes one
    ``message_sent`` per delivery): the rows never travel through Python and no model is
    built. ``rows`` is a ``values()`` queryset of exactly :data:`SELECTED_EVENT_COLUMNS`:
    the customer id, the time, the ``event_id`` and the properties (a ``JSONObject``).
    Rows whose ``(source, event_id)`` is stored already are skipped, as in
    :func:`events_record`; the ingest lock and the follow-up are the same too.
    """
    from experience.pipeline import events_stored

    lock_ingest()
    connection = connections[router.db_for_write(Event)]
    quote = connection.ops.quote_name
    select, params = rows.query.get_compiler(connection=connection).as_sql()
    customer, at, key, properties = (f"s.{quote(name)}" for name in SELECTED_EVENT_COLUMNS)
    table = quote(Event._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({quote('customer_id')}, {quote('event_type_id')}, "
        f"{quote('occurred_at')}, {quote('source')}, {quote('event_id')}, "
        f"{quote('properties')}, {quote('value_bits')}, {quote('received_at')}) "
        f"SELECT {customer}, %s, {at}, %s, {key}, {properties}, 0, %s FROM ({select}) s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} e WHERE e.{quote('source')} = %s "
        f"AND e.{quote('event_id')} = {key}) RETURNING {quote('customer_id')}"
    )
    received = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [event_type.pk, source, received, *params, source])
        customer_ids = [row[0] for row in cursor.fetchall()]
    events_stored(touched={event_type.name: customer_ids})
    return len(customer_ids)


@transaction.atomic
def events_store(*, events: Sequence[CleanEvent], source: str, by=None) -> StoreResult:
    """Store validated events once per ``(source, event_id)``; resolve their people first.

    Events without an ``event_id`` are always stored (nothing identifies a replay).

    One storing transaction at a time (PostgreSQL: a transaction-scoped advisory lock;
    SQLite's IMMEDIATE transactions are serial already): concurrent batches naming the same
    new people otherwise collided on the identities' unique constraint and deadlocked, and
    a replay racing its original was reported accepted by both. Validation, the costly
    part, still runs in parallel before.
    """
    source = source[:50]
    lock_ingest()
    with_ids = [event.event_id for event in events if event.event_id is not None]
    known = _stored_event_ids(source, with_ids) if with_ids else set()
    fresh: list[int] = []
    for index, event in enumerate(events):
        if event.event_id is not None:
            if event.event_id in known:
                continue
            known.add(event.event_id)  # a second copy later in the batch is a duplicate
        fresh.append(index)
    duplicates = len(events) - len(fresh)
    if not fresh:
        return StoreResult(stored=[], customer_ids=[], duplicates=duplicates)
    # One entry per distinct person: a web shop sends several events per visitor, and
    # items naming the same identifiers resolve to the same profile anyway.
    person_of: dict[frozenset, int] = {}
    people: list[dict[str, str]] = []
    positions: list[int] = []
    for index in fresh:
        identifiers = events[index].identifiers
        key = frozenset(identifiers.items())
        position = person_of.get(key)
        if position is None:
            position = person_of[key] = len(people)
            people.append(identifiers)
        positions.append(position)
    resolved = resolve_customers(people=people, source=source, by=by)
    customer_ids = [resolved[position] for position in positions]
    _insert_events([events[index] for index in fresh], customer_ids, source=source)
    touched: dict[str, set[int]] = {}
    for index, customer_id in zip(fresh, customer_ids, strict=True):
        touched.setdefault(events[index].type_name, set()).add(customer_id)
    from experience.pipeline import events_stored

    events_stored(touched=touched)
    return StoreResult(stored=fresh, customer_ids=customer_ids, duplicates=duplicates)


def _insert_events(events: Iterable[CleanEvent], customer_ids: list[int], *, source: str) -> None:
    """One raw ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL: over ``unnest`` arrays;
    SQLite 3.24+: an ``executemany``); no model instances."""
    connection = connections[router.db_for_write(Event)]
    meta = Event._meta
    quote = connection.ops.quote_name
    names = [
        "customer",
        "event_type",
        "touchpoint",
        "occurred_at",
        "source",
        "event_id",
        "properties",
        "value_bits",
        "received_at",
    ]
    fields = [meta.get_field(name) for name in names]
    columns = ", ".join(quote(f.column) for f in fields)
    table = quote(meta.db_table)
    now = timezone.now()
    rows = [
        (
            customer_id,
            event.type_id,
            event.touchpoint_id,
            event.occurred_at,
            source,
            event.event_id,
            json.dumps(event.properties, ensure_ascii=False, separators=(",", ":")),
            event.value_bits,
        )
        for event, customer_id in zip(events, customer_ids, strict=True)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [f.db_type(connection) for f in fields[:-1]]
            types[0] = meta.get_field("customer").rel_db_type(connection)
            types[1] = meta.get_field("event_type").rel_db_type(connection)
            types[2] = meta.get_field("touchpoint").rel_db_type(connection)
            arrays = ", ".join(f"%s::{db_type}[]" for db_type in types)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT u.*, %s FROM unnest({arrays}) AS u "
                "ON CONFLICT DO NOTHING",
                [now, *(list(column) for column in zip(*rows, strict=True))],
            )
            return
        stamp = fields[-1].get_db_prep_save(now, connection)
        # SQLite keeps aware datetimes as naive UTC text, what get_db_prep_save makes of
        # them (``occurred_at`` is already UTC); formatted here once per row, cheaply.
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "
            "ON CONFLICT DO NOTHING",
            [(*row[:3], str(row[3].replace(tzinfo=None)), *row[4:], stamp) for row in rows],
        )


# --------------------------------------------------------------------------- the service


def events_ingest(
    *,
    items: list[dict],
    source: str,
    department: Department | None,
    by=None,
) -> IngestResult:
    """Validate every item, store the valid ones; the result names each rejected item.

    ``department`` is the sender's (the token's); events are company-wide data, so it is
    not stored on them. ``by`` is the staff user, or ``None`` for an integration. Raises
    :class:`BatchTooLarge` for more than :data:`MAX_ITEMS` items (nothing stored).
    """
    if len(items) > MAX_ITEMS:
        raise BatchTooLarge(f"a batch holds at most {MAX_ITEMS} events; this one has {len(items)}")
    validator = EventValidator()
    result = IngestResult()
    valid: list[CleanEvent] = []
    for index, item in enumerate(items):
        event, problems = validator.clean(item)
        if event is None:
            result.rejected.extend(Rejection(index, path, reason) for path, reason in problems)
        else:
            valid.append(event)
    if valid:
        stored = events_store(events=valid, source=source, by=by)
        result.accepted = len(stored.stored)
        result.duplicates = stored.duplicates
        result.customer_ids = stored.customer_ids
    return result
