"""Imports of files (customers, and orders through experience's importer): the machinery.

A file goes through four steps, each a write of this module:

1. ``import_job_create`` stores the upload, detects the format and encoding, counts its rows
   and guesses a column mapping;
2. ``import_job_validate_start`` saves the mapping and queues ``import_job_validate``, which
   streams the whole file through the importer and records every bad row (row, column,
   value, reason) without writing anything else;
3. ``import_job_run_start`` (only for a valid file, or when the user accepts skipping the
   listed bad rows) queues ``import_job_run``, which streams the file again and writes it in
   chunks of ``CHUNK_SIZE`` records;
4. the job ends ``done`` with counts, or ``failed`` with a reason.

Why chunks rather than one transaction: a 1M-row file in one SQLite transaction would hold
the database's write lock for minutes, and a q2 task must finish before the cluster's
``retry`` hands it out again. So each chunk commits together with the job's checkpoint, a
task stops after a time budget and queues its own continuation, and every write is an
upsert keyed by identifiers (customers) or order number (orders): a crash mid-way and a
re-run converge on the same result, and importing the same file twice changes nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import io
import logging
import math
import time
import unicodedata
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import File
from django.db import DatabaseError, connections, reset_queries, router, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _t

from config.org.models import Department, Role
from config.org.services import audit_record
from customers.models import ImportJob, ImportRowError

logger = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
"""Records written per transaction by ``import_job_run``."""
PREVIEW_ROWS = 10
PROGRESS_EVERY = 2_000
"""Rows between two progress updates of the job while validating."""
ERROR_BATCH = 1_000
VALUE_EXCERPT = 60
CSV_DELIMITERS = (",", "\t", ";")


class ImportFileError(ValueError):
    """The file cannot be read at all (format, encoding, header); the message says why."""


class MappingError(ValueError):
    """The column mapping is not usable; the message names the column or field."""


# --------------------------------------------------------------------------- importers


@dataclass(frozen=True)
class ImportField:
    """One thing an importer can read from a column; ``aliases`` drive the mapping guess."""

    key: str
    label: Any
    aliases: tuple[str, ...] = ()
    required: bool = False


@dataclass
class RowError:
    """Why one row was rejected; ``field`` is an importer field key, or "" for the row."""

    row: int
    field: str
    value: str
    reason: str


@dataclass
class Record:
    """One unit of import: a customer row, or all the rows of one order."""

    rows: list[int]
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)

    @property
    def last_row(self) -> int:
        return self.rows[-1]


class Importer:
    """Base of the importers registered with ``register_importer``.

    One instance serves one pass over one file, so it may keep look-up tables (SKUs…) and
    state across rows.
    """

    kind: ClassVar[str]
    label: ClassVar[Any]

    def __init__(self, *, job: ImportJob | None = None) -> None:
        self.job = job

    def fields(self) -> list[ImportField]:
        raise NotImplementedError

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        """Turn mapped rows (file row number, field key → text) into validated records."""
        raise NotImplementedError

    def write(self, records: list[Record], *, job: ImportJob, by) -> dict[str, int]:
        """Write valid records idempotently; return counts to add to the job's result."""
        raise NotImplementedError

    def derived_ids(self) -> list[int]:
        """Customers whose segment membership the last ``write`` left to the end of the job.

        ``import_job_run`` keeps them with the chunk's checkpoint and evaluates the dynamic
        segments once for all of them after the last chunk (see ``import_derived_sync``).
        An importer that refreshes derived data itself returns nothing.
        """
        return []


_IMPORTERS: dict[str, type[Importer]] = {}


def register_importer(kind: str, importer: type[Importer]) -> None:
    """Make ``importer`` handle jobs of ``kind`` (an ``ImportJob.Kind`` value)."""
    _IMPORTERS[kind] = importer


def _load_builtin_importers() -> None:
    import customers.importers  # noqa: F401  (registers the customers importer)


def get_importer(kind: str) -> type[Importer]:
    _load_builtin_importers()
    try:
        return _IMPORTERS[kind]
    except KeyError:
        raise ImportFileError(
            _t("No importer handles “%(kind)s” files.") % {"kind": kind}
        ) from None


