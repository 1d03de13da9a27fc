"""The importer of offline events (the store system's nightly upload), registered into
circle ①'s import machinery.

One row per event. Each row is built into an item of the ingestion API's shape and checked
by the same :class:`~experience.ingest.EventValidator`, then stored by the same
:func:`~experience.ingest.events_store`, so a file and an API batch accept and refuse the
same things, and a row with an ``event_id`` already stored from the job's source is
counted as a duplicate, not stored twice (importing the same file again stores nothing
new; rows without an ``event_id`` have nothing to recognise them by and would be stored
again).

Differences from the API, because files come from people and spreadsheets: a time without
a zone is read as Japan time (like the orders import), and properties come either from a
``properties`` column holding a JSON object or from ``prop_<name>`` columns, whose text is
converted to the type the event type's schema declares (``prop_price`` = "3200" → 3200).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from customers.imports import Importer, ImportField, Record, RowError, register_importer
from customers.models import Identity
from experience.importers import parse_ordered_at
from experience.ingest import EventValidator, events_store

IDENTIFIER_ALIASES = {
    Identity.Kind.EMAIL: ("メールアドレス", "mail", "e-mail"),
    Identity.Kind.PHONE: ("電話番号", "tel", "telephone"),
    Identity.Kind.POS: ("会員番号", "member id", "pos member id"),
    Identity.Kind.APP: ("app user id", "アプリid"),
    Identity.Kind.LINE: ("line id",),
    Identity.Kind.DMP: ("dmp id",),
    Identity.Kind.COOKIE: ("cookie id",),
}
TRUE = {"true", "1", "yes", "y", "はい"}
FALSE = {"false", "0", "no", "n", "いいえ"}
VALUE_SEPARATORS = re.compile(r"[\s,;、]+")
PROP = "prop_"


def _convert(kind: str | None, text: str) -> Any:
    """A cell's text as the schema type wants it; unconvertible text is left as text, so
    the validator reports it against the schema like any other bad value."""
    if kind in {"number", "integer"}:
        folded = text.replace(",", "").strip()
        try:
            return int(folded)
        except ValueError:
            pass
        if kind == "number":
            try:
                return float(folded)
            except ValueError:
                return text
        return text
    if kind == "boolean":
        folded = text.strip().casefold()
        return True if folded in TRUE else False if folded in FALSE else text
    if kind in {"object", "array"}:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class EventImporter(Importer):
    """Rows of offline events (store visits, purchases, calls) → events."""

    kind = "events"
    label = _("Events")

    def __init__(self, *, job=None) -> None:
        super().__init__(job=job)
        self.validator = EventValidator()
        self.schemas = {name: schema for name, (_pk, schema) in self.validator.types.items()}

    def fields(self) -> list[ImportField]:
        fields = [
            ImportField("type", _("Event type"), ("event", "event type", "イベント", "種別"), True),
            ImportField(
                "occurred_at",
                _("Occurred at"),
                ("time", "date", "timestamp", "日時", "来店日時", "発生日時"),
                True,
            ),
            ImportField("event_id", _("Event ID"), ("id", "イベントid")),
            *(
                ImportField(kind, label, IDENTIFIER_ALIASES.get(kind, ()))
                for kind, label in Identity.Kind.choices
                if kind != Identity.Kind.CUSTOM
            ),
            ImportField("touchpoint", _("Touchpoint"), ("store", "channel", "店舗", "接点")),
            ImportField("properties", _("Properties (JSON)"), ("json", "プロパティ")),
            ImportField("values", _("Experience values"), ("experience values", "提供価値")),
        ]
        names = sorted({name for schema in self.schemas.values() for name in schema})
        fields += [ImportField(f"{PROP}{name}", f"{PROP}{name}") for name in names]
        return fields

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        for number, values in rows:
            yield self._record(number, values)

    def _record(self, number: int, values: dict[str, str]) -> Record:
        record = Record(rows=[number])
        errors = record.errors
        type_name = values.get("type", "").strip()
        item: dict[str, Any] = {"type": type_name}
        raw_time = values.get("occurred_at", "")
        if raw_time.strip():
            try:
                item["occurred_at"] = parse_ordered_at(raw_time)
            except ValueError as exc:
                errors.append(RowError(number, "occurred_at", raw_time, str(exc)))
                item["occurred_at"] = None
        else:
            item["occurred_at"] = None
        if values.get("event_id", "").strip():
            item["event_id"] = values["event_id"].strip()
        item["identifiers"] = {
            kind: values[kind]
            for kind in Identity.Kind.values
            if kind != Identity.Kind.CUSTOM and values.get(kind, "").strip()
        }
        if values.get("touchpoint", "").strip():
            item["touchpoint"] = values["touchpoint"].strip()
        properties: dict[str, Any] = {}
        raw_json = values.get("properties", "").strip()
        if raw_json:
            try:
                properties = json.loads(raw_json)
            except ValueError:
                properties = None
            if not isinstance(properties, dict):
                errors.append(
                    RowError(
                        number,
                        "properties",
                        raw_json,
                        _t('not a JSON object, e.g. {"sku": "FL-0001"}'),
                    )
                )
                properties = {}
        schema = self.schemas.get(type_name, {})
        for key, text in values.items():
            if key.startswith(PROP) and text.strip():
                name = key[len(PROP) :]
                properties[name] = _convert(schema.get(name), text.strip())
        item["properties"] = properties
        raw_values = values.get("values", "").strip()
        if raw_values:
            item["values"] = [code for code in VALUE_SEPARATORS.split(raw_values) if code]
        event, problems = self.validator.clean(item)
        for path, reason in problems:
            if path == "occurred_at" and any(e.field == "occurred_at" for e in errors):
                continue
            field = self._column(path, values)
            errors.append(RowError(number, field, values.get(field, ""), reason))
        if not errors:
            record.data["event"] = event
        return record

    @staticmethod
    def _column(path: str, values: dict[str, str]) -> str:
        """The importer field a validator path points at (``properties.price`` → the
        ``prop_price`` column when the file has one)."""
        head, _dot, rest = path.partition(".")
        if head == "identifiers":
            return rest or ""
        if head == "properties" and rest and f"{PROP}{rest}" in values:
            return f"{PROP}{rest}"
        if head == "properties":
            return "properties"
        return head if head in values or head in {"type", "occurred_at"} else ""

    def write(self, records: list[Record], *, job, by) -> dict[str, int]:
        result = events_store(
            events=[record.data["event"] for record in records], source=job.source, by=by
        )
        return {"events_stored": len(result.stored), "events_duplicate": result.duplicates}


register_importer(EventImporter.kind, EventImporter)
