"""B6: CSV import of customers, 10 columns, upsert on email: rate and peak memory.

Ours: the real service path, synchronously, as ``manage.py import_customers`` runs it:
``import_job_create`` (stores the upload, detects encoding, counts rows, guesses the
mapping), ``import_job_validate_start`` + ``import_job_validate`` (the whole file through
the customers importer), ``import_job_run_start`` + ``run_pending_import`` (chunks of
10,000: identity resolution by email, profile upserts, default metrics rows of the new
people inserted directly; then, once after the last chunk, the dynamic segment membership
of everyone the import created or changed). The file: email, family and given name, both
kana, birth date, gender, postal code, prefecture, city; 10 % of the rows are people the
company knows (their email with their current values, so the upsert finds them and
changes nothing), 90 % are new people.

Reference: the same file read with ``csv.reader`` and written raw in chunks of 10,000 rows
per transaction: one ``SELECT`` of the chunk's emails among the identities, an
``executemany`` ``UPDATE`` of the known profiles, an ``executemany`` ``INSERT`` of the new
profiles (explicit ids) and of their email identities.

Before every run (untimed) the people a previous run created are deleted (their
identities, metrics, segment memberships, with the segments' counts moved back) and the
import jobs with their files, so every run creates the same people. Run at two sizes:
``ROWS`` (1M: ``LARGE_PAIRS`` pairs, fewer than five because one run takes minutes) and
100k (five pairs); peak memory of 1M against 100k tells whether the import is flat.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from django.db import connection, transaction

from tests.benchmarks.harness import Measure, Result, abab, log, rate_ratio

MISSES = """
Closed by design in this slice: new people get their default CustomerMetrics rows in one
set-based INSERT (identifier count only; no aggregate rebuild), known people are rebuilt
only when given a new identifier, and dynamic segment membership is evaluated ONCE after
the last chunk for the id ranges the chunks left with their checkpoint (a resumed or
re-run job finishes an interrupted pass; a failing chunk still syncs the earlier ones).
Large company, SQLite: 100k rows 5.4k/s vs the reference 12.1k/s (ratio 0.45, was 0.13),
1M rows 5.9k/s vs 22.4k/s (0.26, was 0.19); memory 58 MB at 1M vs 121 MB at 100k (flat).
PostgreSQL (small part at 50k rows to fit the run in ~10 min): 50k rows 4.3k/s vs 9.0k/s
(0.48, was 0.19 at 100k), 1M rows 5.4k/s vs 10.5k/s (0.51, was 0.11; 185 s, was 833 s).
So the ratio target is met but on SQLite at 1M; the 100k rows/s rate is missed everywhere.
Profile after (pyinstrument, 20k rows, loaded machine): SQLite — final segment pass about
half (segment_membership_sync over the new ids: per dynamic segment and per 5,000 ids a
QuerySet.delete whose collector runs although new people have no membership, plus the
INSERT … SELECT of the rule), chunk writes a quarter (identity resolution 17 %, of which
the customer INSERT … RETURNING 9 %; profile UPDATE 3 %; metrics insert 1 %), parsing and
validating the file twice 19 %. PostgreSQL (medium company) — chunk writes 57 % (customer
INSERT … RETURNING 17 %, profile UPDATE … FROM unnest 12 %, identity lookup 6 %), segment
pass 18 %, parsing twice 20 %. Ours keeps its rate at 1M while the reference's doubles
(its per-run costs amortise), hence the lower 1M ratio. The reference itself is 6–22k
rows/s here, so 100k rows/s is out of reach of any path on this machine; the ratio is
what moves. Plan for the rest: (1) in customers/segments.py (segments
helper) a sync variant for ids known to have no membership (skip the DELETE), with the
delete as one raw statement, and for an import touching a large share of the company a
full segment_refresh instead of the id pass; (2) write the profile fields in the
customer INSERT (one statement instead of INSERT defaults + UPDATE) and on PostgreSQL
COPY the chunk into a temporary table with INSERT … ON CONFLICT; (3) keep the validated
records of the validation pass (or validate while writing when the file is known clean)
so the file is parsed once.
"""
SOURCE = "bench-b6"
ROWS = int(os.environ.get("B6_ROWS", "1000000"))
SMALL_ROWS = int(os.environ.get("B6_SMALL_ROWS", "100000"))
LARGE_PAIRS = int(os.environ.get("B6_LARGE_PAIRS", "1"))
PAIRS = 5
KNOWN_SHARE = 0.1
CHUNK = 10_000
TARGET_RATE = 100_000
TARGET_PEAK_MB = 200
MAX_GROWTH = 1.2
MIN_RATIO = 0.4
HEADER = [
    "email",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "gender",
    "postal_code",
    "prefecture",
    "city",
]
FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ")]
FAMILY += [("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ")]
GIVEN = [("花子", "ハナコ"), ("太郎", "タロウ"), ("陽菜", "ヒナ"), ("蓮", "レン"), ("結衣", "ユイ")]
PLACES = [
    ("東京都", "渋谷区"),
    ("神奈川県", "横浜市"),
    ("大阪府", "大阪市"),
    ("愛知県", "名古屋市"),
]


def _known_rows(count: int) -> list[list[str]]:
    """Rows of people the company knows, with their current values (a no-op upsert)."""
    from customers.models import Customer, Identity

    emails = dict(
        Identity.objects.filter(kind="email", customer__merged_into__isnull=True)
        .order_by("pk")
        .values_list("customer_id", "value")[:count]
    )
    rows = []
    fields = list(HEADER[1:])
    for values in Customer.objects.filter(pk__in=list(emails)).values("pk", *fields).iterator():
        row = [emails[values["pk"]]]
        for name in fields:
            value = values[name]
            row.append("" if value is None else str(value))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: int, known: list[list[str]]) -> None:
    rng = random.Random(6)
    take = known[: int(rows * KNOWN_SHARE)]
    every = max(rows // max(len(take), 1), 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        known_at = 0
        for number in range(rows):
            if number % every == 0 and known_at < len(take):
                writer.writerow(take[known_at])
                known_at += 1
                continue
            family, family_kana = rng.choice(FAMILY)
            given, given_kana = rng.choice(GIVEN)
            prefecture, city = rng.choice(PLACES)
            writer.writerow(
                [
                    f"b6.{number:07d}@example.jp",
                    family,
                    given,
                    family_kana,
                    given_kana,
                    f"{rng.randrange(1950, 2005)}-{rng.randrange(1, 13):02d}-"
                    f"{rng.randrange(1, 29):02d}",
                    rng.choice(["f", "m", ""]),
                    f"{rng.randrange(100, 999)}-{rng.randrange(0, 9999):04d}",
                    prefecture,
                    city,
                ]
            )


class Cleanup:
    """Deletes what imports created since construction (people, jobs, files)."""

    def __init__(self) -> None:
        from django.db.models import Max

        from customers.models import Customer, ImportJob

        self.newest_customer = Customer.objects.aggregate(m=Max("pk"))["m"] or 0
        self.newest_job = ImportJob.objects.aggregate(m=Max("pk"))["m"] or 0

    def __call__(self) -> None:
        from customers.models import (
            Customer,
            CustomerMetrics,
            Identity,
            ImportJob,
            Segment,
            SegmentMembership,
        )

        for job in ImportJob.objects.filter(pk__gt=self.newest_job):
            job.file.delete(save=False)
            job.delete()
        quote = connection.ops.quote_name
        newest = self.newest_customer
        membership = quote(SegmentMembership._meta.db_table)
        segment = quote(Segment._meta.db_table)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {segment} SET {quote('member_count')} = {quote('member_count')} - "
                f"(SELECT COUNT(*) FROM {membership} m WHERE m.{quote('segment_id')} = "
                f"{segment}.{quote('id')} AND m.{quote('customer_id')} > %s)",
                [newest],
            )
            for model in (SegmentMembership, CustomerMetrics, Identity):
                cursor.execute(
                    f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote('customer_id')} > %s",
                    [newest],
                )
            cursor.execute(
                f"DELETE FROM {quote(Customer._meta.db_table)} WHERE {quote('id')} > %s",
                [newest],
            )


def ours_import(path: Path) -> int:
    from django.core.files import File

    from config.org.models import Department
    from customers.imports import (
        import_job_create,
        import_job_run_start,
        import_job_validate,
        import_job_validate_start,
        run_pending_import,
    )
    from customers.models import ImportJob

    with path.open("rb") as handle:
        job = import_job_create(
            file=File(handle, name=path.name),
            original_name=path.name,
            kind=ImportJob.Kind.CUSTOMERS,
            source=SOURCE,
            department=Department.objects.order_by("pk").first(),
            by=None,
        )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    job = import_job_validate(job_id=job.pk)
    if job.status != ImportJob.Status.VALID:
        raise RuntimeError(f"validation: {job.status} {job.error_count} errors {job.result}")
    job = import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    job = run_pending_import(job=job)
    if job.status != ImportJob.Status.DONE:
        raise RuntimeError(f"import ended {job.status}: {job.result.get('failure')}")
    return job.result["counts"]["rows_imported"]


class Reference:
    """Raw insert-or-update on email, ``CHUNK`` rows per transaction."""

    def __init__(self) -> None:
        from django.utils import timezone

        from customers.imports import db_value, model_defaults
        from customers.models import Customer, Identity

        quote = connection.ops.quote_name
        now = timezone.now()
        self.profile = HEADER[1:]
        constants = model_defaults(Customer, exclude={"uuid", *self.profile}, now=now)
        self.constants = tuple(constants.values())
        fields = Customer._meta
        columns = ["id", "uuid", *self.profile, *(fields.get_field(n).column for n in constants)]
        self.customer_table = quote(Customer._meta.db_table)
        self.insert_customer = (
            f"INSERT INTO {self.customer_table} ({', '.join(map(quote, columns))}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})"
        )
        self.update_customer = (
            f"UPDATE {self.customer_table} SET "
            f"{', '.join(f'{quote(c)} = %s' for c in self.profile)} WHERE {quote('id')} = %s"
        )
        identity = quote(Identity._meta.db_table)
        stamp = db_value(Identity, "last_seen_at", now)
        self.identity_constants = (SOURCE, stamp, stamp)
        self.insert_identity = (
            f"INSERT INTO {identity} ({quote('customer_id')}, {quote('kind')}, "
            f"{quote('value')}, {quote('source')}, {quote('first_seen_at')}, "
            f"{quote('last_seen_at')}) VALUES (%s, 'email', %s, %s, %s, %s)"
        )
        self.lookup = (
            f"SELECT {quote('value')}, {quote('customer_id')} FROM {identity} "
            f"WHERE {quote('kind')} = 'email' AND {quote('value')} IN "
        )
        self.native_uuid = connection.features.has_native_uuid_field

    def __call__(self, path: Path) -> int:
        from django.db.models import Max

        from customers.models import Customer

        next_id = (Customer.objects.aggregate(m=Max("pk"))["m"] or 0) + 1
        total = 0
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            chunk: list[list[str]] = []
            for row in reader:
                chunk.append(row)
                if len(chunk) == CHUNK:
                    next_id = self._write(chunk, next_id)
                    total += len(chunk)
                    chunk = []
            if chunk:
                next_id = self._write(chunk, next_id)
                total += len(chunk)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                    [Customer._meta.db_table, next_id],
                )
        return total

    def _write(self, rows: list[list[str]], next_id: int) -> int:
        emails = [row[0].lower() for row in rows]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"{self.lookup}({', '.join(['%s'] * len(emails))})", emails)
            known = dict(cursor.fetchall())
            updates, inserts, identities = [], [], []
            for email, row in zip(emails, rows, strict=True):
                values: list[str | None] = list(row[1:])
                values[4] = values[4] or None  # birth date: NULL when blank
                if email in known:
                    updates.append((*values, known[email]))
                    continue
                key = uuid.uuid4() if self.native_uuid else uuid.uuid4().hex
                inserts.append((next_id, key, *values, *self.constants))
                identities.append((next_id, email, *self.identity_constants))
                next_id += 1
            cursor.executemany(self.update_customer, updates)
            cursor.executemany(self.insert_customer, inserts)
            cursor.executemany(self.insert_identity, identities)
        return next_id


def _measure_part(rows: int, pairs: int) -> tuple:
    cleanup = Cleanup()
    reference = Reference()
    known = _known_rows(int(rows * KNOWN_SHARE))
    with tempfile.TemporaryDirectory(prefix="b6-") as folder:
        path = Path(folder) / f"customers-{rows}.csv"
        write_csv(path, rows, known)
        log(f"B6: {rows:,} rows ({len(known):,} known people), {pairs} pair(s)")
        try:
            return abab(
                lambda: ours_import(path),
                lambda: reference(path),
                pairs=pairs,
                warmup=0,
                before_each=cleanup,
                log=log,
            )
        finally:
            cleanup()


def _part_in_subprocess(rows: int, pairs: int, database: str, size: str) -> Result:
    """Each size in a fresh process, so its peak memory is its own."""
    command = [sys.executable, "-m", "tests.benchmarks.run", "--one", "B6"]
    command += [
        "--database",
        database,
        "--size-label",
        size,
        "--database-url",
        os.environ["DATABASE_URL"],
    ]
    env = {**os.environ, "B6_PART": f"{rows}:{pairs}"}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return Result.from_dict(json.loads(done.stdout)[0])


def run(*, database: str, size: str) -> list[Result]:
    if part := os.environ.get("B6_PART"):
        rows, pairs = (int(value) for value in part.split(":"))
        ours, ref = _measure_part(rows, pairs)
        return [_result(rows, ours, ref, database=database, size=size, small=None)]
    small = _part_in_subprocess(SMALL_ROWS, PAIRS, database, size)
    large = _part_in_subprocess(ROWS, LARGE_PAIRS, database, size)
    return [
        small,
        _result(ROWS, large.ours, large.reference, database=database, size=size, small=small.ours),
    ]


def _result(
    rows: int, ours: Measure, ref: Measure, *, database: str, size: str, small: Measure | None
) -> Result:
    ratio = rate_ratio(ours, ref)
    notes = f"{KNOWN_SHARE:.0%} known people (no-op upserts), the rest new."
    flat = True
    extra: dict = {"rows": rows}
    if small is not None:
        growth = ours.peak_rss_mb / max(small.peak_rss_mb, 1.0)
        flat = growth <= MAX_GROWTH
        extra["memory_growth_vs_small"] = growth
        notes += (
            f" Peak memory {ours.peak_rss_mb:.0f} MB vs {small.peak_rss_mb:.0f} MB at "
            f"{SMALL_ROWS:,} rows: ×{growth:.2f} (flat ≤ ×{MAX_GROWTH})."
        )
    if len(ours.seconds) < PAIRS:
        notes += f" {len(ours.seconds)} pair(s) only: one run takes minutes."
    met = (
        (ours.rate or 0) >= TARGET_RATE
        and ours.peak_rss_mb <= TARGET_PEAK_MB
        and flat
        and ratio >= MIN_RATIO
    )
    return Result(
        scenario="B6",
        name=f"CSV import of customers, {rows:,} rows × 10 columns, upsert on email, "
        f"{size} company",
        database=database,
        ours=ours,
        reference=ref,
        reference_label="raw executemany upsert",
        comparison=f"rate ours/ref ≥ {MIN_RATIO}",
        ratio=ratio,
        target=f"≥ {TARGET_RATE // 1000}k rows/s, peak ≤ {TARGET_PEAK_MB} MB"
        + (f", memory vs {SMALL_ROWS // 1000}k ≤ ×{MAX_GROWTH}" if small is not None else ""),
        met=met,
        notes=notes,
        extra=extra,
    )