def importer_kinds() -> list[tuple[str, Any]]:
    """(kind, label) of the importers available, in ``ImportJob.Kind`` order."""
    _load_builtin_importers()
    return [(value, label) for value, label in ImportJob.Kind.choices if value in _IMPORTERS]


# --------------------------------------------------------------------------- mapping


def normalize_header(text: str) -> str:
    """Header text folded for comparison: NFKC, lower case, no spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def guess_mapping(headers: Iterable[str], fields: Iterable[ImportField]) -> dict[str, str]:
    """Header → field key for every header that names a field (by key, label or alias)."""
    index: dict[str, str] = {}
    for item in fields:
        for name in (item.key, str(item.label), *item.aliases):
            index.setdefault(normalize_header(name), item.key)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = index.get(normalize_header(header))
        if key and key not in taken:
            mapping[header] = key
            taken.add(key)
    return mapping


def clean_mapping(
    mapping: Mapping[str, str], *, headers: list[str], fields: list[ImportField]
) -> dict[str, str]:
    """Check a header → field mapping against the file and the importer; drop blanks."""
    known = {item.key: item for item in fields}
    cleaned: dict[str, str] = {}
    used: dict[str, str] = {}
    for header, key in mapping.items():
        if not key:
            continue
        if header not in headers:
            raise MappingError(_t("The file has no column “%(header)s”.") % {"header": header})
        if key not in known:
            raise MappingError(
                _t("Column “%(header)s”: “%(key)s” is not a field of this import.")
                % {"header": header, "key": key}
            )
        if key in used:
            raise MappingError(
                _t("Columns “%(first)s” and “%(second)s” are both mapped to %(field)s.")
                % {"first": used[key], "second": header, "field": known[key].label}
            )
        used[key] = header
        cleaned[header] = key
    missing = [str(item.label) for item in fields if item.required and item.key not in used]
    if missing:
        raise MappingError(
            _t("Map a column to each required field: %(fields)s.") % {"fields": ", ".join(missing)}
        )
    if not cleaned:
        raise MappingError(_t("Map at least one column."))
    return cleaned


# --------------------------------------------------------------------------- reading files


def file_format(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    if suffix in {".csv", ".txt", ".tsv"}:
        return "csv"
    if suffix in {".xlsx", ".xlsm"}:
        return "xlsx"
    raise ImportFileError(
        _t("Upload a CSV or XLSX file (this one ends in “%(suffix)s”).") % {"suffix": suffix or "—"}
    )


XLSX_CONTENT_TYPES = (
    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
)


def upload_check(binary, name: str) -> None:
    """Refuse a file over ``IMPORT_MAX_BYTES`` or whose content is not what its name says.

    A CSV must be text (no NUL bytes, not a zip); its encoding is checked by
    :func:`detect_encoding`. An XLSX must be a zip holding a workbook's content types.
    """
    shown = PurePath(name).name
    binary.seek(0, io.SEEK_END)
    size = binary.tell()
    binary.seek(0)
    limit = settings.IMPORT_MAX_BYTES
    if size > limit:
        raise ImportFileError(
            _t("“%(name)s” is %(size)s; files may be at most %(limit)s.")
            % {"name": shown, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )
    fmt = file_format(name)
    if fmt == "xlsx":
        try:
            with zipfile.ZipFile(binary) as archive:
                content_types = archive.read("[Content_Types].xml")
        except (zipfile.BadZipFile, KeyError, OSError):
            content_types = b""
        finally:
            binary.seek(0)
        if not any(kind in content_types for kind in XLSX_CONTENT_TYPES):
            raise ImportFileError(
                _t("“%(name)s” is not an Excel workbook (XLSX), whatever its name says.")
                % {"name": shown}
            )
        return
    head = binary.read(4)
    binary.seek(0)
    is_text = head != b"PK\x03\x04"
    while is_text and (chunk := binary.read(1 << 20)):
        is_text = b"\x00" not in chunk
    binary.seek(0)
    if not is_text:
        raise ImportFileError(
            _t("“%(name)s” is not a CSV text file: save it as “CSV UTF-8” and try again.")
            % {"name": shown}
        )


def detect_encoding(binary) -> str:
    """UTF-8 with BOM, UTF-8 or Shift_JIS (CP932), decided by decoding the whole stream."""
    binary.seek(0)
    if binary.read(3) == codecs.BOM_UTF8:
        return "utf-8-sig"
    for encoding in ("utf-8", "cp932"):
        binary.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := binary.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError(
        _t("The file is neither UTF-8 nor Shift_JIS text: save it as “CSV UTF-8” and try again.")
    )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@contextlib.contextmanager
def open_rows(job: ImportJob) -> Iterator[Iterator[list[str]]]:
    """All rows of the job's file (header first) as lists of text, streamed."""
    fmt = job.result.get("format") or file_format(job.original_name)
    with job.file.open("rb") as binary:
        if fmt == "xlsx":
            yield _xlsx_rows(binary)
            return
        encoding = job.result.get("encoding") or detect_encoding(binary)
        binary.seek(0)
        text = io.TextIOWrapper(binary, encoding=encoding, newline="")
        try:
            delimiter = job.result.get("delimiter", ",")
            yield ([cell.strip() for cell in row] for row in csv.reader(text, delimiter=delimiter))
        finally:
            text.detach()


