"""Figures of the CX-value report: a value × measure heatmap and weekly trends per value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import report_figure

# One colour per experience value, in taxonomy order (deal, convenience, fun, reassurance,
# empathy).
VALUE_COLOURS = ("#c4572a", "#1f5b8a", "#d49a1c", "#3a7a4f", "#4f3a7a")


def value_heatmap(
    values: Sequence[str],
    measures: Sequence[str],
    cells: Sequence[Sequence[float | None]],
    texts: Sequence[Sequence[str]],
) -> go.Figure:
    """Values (rows) × measures (columns); colour is each cell relative to the largest
    magnitude of its column (−1…1), the text the figure itself."""
    if len(cells) != len(values) or any(len(row) != len(measures) for row in cells):
        raise ValueError("cells must be values × measures")
    scaled: list[list[float | None]] = [[None] * len(measures) for _row in values]
    for column in range(len(measures)):
        largest = max((abs(row[column]) for row in cells if row[column] is not None), default=0)
        for index, row in enumerate(cells):
            if row[column] is not None:
                scaled[index][column] = row[column] / largest if largest else 0.0
    data = {
        "type": "heatmap",
        "z": scaled,
        "x": [str(measure) for measure in measures],
        "y": [str(value) for value in values],
        "text": [list(row) for row in texts],
        "texttemplate": "%{text}",
        "hovertemplate": "%{y} · %{x}: %{text}<extra></extra>",
        "colorscale": [[0, "#c4572a"], [0.5, "#f4f1ea"], [1, "#4f3a7a"]],
        "zmin": -1,
        "zmax": 1,
        "showscale": False,
        "xgap": 2,
        "ygap": 2,
    }
    return report_figure(
        [data],
        margin={"l": 170, "r": 16, "t": 16, "b": 96},
        height=360,
        xaxis={"type": "category", "tickangle": -30},
        yaxis={"type": "category", "autorange": "reversed"},
    )


def value_trend(
    weeks: Sequence[dt.date],
    events: Mapping[str, Sequence[int]],
    conversions: Mapping[str, Sequence[int]],
) -> go.Figure:
    """Per value, a line of events delivering the value per week (left axis) and a dotted
    line of campaign conversions (right axis); keys of the mappings are value labels."""
    labels = [week.isoformat() for week in weeks]
    data = []
    for index, (label, series) in enumerate(events.items()):
        colour = VALUE_COLOURS[index % len(VALUE_COLOURS)]
        if len(series) != len(weeks):
            raise ValueError("every series needs one number per week")
        name = str(label)
        data.append(
            {
                "type": "scatter",
                "x": labels,
                "y": list(series),
                "name": name,
                "legendgroup": name,
                "mode": "lines+markers",
                "line": {"color": colour, "width": 2},
                "hovertemplate": "%{x}: %{y:,}<extra>" + label + "</extra>",
            }
        )
        converted = conversions.get(label)
        if converted is not None:
            data.append(
                {
                    "type": "scatter",
                    "x": labels,
                    "y": list(converted),
                    "name": _("%(value)s: conversions") % {"value": name},
                    "legendgroup": name,
                    "yaxis": "y2",
                    "mode": "lines",
                    "line": {"color": colour, "width": 1, "dash": "dot"},
                    "hovertemplate": "%{x}: %{y:,}<extra>" + label + "</extra>",
                }
            )
    return report_figure(
        data,
        margin={"l": 56, "r": 64, "t": 16, "b": 48},
        height=380,
        legend={"orientation": "h", "y": -0.2},
        xaxis={"type": "category"},
        yaxis={"title": {"text": _("Events delivering the value")}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": _("Campaign conversions")},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
