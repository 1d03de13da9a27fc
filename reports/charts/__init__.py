"""Pure chart builders: plain data in, a plotly ``Figure`` out; no ORM, no request.

Builders write each figure as plain trace and layout dicts and hand them to
:func:`plain_figure`, which skips plotly's per-property validation: building the same
figure from ``go.Bar(...)``, ``update_layout(...)`` and friends costs 10–25 ms of Python
per figure (benchmark B8), more than the SQL behind it; the dicts cost well under 1 ms and
serialise to the same JSON. ``tests/reports/test_chart_payloads.py`` validates every
builder's output with plotly's validators instead, so a misspelt property still fails a
test. Series are passed as whole lists, never point by point.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
from django.utils.translation import gettext as _

STRATEGY_COLOUR = "#4f3a7a"
PLATFORM_COLOUR = "#1f5b8a"
# Named scales of plotly.py are not known to plotly.js: the validator used to expand them.
PURPLES = plotly.colors.make_colorscale(plotly.colors.sequential.Purples)
HOUSE_LAYOUT = {
    "margin": {"l": 56, "r": 64, "t": 24, "b": 48},
    "legend": {"orientation": "h", "y": -0.2},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "color": "#373c44"},
}


@functools.cache
def default_template() -> dict[str, Any]:
    """plotly's default template as a plain dict, converted once: a figure without a
    template converts the template object again each time it is built (several ms)."""
    return pio.templates[pio.templates.default].to_plotly_json()


def plain_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A ``Figure`` from trace dicts (each with its ``type``) and a layout dict, without
    plotly's validation (see the module docstring), on plotly's default template."""
    return go.Figure(
        {"data": data, "layout": {"template": default_template(), **layout}}, _validate=False
    )


def report_figure(data: list[dict[str, Any]], **layout: Any) -> go.Figure:
    """A report figure: the traces on the layout every report shares (margins, legend
    below, transparent, house font); keyword arguments add to it or replace its parts."""
    return plain_figure(data, {**HOUSE_LAYOUT, **layout})


def report_layout(figure: go.Figure, **layout) -> go.Figure:
    """The house layout applied to a figure built elsewhere (validating: slower)."""
    figure.update_layout(**{**HOUSE_LAYOUT, **layout})
    return figure


def bar_traces(
    x: Sequence[str], series: Sequence[tuple[str, Sequence, str]], *, hover: str
) -> list[dict[str, Any]]:
    """One bar trace per ``(name, values, colour)`` over the same ``x``.

    ``hover`` is the traces' hover template; ``{name}`` in it becomes the series name.
    """
    labels = [str(label) for label in x]
    return [
        {
            "type": "bar",
            "x": labels,
            "y": list(values),
            "name": str(name),
            "marker": {"color": colour},
            "hovertemplate": hover.replace("{name}", str(name)),
        }
        for name, values, colour in series
    ]


def bar_series(
    x: Sequence[str], series: Sequence[tuple[str, Sequence, str]], *, hover: str
) -> go.Figure:
    """A figure with one bar trace per ``(name, values, colour)`` over the same ``x``."""
    return plain_figure(bar_traces(x, series, hover=hover), {})


def monthly_orders_figure(
    months: Sequence[dt.date], orders: Sequence[int], revenue: Sequence[int]
) -> go.Figure:
    """Orders per month as bars (left axis) and revenue in yen as a line (right axis)."""
    if not len(months) == len(orders) == len(revenue):
        raise ValueError("months, orders and revenue must have the same length")
    labels = [month.strftime("%Y-%m") for month in months]
    data = [
        {
            "type": "bar",
            "x": labels,
            "y": list(orders),
            "name": _("Orders"),
            "marker": {"color": PLATFORM_COLOUR},
            "hovertemplate": "%{x}: %{y:,}<extra></extra>",
        },
        {
            "type": "scatter",
            "x": labels,
            "y": list(revenue),
            "name": _("Revenue (¥)"),
            "yaxis": "y2",
            "mode": "lines+markers",
            "line": {"color": STRATEGY_COLOUR, "width": 3},
            "hovertemplate": "%{x}: ¥%{y:,}<extra></extra>",
        },
    ]
    return report_figure(
        data,
        margin={"l": 56, "r": 72, "t": 24, "b": 48},
        height=360,
        xaxis={"type": "category"},
        yaxis={"title": {"text": _("Orders")}, "rangemode": "tozero", "tickformat": ",d"},
        yaxis2={
            "title": {"text": _("Revenue (¥)")},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",.0f",
            "tickprefix": "¥",
            "showgrid": False,
        },
    )