def _xlsx_rows(binary) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise ImportFileError(
            _t("The XLSX file cannot be read: %(error)s") % {"error": exc}
        ) from exc
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in row]
    finally:
        workbook.close()


def inspect_upload(binary, name: str) -> dict[str, Any]:
    """Format, encoding, delimiter, headers, data-row count and preview of a stored file."""
    fmt = file_format(name)
    info: dict[str, Any] = {"format": fmt}
    if fmt == "csv":
        info["encoding"] = detect_encoding(binary)
        binary.seek(0)
        text = io.TextIOWrapper(binary, encoding=info["encoding"], newline="")
        try:
            first_line = text.readline()
            info["delimiter"] = max(CSV_DELIMITERS, key=first_line.count)
            text.seek(0)
            rows: Iterator[list[str]] = (
                [cell.strip() for cell in row]
                for row in csv.reader(text, delimiter=info["delimiter"])
            )
            _read_header_and_count(rows, info)
        except csv.Error as exc:
            raise ImportFileError(
                _t("The CSV file cannot be read: %(error)s") % {"error": exc}
            ) from exc
        finally:
            text.detach()
    else:
        _read_header_and_count(_xlsx_rows(binary), info)
    return info


def _read_header_and_count(rows: Iterator[list[str]], info: dict[str, Any]) -> None:
    header = next(rows, None)
    headers = list(header or [])
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        raise ImportFileError(_t("The first row must name the columns; this file's is empty."))
    blank = [str(number) for number, cell in enumerate(headers, start=1) if not cell]
    if blank:
        raise ImportFileError(
            _t("Every column needs a name in the first row (column %(columns)s has none).")
            % {"columns": ", ".join(blank)}
        )
    seen: set[str] = set()
    for cell in headers:
        if cell in seen:
            raise ImportFileError(
                _t("Two columns are named “%(header)s”; rename one.") % {"header": cell}
            )
        seen.add(cell)
    preview: list[list[str]] = []
    count = 0
    for row in rows:
        if not any(row):
            continue
        count += 1
        if len(preview) < PREVIEW_ROWS:
            preview.append(_fit(row, len(headers)))
    info.update(headers=headers, preview=preview, rows=count)


def _fit(row: list[str], width: int) -> list[str]:
    return (row + [""] * width)[:width]


