"""The report catalogue: what a report is made of, and the registry every report page joins.

A report is a list of :class:`Block` s built for one user and one set of
:class:`ReportFilters`. A block carries headline metrics, an optional plotly figure and the
table of numbers behind it. The page, the CSV/XLSX downloads and the JSON API all render
the same blocks, so a figure, its download and its API answer can never disagree.

Each report lives in its own module under ``reports/pages/`` and calls
:func:`register_report` when imported; ``ReportsConfig.ready`` imports them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from django.utils import timezone
from django.utils.functional import Promise

from reports.rollups import day_bounds

FILTER_NAMES = ("period", "compare", "department", "segment", "channel", "persona")


@dataclass(frozen=True)
class Period:
    """Local calendar days from ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        end = self.start - dt.timedelta(days=1)
        return Period(end - dt.timedelta(days=self.days - 1), end)

    def year_before(self) -> Period:
        """The same days a year earlier (29 February falls back to the 28th)."""
        return Period(_year_before(self.start), _year_before(self.end))

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """Aware datetimes ``[start, end + 1 day)`` in the current time zone, for raw-row
        filters."""
        return day_bounds(self.start, self.end)

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d}–{self.end:%Y-%m-%d}"


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


@dataclass(frozen=True)
class ReportFilters:
    """What the person asked to see; every report reads the filters that apply to it.

    ``department``, ``segment`` and ``persona`` are already checked to be visible to the
    asking user (:func:`reports.forms.report_filters`). ``segment_id`` is the segment the
    customer-level figures are restricted to: the chosen segment, else the persona's.
    """

    period: Period
    compare: Period | None = None
    department: Any = None  # config.org.models.Department
    segment: Any = None  # customers.models.Segment
    channel: str = ""  # experience.models.Touchpoint.Channel value
    persona: Any = None  # journeys.models.Persona

    @property
    def segment_id(self) -> int | None:
        if self.segment is not None:
            return self.segment.pk
        if self.persona is not None:
            return self.persona.segment_id
        return None

    def as_dict(self) -> dict[str, Any]:
        """The filters as plain values, for the API and for file names."""
        return {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "compare_start": self.compare.start.isoformat() if self.compare else None,
            "compare_end": self.compare.end.isoformat() if self.compare else None,
            "department": self.department.pk if self.department else None,
            "segment": self.segment.pk if self.segment else None,
            "channel": self.channel or None,
            "persona": self.persona.pk if self.persona else None,
        }


@dataclass(frozen=True)
class Column:
    """A table column; ``kind`` picks the formatting: text, int, yen, percent (0–100),
    ratio (0–1, shown as percent), score, float, date."""

    key: str
    label: str | Promise
    kind: str = "text"


@dataclass
class Table:
    columns: Sequence[Column]
    rows: list[dict[str, Any]]

    def matrix(self) -> list[list[Any]]:
        """Header and rows as lists, in column order, for CSV and XLSX."""
        header = [str(column.label) for column in self.columns]
        body = [[_plain(row.get(column.key)) for column in self.columns] for row in self.rows]
        return [header, *body]


@dataclass(frozen=True)
class Metric:
    """A headline number; ``previous`` is its value in the comparison period, if any."""

    key: str
    label: str | Promise
    value: int | float | Decimal | None
    unit: str = "count"  # count | percent | ratio | yen | score | float
    previous: int | float | Decimal | None = None
    hint: str | Promise = ""

    @classmethod
    def compared(
        cls, key: str, label, current, before, *, attr: str = "", unit: str = "count", hint=""
    ) -> Metric:
        """The metric read from attribute ``attr`` (default: ``key``) of the figures of the
        period (``current``) and of the comparison period (``before``, or None)."""
        attr = attr or key
        previous = getattr(before, attr) if before is not None else None
        return cls(key, label, getattr(current, attr), unit=unit, previous=previous, hint=hint)

    @property
    def change(self) -> float | None:
        """``value − previous`` (points for percentages and scores), when both exist."""
        if self.value is None or self.previous is None:
            return None
        return float(self.value) - float(self.previous)


@dataclass
class Block:
    """One section of a report: metrics, a figure, the table behind it.

    ``template`` names a partial that renders the block instead of the generic one (the
    RFM grid's clickable cells); ``note`` says, for example, that a filter does not apply.
    """

    key: str
    title: str | Promise
    help: str | Promise = ""
    metrics: list[Metric] = field(default_factory=list)
    figure: go.Figure | None = None
    table: Table | None = None
    template: str = ""
    note: str | Promise = ""
    context: dict[str, Any] = field(default_factory=dict)

    def figure_json(self) -> str:
        """The figure as JSON for the page (plotly escapes ``<``, ``>`` and ``/``, so it is
        safe inside a ``<script>`` element)."""
        return self.figure.to_json() if self.figure is not None else ""


@dataclass(frozen=True)
class ReportSpec:
    """A report of the catalogue: ``build(user, filters)`` returns its blocks.

    ``filters`` names the filters that change this report (a subset of ``FILTER_NAMES``);
    the page shows only those.
    """

    slug: str
    title: str | Promise
    summary: str | Promise
    build: Callable[..., list[Block]]
    filters: tuple[str, ...] = ("period", "compare")
    order: int = 100
    default_days: int = 30


_REPORTS: dict[str, ReportSpec] = {}


def register_report(spec: ReportSpec) -> ReportSpec:
    """Add (or replace, by slug) a report of the catalogue."""
    unknown = set(spec.filters) - set(FILTER_NAMES)
    if unknown:
        raise ValueError(f"unknown filters {sorted(unknown)} in report {spec.slug!r}")
    _REPORTS[spec.slug] = spec
    return spec


def report_specs() -> list[ReportSpec]:
    """Every registered report, in catalogue order."""
    return sorted(_REPORTS.values(), key=lambda spec: (spec.order, spec.slug))


def report_spec(slug: str) -> ReportSpec:
    """The report named ``slug``; ``LookupError`` when there is none."""
    return _REPORTS[slug]


def block_by_key(blocks: list[Block], key: str) -> Block:
    """The block named ``key``; ``LookupError`` when there is none."""
    for block in blocks:
        if block.key == key:
            return block
    raise LookupError(key)


def _plain(value: Any) -> Any:
    """A cell value as CSV/XLSX/JSON want it: Decimals whole as int, dates as ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Promise):
        return str(value)
    return value


def block_json(block: Block) -> dict[str, Any]:
    """One block as the API returns it: metrics and the table, no figure."""
    return {
        "key": block.key,
        "title": str(block.title),
        "note": str(block.note),
        "metrics": [
            {
                "key": metric.key,
                "label": str(metric.label),
                "value": _plain(metric.value),
                "unit": metric.unit,
                "previous": _plain(metric.previous),
            }
            for metric in block.metrics
        ],
        "columns": [
            {"key": column.key, "label": str(column.label), "kind": column.kind}
            for column in (block.table.columns if block.table else ())
        ],
        "rows": [
            {key: _plain(value) for key, value in row.items()}
            for row in (block.table.rows if block.table else ())
        ],
    }
