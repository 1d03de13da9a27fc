"""Raw bulk writes of the demo company's large tables: ``BulkWriter`` inserts row tuples with
``executemany`` (PostgreSQL: ``COPY``) on explicit primary keys (the ORM's ``bulk_create``
builds a model instance per row and cannot stream a million events in the two-minute budget
of the default size), in the field order of ``COLUMNS`` and with values already converted
by ``db_format``, while
``rare_sqlite_checkpoints`` keeps SQLite's write-ahead log out of the way and
``indexes_deferred`` builds the secondary indexes once, after the load.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.management.color import no_style
from django.db import connection
from django.db.models import Max, Model

from customers.models import (
    Consent,
    ConsentChange,
    Customer,
    Identity,
    ImportantDate,
    LifeEvent,
    SegmentMembership,
)
from experience.models import Event, Favorite, Order, OrderLine, SurveyResponse
from journeys.models import Delivery, Enrollment

ROWS_PER_EXECUTE = 20_000


class BulkWriter:
    """Inserts ready-made row tuples with ``executemany`` and hands out explicit ids.

    Ids continue after the highest existing one, so a database with other rows still works;
    PostgreSQL sequences are moved past them in ``finish``.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.seconds = 0.0  # spent in ``insert``
        self._ids: dict[type[Model], Iterator[int]] = {}
        self._sql: dict[type[Model], str] = {}

    def ids(self, model: type[Model]) -> Iterator[int]:
        """The id counter of a table, shared by every caller."""
        if model not in self._ids:
            highest = model.objects.aggregate(highest=Max("pk"))["highest"] or 0
            self._ids[model] = itertools.count(highest + 1)
        return self._ids[model]

    def insert(self, model: type[Model], rows: Sequence[tuple]) -> None:
        """Write rows whose values follow ``COLUMNS[model]``, already in database format."""
        if not rows:
            return
        started = time.monotonic()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY streams the rows in one statement: several times executemany's rate.
                sql = self._sql.get(model) or self._sql.setdefault(model, _copy_sql(model))
                with cursor.cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                sql = self._sql.get(model) or self._sql.setdefault(model, _insert_sql(model))
                for start in range(0, len(rows), ROWS_PER_EXECUTE):
                    cursor.executemany(sql, rows[start : start + ROWS_PER_EXECUTE])
        self.seconds += time.monotonic() - started
        label = model._meta.label
        self.counts[label] = self.counts.get(label, 0) + len(rows)

    def finish(self) -> None:
        """Move id sequences past the explicit ids and refresh the planner's statistics."""
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), list(self._ids)):
                cursor.execute(statement)
            cursor.execute("ANALYZE")


# The tables written raw, parents first, with the field names of their row tuples in order.
COLUMNS: dict[type[Model], tuple[str, ...]] = {
    Customer: (
        "id",
        "uuid",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birth_date",
        "gender",
        "postal_code",
        "prefecture",
        "city",
        "language",
        "lifecycle_stage",
        "is_anonymous",
        "attributes",
        "created_at",
        "updated_at",
        "time_zone",
    ),
    Identity: ("id", "customer", "kind", "value", "source", "first_seen_at", "last_seen_at"),
    Consent: ("id", "customer", "channel", "status", "source", "updated_at"),
    ConsentChange: ("id", "consent", "status", "source", "changed_at"),
    ImportantDate: ("id", "customer", "kind", "label", "month", "day", "year", "self_declared"),
    LifeEvent: ("id", "customer", "kind", "detected_at", "source", "confidence", "detail"),
    Order: ("id", "customer", "number", "ordered_at", "touchpoint", "status", "total", "source"),
    OrderLine: ("id", "order", "product", "quantity", "unit_price"),
    Event: (
        "id",
        "customer",
        "event_type",
        "touchpoint",
        "occurred_at",
        "source",
        "event_id",
        "properties",
        "received_at",
        "value_bits",
    ),
    Favorite: ("id", "customer", "product", "created_at"),
    SurveyResponse: ("id", "survey", "customer", "touchpoint", "score", "comment", "answered_at"),
    Enrollment: (
        "id",
        "campaign",
        "customer",
        "occurrence",
        "entered_at",
        "trigger_received_at",
        "context",
        "is_holdout",
        "bucket",
        "status",
        "next_position",
        "next_due_at",
        "exit_reason",
        "updated_at",
    ),
    Delivery: (
        "id",
        "campaign",
        "step",
        "customer",
        "occurrence",
        "enrollment",
        "variant",
        "status",
        "reason",
        "address",
        "due_at",
        "claim",
        "attempts",
        "created_at",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
        "converted_at",
        "order",
        "revenue",
        "error",
    ),
    SegmentMembership: ("id", "segment", "customer", "added_at"),
}