def mapped_rows(
    job: ImportJob, *, after_row: int = 1, on_row: Callable[[int], None] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as the user sees it, field key → text) for every non-blank data row.

    The header is row 1. ``after_row`` skips rows already handled (resuming an import).
    """
    headers: list[str] = job.result["headers"]
    columns = [(headers.index(header), key) for header, key in job.mapping.items()]
    with open_rows(job) as rows:
        next(rows, None)
        for number, row in enumerate(rows, start=2):
            if on_row is not None:
                on_row(number)
            if number <= after_row or not any(row):
                continue
            yield number, {key: (row[i] if i < len(row) else "") for i, key in columns}


# --------------------------------------------------------------------------- services


def departments_for_upload(user) -> list[Department]:
    """Departments the user may import for: where they are editor or manager."""
    if user.is_superuser:
        return list(Department.objects.all())
    return [
        department
        for department in Department.objects.filter(pk__in=user.department_ids)
        if user.has_role(department.pk, Role.EDITOR)
    ]


def _sha256(binary) -> str:
    digest = hashlib.sha256()
    binary.seek(0)
    while chunk := binary.read(1 << 20):
        digest.update(chunk)
    binary.seek(0)
    return digest.hexdigest()


@transaction.atomic
def import_job_create(
    *, file, original_name: str, kind: str, source: str, department: Department, by
) -> ImportJob:
    """Store an uploaded file as a new job, read its header and guess the column mapping.

    Raises ``ImportFileError`` (nothing stored) when the file cannot be read, and
    ``PermissionDenied`` unless ``by`` is editor or manager of ``department`` (``by=None``
    is the operator running the management command).
    """
    if by is not None and not (by.is_superuser or by.has_role(department.pk, Role.EDITOR)):
        raise PermissionDenied
    importer = get_importer(kind)
    source = source.strip()
    if not source:
        raise ImportFileError(_t("Say where the rows come from (source), e.g. “pos”."))
    upload_check(file, original_name)
    info = inspect_upload(file, original_name)
    sha256 = _sha256(file)
    earlier = (
        ImportJob.objects.filter(
            sha256=sha256, source=source, kind=kind, status=ImportJob.Status.DONE
        )
        .order_by("-finished_at")
        .values("pk", "finished_at")
        .first()
    )
    result = {key: info[key] for key in ("format", "headers", "preview") if key in info}
    for key in ("encoding", "delimiter"):
        if key in info:
            result[key] = info[key]
    if earlier:
        result["duplicate_of"] = {
            "id": earlier["pk"],
            "finished_at": earlier["finished_at"].isoformat() if earlier["finished_at"] else "",
        }
    job = ImportJob(
        kind=kind,
        original_name=PurePath(original_name).name[:255],
        sha256=sha256,
        source=source[:50],
        owner_department=department,
        created_by=by,
        total_rows=info["rows"],
        mapping=guess_mapping(info["headers"], importer(job=None).fields()),
        result=result,
    )
    file.seek(0)
    job.file.save(job.original_name, File(file, name=job.original_name), save=False)
    job.save()
    audit_record(
        actor=by,
        action="import.upload",
        target=job,
        department=department,
        detail={"kind": kind, "source": source, "rows": job.total_rows, "sha256": sha256},
    )
    return job


def _queue(task: str, job_id: int) -> None:
    """Queue a q2 task on the job once the surrounding transaction has committed."""
    from customers.tasks import queue_task

    queue_task(task, job_id, task_name=f"{task} #{job_id}")


@transaction.atomic
def import_job_validate_start(
    *, job: ImportJob, mapping: Mapping[str, str], by, queue: bool = True
) -> ImportJob:
    """Save the column mapping and queue the validation of the whole file.

    ``queue=False`` leaves running ``import_job_validate`` to the caller (the command).
    """
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in {
        ImportJob.Status.UPLOADED,
        ImportJob.Status.INVALID,
        ImportJob.Status.VALID,
        ImportJob.Status.FAILED,
    }:
        raise MappingError(
            _t("This import is %(status)s; it cannot be validated again now.")
            % {"status": job.get_status_display()}
        )
    fields = get_importer(job.kind)(job=job).fields()
    job.mapping = clean_mapping(mapping, headers=job.result.get("headers", []), fields=fields)
    job.status = ImportJob.Status.VALIDATING
    job.processed_rows = 0
    job.error_count = 0
    job.skip_invalid_rows = False
    job.finished_at = None
    for key in ("counts", "checkpoint_row", "failure", "bad_records", "valid_records"):
        job.result.pop(key, None)
    job.save()
    job.row_errors.all().delete()
    if queue:
        _queue("customers.tasks.validate_import", job.pk)
    return job


def _progress(job_id: int, processed: int) -> None:
    ImportJob.objects.filter(pk=job_id).update(processed_rows=processed)


def import_job_validate(*, job_id: int) -> ImportJob | None:
    """Stream the whole file through the importer and record every bad row; write nothing else.

    Idempotent: does nothing unless the job is waiting for validation; a repeated run
    starts the report afresh.
    """
    job = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.VALIDATING).first()
    if job is None:
        return None
    job.row_errors.all().delete()
    importer = get_importer(job.kind)(job=job)
    column_of = {key: header for header, key in job.mapping.items()}
    pending: list[ImportRowError] = []
    errors = valid_records = bad_records = 0
    last_row = [1]

    def on_row(number: int) -> None:
        last_row[0] = number
        if number % PROGRESS_EVERY == 0:
            _progress(job.pk, number - 1)

    try:
        for record in importer.records(mapped_rows(job, on_row=on_row)):
            if not record.errors:
                valid_records += 1
                continue
            bad_records += 1
            for error in record.errors:
                errors += 1
                pending.append(
                    ImportRowError(
                        job=job,
                        row=error.row,
                        column=column_of.get(error.field, error.field)[:100],
                        value=_excerpt(error.value),
                        reason=str(error.reason)[:300],
                    )
                )
            if len(pending) >= ERROR_BATCH:
                ImportRowError.objects.bulk_create(pending)
                pending.clear()
    except (ImportFileError, csv.Error, UnicodeDecodeError) as exc:
        return _fail(
            job,
            _t("The file cannot be read at row %(row)d: %(error)s")
            % {"row": last_row[0], "error": exc},
        )
    ImportRowError.objects.bulk_create(pending)
    job.refresh_from_db(fields=["result"])
    job.result.update(valid_records=valid_records, bad_records=bad_records)
    job.total_rows = max(last_row[0] - 1, 0)
    job.processed_rows = job.total_rows
    job.error_count = errors
    job.status = ImportJob.Status.INVALID if errors else ImportJob.Status.VALID
    job.save(update_fields=["result", "total_rows", "processed_rows", "error_count", "status"])
    return job


def _excerpt(value: Any) -> str:
    text = str(value)
    return text if len(text) <= VALUE_EXCERPT else text[: VALUE_EXCERPT - 1] + "…"


def _fail(job: ImportJob, reason: str) -> ImportJob:
    job.refresh_from_db(fields=["result"])
    job.result["failure"] = reason
    job.status = ImportJob.Status.FAILED
    job.finished_at = timezone.now()
    job.save(update_fields=["result", "status", "finished_at"])
    return job


@transaction.atomic
def import_job_run_start(
    *, job: ImportJob, skip_invalid_rows: bool, by, queue: bool = True
) -> ImportJob:
    """Queue the import of a validated file; a file with errors only if skipping is accepted.

    ``queue=False`` leaves running the import to the caller (``run_pending_import``).
    """
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status == ImportJob.Status.INVALID and not skip_invalid_rows:
        raise MappingError(
            _t("The file has %(count)d errors: fix them, or tick “skip the listed bad rows”.")
            % {"count": job.error_count}
        )
    if job.status not in {ImportJob.Status.VALID, ImportJob.Status.INVALID}:
        raise MappingError(_t("Validate the file before importing it."))
    job.skip_invalid_rows = job.status == ImportJob.Status.INVALID
    job.status = ImportJob.Status.IMPORTING
    job.processed_rows = 0
    job.result["counts"] = {}
    job.result["checkpoint_row"] = 1
    job.save()
    audit_record(
        actor=by,
        action="import.start",
        target=job,
        department=job.owner_department,
        detail={"skip_invalid_rows": job.skip_invalid_rows, "errors": job.error_count},
    )
    if queue:
        _queue("customers.tasks.run_import", job.pk)
    return job


class _Abort(Exception):
    def __init__(self, record: Record) -> None:
        self.record = record


def import_job_run(*, job_id: int, budget_seconds: float | None = None) -> ImportJob | None:
    """Write the file chunk by chunk from the job's checkpoint; queue a continuation on budget.

    Each chunk commits with the checkpoint (the last file row written), so a re-run after a
    crash resumes there, and the importers' upserts make any overlap harmless. Records that
    turn out invalid now (say, a product deleted since validation) are skipped when the user
    accepted skipping, and otherwise stop the job as failed naming the row.
    """
    job = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.IMPORTING).first()
    if job is None:
        return None
    if budget_seconds is None and not settings.Q_CLUSTER.get("sync", False):
        budget_seconds = settings.Q_CLUSTER.get("timeout", 300) * 0.5
    started = time.monotonic()
    importer = get_importer(job.kind)(job=job)
    by = job.created_by
    checkpoint = int(job.result.get("checkpoint_row", 1))
    chunk: list[Record] = []
    skipped = 0
    try:
        for record in importer.records(mapped_rows(job, after_row=checkpoint)):
            if record.errors:
                if not job.skip_invalid_rows:
                    raise _Abort(record)
                skipped += 1
            else:
                chunk.append(record)
            if len(chunk) >= CHUNK_SIZE:
                _write_chunk(job, importer, chunk, skipped, record.last_row, by)
                checkpoint = record.last_row
                chunk, skipped = [], 0
                if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                    with transaction.atomic():
                        _queue("customers.tasks.run_import", job.pk)
                    return job
        if chunk or skipped:
            _write_chunk(job, importer, chunk, skipped, job.total_rows + 1, by)
        deadline = None if budget_seconds is None else started + budget_seconds
        if not import_derived_sync(job, deadline=deadline):
            with transaction.atomic():
                _queue("customers.tasks.run_import", job.pk)
            return job
    except _Abort as abort:
        _derived_sync_before_failing(job)
        error = abort.record.errors[0]
        return _fail(
            job,
            _t(
                "Row %(row)d is no longer valid (%(reason)s); nothing from row %(row)d on was "
                "imported. Validate the file again."
            )
            % {"row": error.row, "reason": error.reason},
        )
    except (ImportFileError, csv.Error, UnicodeDecodeError) as exc:
        return _fail(job, str(exc))
    except DatabaseError as exc:
        # The chunk's transaction rolled back: nothing of it is stored. Recorded on the
        # job, otherwise it would stay "importing" with no word of why.
        _derived_sync_before_failing(job)
        return _fail(
            job,
            _t(
                "The database refused the rows after row %(row)d (%(error)s); nothing from "
                "there on was imported. Start the import again: rows already imported are "
                "not duplicated."
            )
            % {"row": checkpoint, "error": str(exc).strip()[:300]},
        )
    job.status = ImportJob.Status.DONE
    job.processed_rows = job.total_rows
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "processed_rows", "finished_at"])
    audit_record(
        actor=by,
        action="import.done",
        target=job,
        department=job.owner_department,
        detail={"kind": job.kind, "source": job.source, **job.result.get("counts", {})},
    )
    return job


@transaction.atomic
def _write_chunk(
    job: ImportJob, importer: Importer, chunk: list[Record], skipped: int, last_row: int, by
) -> None:
    counts = importer.write(chunk, job=job, by=by) if chunk else {}
    derived = importer.derived_ids() if chunk else []
    if derived:
        job.result[DERIVED_KEY] = merge_id_ranges(job.result.get(DERIVED_KEY, []), derived)
    total = dict(job.result.get("counts", {}))
    total["rows_imported"] = total.get("rows_imported", 0) + sum(len(r.rows) for r in chunk)
    total["records_skipped"] = total.get("records_skipped", 0) + skipped
    for key, value in counts.items():
        total[key] = total.get(key, 0) + value
    job.result["counts"] = total
    job.result["checkpoint_row"] = last_row
    job.processed_rows = min(max(last_row - 1, 0), job.total_rows)
    job.save(update_fields=["result", "processed_rows"])
    reset_queries()  # with DEBUG on, the query log would otherwise hold every chunk's SQL


def run_pending_import(*, job: ImportJob) -> ImportJob:
    """Run a queued import to the end in this process (management command, tests)."""
    while True:
        job.refresh_from_db()
        if job.status != ImportJob.Status.IMPORTING:
            return job
        # No time budget: ``None`` would mean "the q2 default" and, past it, queue a
        # continuation that a running cluster would execute alongside this loop.
        import_job_run(job_id=job.pk, budget_seconds=math.inf)


DERIVED_KEY = "derived_pending"
"""Key of ``ImportJob.result``: id ranges [low, high] whose segment membership is due."""
DERIVED_BATCH = 50_000
"""Ids per ``segment_membership_sync`` call of the final pass (bounded memory)."""
MAX_DERIVED_RANGES = 1_000
"""Ranges kept at most: beyond, the closest ranges are joined (a superset is harmless)."""


def merge_id_ranges(ranges: Iterable[Sequence[int]], ids: Iterable[int]) -> list[list[int]]:
    """``ranges`` ([low, high], inclusive) joined with ``ids``, as few sorted ranges.

    At most ``MAX_DERIVED_RANGES`` are kept, so the job's result stays small however
    scattered the ids: the narrowest gaps are closed first. Syncing ids that changed
    nothing is harmless (each one's membership is evaluated and found as it was).
    """
    spans = [[int(low), int(high)] for low, high in ranges]
    run: list[int] | None = None
    for pk in sorted({int(pk) for pk in ids}):
        if run is not None and pk == run[1] + 1:
            run[1] = pk
            continue
        run = [pk, pk]
        spans.append(run)
    spans.sort()
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    excess = len(merged) - MAX_DERIVED_RANGES
    if excess > 0:
        gaps = sorted(range(1, len(merged)), key=lambda i: merged[i][0] - merged[i - 1][1])
        joined = set(gaps[:excess])
        kept: list[list[int]] = []
        for index, span in enumerate(merged):
            if index in joined:
                kept[-1][1] = span[1]
            else:
                kept.append(span)
        merged = kept
    return merged


def import_derived_sync(job: ImportJob, *, deadline: float | None = None) -> bool:
    """The job's final pass: dynamic segment membership of every person it wrote, once.

    Chunks leave the people they created or changed in ``result[DERIVED_KEY]`` (committed
    with their checkpoint); this evaluates every dynamic segment for them with
    ``customers.segments.segment_membership_sync`` in batches of ``DERIVED_BATCH`` ids,
    recording progress after each batch, so an interrupted pass is finished by the
    continuation or by the next run of the job. Returns False when ``deadline``
    (``time.monotonic()``) passed with ids left.
    """
    from customers.segments import segment_membership_sync

    while pending := [list(span) for span in job.result.get(DERIVED_KEY, [])]:
        low, high = pending[0]
        top = min(high, low + DERIVED_BATCH - 1)
        segment_membership_sync(customer_ids=range(low, top + 1))
        if top == high:
            pending.pop(0)
        else:
            pending[0][0] = top + 1
        job.result[DERIVED_KEY] = pending
        if not pending:
            job.result.pop(DERIVED_KEY)
        job.save(update_fields=["result"])
        if pending and deadline is not None and time.monotonic() > deadline:
            return False
    return True


def _derived_sync_before_failing(job: ImportJob) -> None:
    """Before a job fails, the chunks it stored get their segment membership too."""
    job.refresh_from_db(fields=["result"])  # what the committed chunks left
    try:
        import_derived_sync(job)
    except DatabaseError:  # left pending: the next run of the job does it
        logger.exception("import #%s: segment membership of its rows left pending", job.pk)


def import_refresh_derived(customer_ids: Iterable[int]) -> None:
    """Metrics and live segment membership of the customers a chunk touched."""
    from customers.services import customers_derived_refresh

    ids = sorted(set(customer_ids))
    if ids:
        customers_derived_refresh(customer_ids=ids)


# --------------------------------------------------------------------------- bulk SQL


def db_value(model, name: str, value: Any) -> Any:
    """``value`` of field ``name`` as the database driver takes it (for the bulk helpers)."""
    connection = connections[router.db_for_write(model)]
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def model_defaults(model, *, exclude: Collection[str], now) -> dict[str, Any]:
    """Every column of ``model`` but the key and ``exclude`` at its model default, as
    :func:`db_value` gives it (field name → value): the ``constants`` of a bulk insert.

    ``auto_now``/``auto_now_add`` fields get ``now``; a column with only a database default
    is left out, for the database to fill.
    """
    defaults: dict[str, Any] = {}
    for item in model._meta.concrete_fields:
        if item.primary_key or item.name in exclude:
            continue
        if getattr(item, "auto_now", False) or getattr(item, "auto_now_add", False):
            value = now
        elif not item.has_default() and item.has_db_default():
            continue
        else:
            value = item.get_default()
        defaults[item.name] = db_value(model, item.name, value)
    return defaults


def _statement_parts(model, names: Sequence[str], connection) -> tuple[list, str, str]:
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    return fields, quote(meta.db_table), ", ".join(quote(f.column) for f in fields)


def _unnest_select(fields, constants: list, connection) -> str:
    """PostgreSQL: ``SELECT`` of the constants and one array per varying column (parameters:
    the constants first, then the arrays)."""
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    consts = "".join(f", %s::{f.db_type(connection)}" for f, _value in constants)
    return f"SELECT u.*{consts} FROM unnest({arrays}) AS u"


def _split_constants(model, constants: Mapping[str, Any] | None) -> list[tuple[Any, Any]]:
    meta = model._meta
    return [(meta.get_field(name), value) for name, value in (constants or {}).items()]


def insert_rows(
    model,
    names: Sequence[str],
    rows: Sequence[Sequence],
    *,
    constants: Mapping[str, Any] | None = None,
) -> None:
    """INSERT ``rows`` of database values (in the order of the field ``names``), plus the
    same ``constants`` (field name → database value) in every row.

    PostgreSQL gets one ``INSERT … SELECT FROM unnest(…)`` (one array per column), SQLite
    one ``executemany`` of a prepared statement: no model instances, no per-row SQL
    compilation. Values must be what the driver takes: text, numbers and booleans as they
    are, others through :func:`db_value`. As with ``bulk_create``, signals are not sent and
    Python defaults are not applied: pass every column without a database default.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    consts = _split_constants(model, constants)
    fields, table, columns = _statement_parts(
        model, [*names, *(f.name for f, _v in consts)], connection
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            select = _unnest_select(fields[: len(names)], consts, connection)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) {select}",
                [*(v for _f, v in consts), *(list(column) for column in zip(*rows, strict=True))],
            )
            return
        values = tuple(v for _f, v in consts)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        cursor.executemany(sql, [(*row, *values) for row in rows] if values else rows)


