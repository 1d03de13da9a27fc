"""Figures of the value report: LTV curves, F2 bars, the retention heatmap (plain data in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import (
    PLATFORM_COLOUR,
    PURPLES,
    STRATEGY_COLOUR,
    bar_traces,
    report_figure,
)

VALUE_MARGIN = {"l": 64, "r": 24, "t": 24, "b": 56}


def ltv_figure(curves: Mapping[str, Sequence[tuple[int, int]]]) -> go.Figure:
    """Cumulative revenue per customer (yen) by months since the first order, one line per
    acquisition channel (label → ``(offset, yen)`` points)."""
    data = [
        {
            "type": "scatter",
            "x": [offset for offset, _value in points],
            "y": [value for _offset, value in points],
            "name": str(label),
            "mode": "lines+markers",
            "hovertemplate": "%{x}: ¥%{y:,}<extra>" + str(label) + "</extra>",
        }
        for label, points in curves.items()
    ]
    return report_figure(
        data,
        margin=VALUE_MARGIN,
        height=360,
        xaxis={"title": {"text": _("Months since first order")}, "dtick": 1, "rangemode": "tozero"},
        yaxis={
            "title": {"text": _("Revenue per customer (¥)")},
            "rangemode": "tozero",
            "tickformat": ",.0f",
            "tickprefix": "¥",
        },
    )


def f2_figure(
    cohorts: Sequence[str], rates: Sequence[float | None], rates_90d: Sequence[float | None]
) -> go.Figure:
    """F2 repeat rate per month of first purchase (ratios 0–1): ever, and within 90 days."""
    if not len(cohorts) == len(rates) == len(rates_90d):
        raise ValueError("cohorts, rates and rates_90d must have the same length")
    data = bar_traces(
        cohorts,
        [
            (_("Second order, ever"), rates, STRATEGY_COLOUR),
            (_("Second order within 90 days"), rates_90d, PLATFORM_COLOUR),
        ],
        hover="%{x}: %{y:.1%}<extra></extra>",
    )
    return report_figure(
        data,
        margin=VALUE_MARGIN,
        height=360,
        barmode="group",
        xaxis={"type": "category", "title": {"text": _("Month of first purchase")}},
        yaxis={"title": {"text": _("F2 repeat rate")}, "rangemode": "tozero", "tickformat": ".0%"},
    )


def retention_figure(
    cohorts: Sequence[str], offsets: int, shares: Sequence[Sequence[float | None]]
) -> go.Figure:
    """Share of each cohort (rows) buying in each month since its first (columns); None
    cells (months not reached yet) stay blank."""
    if len(cohorts) != len(shares) or any(len(row) != offsets for row in shares):
        raise ValueError("shares must have one row per cohort and one column per offset")
    data = {
        "type": "heatmap",
        "z": [list(row) for row in shares],
        "x": list(range(offsets)),
        "y": [str(cohort) for cohort in cohorts],
        "zmin": 0,
        "zmax": 1,
        "colorscale": PURPLES,
        "colorbar": {"tickformat": ".0%"},
        "hoverongaps": False,
        "hovertemplate": _("Cohort %{y}, month %{x}: %{z:.1%}") + "<extra></extra>",
    }
    return report_figure(
        [data],
        margin=VALUE_MARGIN,
        height=max(280, 40 + 22 * len(cohorts)),
        xaxis={"title": {"text": _("Months since first order")}, "dtick": 1, "side": "top"},
        yaxis={"type": "category", "autorange": "reversed", "title": {"text": _("Cohort")}},
    )
