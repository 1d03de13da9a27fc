"""Pure chart builders: plain data in, a plotly ``Figure`` out; no ORM, no request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

STRATEGY_COLOUR = "#4f3a7a"
PLATFORM_COLOUR = "#1f5b8a"
HOUSE_LAYOUT = {
    "margin": {"l": 56, "r": 64, "t": 24, "b": 48},
    "legend": {"orientation": "h", "y": -0.2},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "color": "#373c44"},
}


def report_layout(figure: go.Figure, **layout) -> go.Figure:
    """The layout every report figure shares (margins, legend below, transparent, house
    font); keyword arguments add to it or replace its parts."""
    figure.update_layout(**{**HOUSE_LAYOUT, **layout})
    return figure


def bar_series(
    x: Sequence[str], series: Sequence[tuple[str, Sequence, str]], *, hover: str
) -> go.Figure:
    """A figure with one bar trace per ``(name, values, colour)`` over the same ``x``.

    ``hover`` is the traces' hover template; ``{name}`` in it becomes the series name.
    """
    figure = go.Figure()
    for name, values, colour in series:
        figure.add_trace(
            go.Bar(
                x=list(x),
                y=list(values),
                name=name,
                marker_color=colour,
                hovertemplate=hover.replace("{name}", name),
            )
        )
    return figure


def monthly_orders_figure(
    months: Sequence[dt.date], orders: Sequence[int], revenue: Sequence[int]
) -> go.Figure:
    """Orders per month as bars (left axis) and revenue in yen as a line (right axis)."""
    if not len(months) == len(orders) == len(revenue):
        raise ValueError("months, orders and revenue must have the same length")
    labels = [month.strftime("%Y-%m") for month in months]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=labels,
            y=list(orders),
            name=_("Orders"),
            marker_color=PLATFORM_COLOUR,
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=labels,
            y=list(revenue),
            name=_("Revenue (¥)"),
            yaxis="y2",
            mode="lines+markers",
            line={"color": STRATEGY_COLOUR, "width": 3},
            hovertemplate="%{x}: ¥%{y:,}<extra></extra>",
        )
    )
    return report_layout(
        figure,
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