def insert_returning(
    model,
    names: Sequence[str],
    rows: Sequence[Sequence],
    returning: Sequence[str],
    *,
    constants: Mapping[str, Any] | None = None,
) -> list[tuple]:
    """INSERT like :func:`insert_rows`; the ``returning`` columns of each row, raw.

    PostgreSQL takes the whole batch in one ``INSERT … SELECT FROM unnest(…)``, SQLite in
    multi-row ``INSERT … VALUES … RETURNING`` statements as large as its variable limit
    allows. Returned values are the driver's (compare them with the database values you
    inserted) and not promised in input order: return a unique key and match on it.
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    consts = _split_constants(model, constants)
    fields, table, columns = _statement_parts(
        model, [*names, *(f.name for f, _v in consts)], connection
    )
    quote = connection.ops.quote_name
    meta = model._meta
    back = ", ".join(quote(meta.get_field(name).column) for name in returning)
    result: list[tuple] = []
    if connection.vendor == "postgresql":
        select = _unnest_select(fields[: len(names)], consts, connection)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) {select} RETURNING {back}",
                [*(v for _f, v in consts), *(list(column) for column in zip(*rows, strict=True))],
            )
            return cursor.fetchall()
    if connection.vendor != "sqlite" or not connection.features.can_return_columns_from_insert:
        raise NotImplementedError("insert_returning needs PostgreSQL or SQLite 3.35+")
    connection.ensure_connection()
    try:
        import sqlite3

        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # pragma: no cover - Python < 3.11
        limit = 999
    values = tuple(v for _f, v in consts)
    per_statement = max(limit // len(fields), 1)
    placeholder = f"({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES "
                f"{', '.join([placeholder] * len(batch))} RETURNING {back}"
            )
            cursor.execute(sql, [value for row in batch for value in (*row, *values)])
            result.extend(cursor.fetchall())
    return result


def update_rows(model, names: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Set the fields ``names`` of many rows: each row is (values…, pk), database values.

    PostgreSQL: one ``UPDATE … FROM unnest(…)``; SQLite: ``UPDATE … WHERE pk = %s`` run
    for every row with one ``executemany``.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    fields, table, _columns = _statement_parts(model, names, connection)
    quote = connection.ops.quote_name
    pk = quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = [f.db_type(connection) for f in fields] + [
                model._meta.pk.rel_db_type(connection)
            ]
            aliases = [f"v{i}" for i in range(len(types))]
            assignments = ", ".join(
                f"{quote(f.column)} = u.{alias}" for f, alias in zip(fields, aliases, strict=False)
            )
            arrays = ", ".join(f"%s::{t}[]" for t in types)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest({arrays}) "
                f"AS u({', '.join(aliases)}) WHERE {table}.{pk} = u.{aliases[-1]}",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", rows)
