"""Formatting of report numbers by their unit: counts, yen, percentages, scores."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def report_value(value, kind: str = "count") -> str:
    """``value`` formatted for a column or metric ``kind``; ``—`` when there is none.

    Kinds: count/int, yen, percent (0–100), ratio (0–1 shown as a percentage), score,
    float, date, text.
    """
    if value is None or value == "":
        return "—"
    if kind in ("count", "int"):
        return intcomma(int(value))
    if kind == "yen":
        return f"¥{intcomma(round(value))}"
    if kind == "percent":
        return f"{floatformat(value, 1)}%"
    if kind == "ratio":
        return f"{floatformat(float(value) * 100, 1)}%"
    if kind == "score":
        return floatformat(value, 1)
    if kind == "float":
        return floatformat(value, "2g")
    return str(value)


@register.filter
def report_cell(row: dict, column) -> str:
    """One table cell: the row's value for ``column``, formatted by the column's kind."""
    return report_value(row.get(column.key), column.kind)


@register.filter
def report_change(metric) -> str:
    """The change of a metric against its comparison period, signed; empty when unknown."""
    change = metric.change
    if change is None:
        return ""
    sign = "+" if change > 0 else ("±" if change == 0 else "−")
    magnitude = abs(change)
    if metric.unit in ("percent", "score"):
        return f"{sign}{floatformat(magnitude, 1)}"
    if metric.unit == "ratio":
        return f"{sign}{floatformat(magnitude * 100, 1)}"
    if metric.unit == "yen":
        return f"{sign}¥{intcomma(round(magnitude))}"
    if metric.unit == "float":
        return f"{sign}{floatformat(magnitude, 2)}"
    return f"{sign}{intcomma(round(magnitude))}"
