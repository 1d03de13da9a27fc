"""The DMP signals importer: audience data from an external DMP, keyed by a DMP ID.

One row per signal: ``dmp_id``, ``signal`` (``wedding``, ``moving``, ``job_change``,
``childbirth``, ``competitor:<name>``, ``substitute:<category>``…), ``score`` (0–1) and
``observed_at``. Each row becomes a ``dmp_signal`` event of the person known by that DMP ID
(identity kind ``dmp``); an unknown DMP ID creates an anonymous profile, merged later when
the person identifies. The events go through the ingestion path (validation, idempotent
storage, one identity resolution per chunk, the after-ingest pipeline), so the situation
rules on ``dmp_signal`` run on them. Importing the same file twice stores nothing new: each
row's ``event_id`` is a digest of its DMP ID, signal and time.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from customers.imports import Importer, ImportField, Record, RowError, register_importer
from customers.models import Identity
from experience.importers import parse_ordered_at
from experience.ingest import EventValidator, events_store
from experience.situations import DMP_SIGNAL_EVENT, dmp_signal_event_type

DMP_IMPORT_KIND = "dmp"
"""``ImportJob.kind`` of DMP signal files (the column holds at most ten characters)."""
DMP_SOURCE = "dmp-import"
"""Event source of imported signals: replays are recognised across files and jobs."""
SIGNAL_MAX = 100
# Item paths of the ingestion validator → the columns of this file.
_COLUMNS = {
    "identifiers.dmp": "dmp_id",
    "identifiers": "dmp_id",
    "occurred_at": "observed_at",
    "properties.signal": "signal",
    "properties.score": "score",
}


class DmpSignalImporter(Importer):
    """DMP signal rows → ``dmp_signal`` events of the people known by their DMP IDs."""

    kind = DMP_IMPORT_KIND
    label = _("DMP signals")

    def __init__(self, *, job=None) -> None:
        super().__init__(job=job)
        dmp_signal_event_type()
        self.validator = EventValidator()

    def fields(self) -> list[ImportField]:
        return [
            ImportField(
                "dmp_id", _("DMP ID"), ("dmp", "audience id", "user id", "DMP会員ID"), True
            ),
            ImportField("signal", _("Signal"), ("segment", "interest", "シグナル"), True),
            ImportField("score", _("Score"), ("confidence", "probability", "スコア"), True),
            ImportField(
                "observed_at", _("Observed at"), ("date", "timestamp", "time", "観測日時"), True
            ),
        ]

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        for number, values in rows:
            yield self._record(number, values)

    def _record(self, number: int, values: dict[str, str]) -> Record:
        record = Record(rows=[number])
        errors = record.errors
        dmp_id = values.get("dmp_id", "").strip()
        if not dmp_id:
            errors.append(RowError(number, "dmp_id", "", _t("the DMP ID is missing")))
        signal = unicodedata.normalize("NFKC", values.get("signal", "")).strip().casefold()
        if not signal:
            errors.append(RowError(number, "signal", "", _t("the signal is missing")))
        elif len(signal) > SIGNAL_MAX:
            errors.append(
                RowError(
                    number,
                    "signal",
                    signal[:60],
                    _t("longer than %(max)d characters") % {"max": SIGNAL_MAX},
                )
            )
        raw_score = unicodedata.normalize("NFKC", values.get("score", "")).strip()
        score = None
        try:
            score = float(raw_score)
        except ValueError:
            errors.append(RowError(number, "score", raw_score, _t("not a number between 0 and 1")))
        else:
            if not 0 <= score <= 1:
                errors.append(
                    RowError(number, "score", raw_score, _t("not a number between 0 and 1"))
                )
        raw_time = values.get("observed_at", "")
        observed_at = None
        try:
            observed_at = parse_ordered_at(raw_time)
        except ValueError as exc:
            errors.append(RowError(number, "observed_at", raw_time, str(exc)))
        if errors:
            return record
        digest = hashlib.sha256(
            f"{dmp_id}\x1f{signal}\x1f{observed_at.isoformat()}".encode()
        ).hexdigest()[:40]
        item = {
            "type": DMP_SIGNAL_EVENT,
            "occurred_at": observed_at,
            "event_id": f"dmp-{digest}",
            "identifiers": {Identity.Kind.DMP: dmp_id},
            "properties": {"signal": signal, "score": score},
        }
        event, problems = self.validator.clean(item)
        for path, reason in problems:
            column = _COLUMNS.get(path, "")
            errors.append(RowError(number, column, values.get(column, ""), reason))
        record.data["event"] = event
        return record

    def write(self, records: list[Record], *, job, by) -> dict[str, int]:
        stored = events_store(
            events=[record.data["event"] for record in records], source=DMP_SOURCE, by=by
        )
        return {"signals_stored": len(stored.stored), "signals_duplicate": stored.duplicates}


register_importer(DmpSignalImporter.kind, DmpSignalImporter)