def _insert_sql(model: type[Model]) -> str:
    """``INSERT INTO t (cols) VALUES (%s, …)`` for the field names in ``COLUMNS``."""
    return f"INSERT INTO {_table_columns(model)} VALUES ({', '.join(['%s'] * len(COLUMNS[model]))})"


def _copy_sql(model: type[Model]) -> str:
    """PostgreSQL's ``COPY t (cols) FROM STDIN`` for the field names in ``COLUMNS``."""
    return f"COPY {_table_columns(model)} FROM STDIN"


def _table_columns(model: type[Model]) -> str:
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in COLUMNS[model]]
    return f"{quote(model._meta.db_table)} ({', '.join(map(quote, columns))})"


@dataclass(frozen=True)
class DbFormat:
    """Turns epoch seconds, dates and UUIDs into what the database driver stores.

    Chosen once per run: SQLite keeps naive UTC text, PostgreSQL takes aware datetimes. This
    is the same conversion Django's field ``get_db_prep_value`` does, minus its per-value cost.
    """

    ts: Callable[[int | None], object]
    date: Callable[[dt.date | None], object]
    uuid: Callable[[uuid.UUID], object]


def db_format() -> DbFormat:
    """The conversions for the database of this connection."""
    if connection.vendor == "sqlite":
        return DbFormat(
            ts=lambda e: None if e is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e)),
            date=lambda d: None if d is None else d.isoformat(),
            uuid=lambda u: u.hex,
        )
    return DbFormat(
        ts=lambda e: None if e is None else dt.datetime.fromtimestamp(e, tz=dt.UTC),
        date=lambda d: d,
        uuid=lambda u: u,
    )


@contextmanager
def rare_sqlite_checkpoints() -> Iterator[None]:
    """Let SQLite's WAL grow to ~200 MB during the load instead of checkpointing every 4 MB,
    and skip the fsyncs (``synchronous=OFF``) while it lasts.

    Each checkpoint copies pages back and fsyncs; at the default it halves the load speed.
    A crash during the load can lose the last commits (a half-seeded demo is reset anyway);
    the WAL is folded back into the database at the end. Inside
    an outer transaction nothing is committed (so nothing checkpointed) until it ends anyway.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA synchronous")
        (synchronous,) = cursor.fetchone()
        cursor.execute("PRAGMA wal_autocheckpoint=50000")
        cursor.execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(previous)}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute(f"PRAGMA synchronous={int(synchronous)}")


@contextmanager
def indexes_deferred(models: Iterable[type[Model]]) -> Iterator[None]:
    """Drop the secondary indexes of the empty tables among ``models`` for a bulk load and
    create them again afterwards from their own definitions, so the schema ends as migrated.

    Building an index once from sorted data is several times cheaper than keeping it up to
    date row by row, and the gap grows with the table (10M events carry seven indexes).
    Indexes that back a constraint (primary keys, unique constraints) stay.
    """
    dropped: list[str] = []
    with connection.cursor() as cursor:
        for model in models:
            if model.objects.exists():
                continue
            for name, definition in _secondary_indexes(cursor, model._meta.db_table):
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
                dropped.append(definition)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if dropped and connection.vendor == "postgresql" and connection.in_atomic_block:
                # PostgreSQL refuses CREATE INDEX on a table with pending (deferred) foreign
                # key checks: run them now, then defer again for the rest of the transaction.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for definition in dropped:
                cursor.execute(definition)


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes that no constraint depends on."""
    if connection.vendor == "sqlite":
        cursor.execute(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL",
            [table],
        )
        return cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [connection.ops.quote_name(table)],
    )
    return cursor.fetchall()


def delete_all(models: Iterable[type[Model]]) -> None:
    """Empty each table with one ``DELETE``: no signals, no cascades, no rows in memory."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")


def restart_ids(model: type[Model]) -> None:
    """Number an empty table's rows from 1 again, as on a fresh database.

    Campaign ids pick each person's holdout bucket (``journeys.engine.bucket_of``), so the
    same seed gives the same company only when the campaigns get the same ids.
    """
    if model.objects.exists():
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
            if cursor.fetchone():
                cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            return
        for statement in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(statement)
