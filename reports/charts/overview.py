"""Figures of the four-circle overview and of data circulation: plain data in, Figure out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import PLATFORM_COLOUR, STRATEGY_COLOUR, report_figure

IN_COLOURS = ("#2a7f62", "#5fae8f", "#a3d4bf")
OUT_COLOURS = (PLATFORM_COLOUR, "#6c9bc2")
RESULT_COLOURS = (STRATEGY_COLOUR, "#9a7fc4")


def loop_figure(
    days: Sequence[dt.date],
    data_in: Mapping[str, Sequence[int]],
    action_out: Mapping[str, Sequence[int]],
    results: Mapping[str, Sequence[int]],
) -> go.Figure:
    """The loop day by day: three stacked panels (data in, action out, results) sharing the
    time axis, one line per series; the mappings are label → one value per day."""
    for series in (data_in, action_out, results):
        for label, values in series.items():
            if len(values) != len(days):
                raise ValueError(f"series {label!r} does not have one value per day")
    x = [day.isoformat() for day in days]
    mode = "lines+markers" if len(days) <= 31 else "lines"
    data = []
    for row, (series, colours) in enumerate(
        ((data_in, IN_COLOURS), (action_out, OUT_COLOURS), (results, RESULT_COLOURS)), start=1
    ):
        axis = "" if row == 1 else str(row)
        for index, (label, values) in enumerate(series.items()):
            data.append(
                {
                    "type": "scatter",
                    "x": x,
                    "y": list(values),
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    "name": str(label),
                    "mode": mode,
                    "line": {"color": colours[index % len(colours)], "width": 2},
                    "hovertemplate": "%{x}: %{y:,}<extra>" + str(label) + "</extra>",
                }
            )
    # Three panels sharing the time axis (what make_subplots(rows=3, shared_xaxes=True,
    # vertical_spacing=0.08) lays out), each titled above its top edge.
    domains = ((0.72, 1.0), (0.36, 0.64), (0.0, 0.28))
    titles = (_("Data in"), _("Action out"), _("Results"))
    axes = {}
    for row, (low, high) in enumerate(domains, start=1):
        axis = "" if row == 1 else str(row)
        axes[f"xaxis{axis}"] = {"anchor": f"y{axis}", "domain": [0.0, 1.0]}
        if row < len(domains):
            axes[f"xaxis{axis}"] |= {"matches": "x3", "showticklabels": False}
        axes[f"yaxis{axis}"] = {"anchor": f"x{axis}", "domain": [low, high]}
    return report_figure(
        data,
        annotations=[
            {
                "font": {"size": 16},
                "showarrow": False,
                "text": title,
                "x": 0.5,
                "xanchor": "center",
                "xref": "paper",
                "y": high,
                "yanchor": "bottom",
                "yref": "paper",
            }
            for title, (_low, high) in zip(titles, domains, strict=True)
        ],
        **axes,
        height=560,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.08},
        hovermode="x unified",
    )


def circulation_figure(
    owners: Sequence[str], users: Sequence[str], counts: Sequence[Sequence[int]]
) -> go.Figure:
    """Department × department heatmap: ``counts[i][j]`` segments and campaigns of user
    department ``users[i]`` that use data owned by ``owners[j]``."""
    if len(counts) != len(users) or any(len(row) != len(owners) for row in counts):
        raise ValueError("counts must have one row per user and one column per owner")
    data = {
        "type": "heatmap",
        "x": [str(owner) for owner in owners],
        "y": [str(user) for user in users],
        "z": [list(row) for row in counts],
        "colorscale": [[0, "#f4f1fa"], [1, STRATEGY_COLOUR]],
        "text": [[str(value) for value in row] for row in counts],
        "texttemplate": "%{text}",
        "hovertemplate": (
            _("%(user)s uses data of %(owner)s") % {"user": "%{y}", "owner": "%{x}"}
            + ": %{z}<extra></extra>"
        ),
        "showscale": False,
    }
    return report_figure(
        [data],
        height=120 + 50 * max(len(users), 1),
        margin={"l": 160, "r": 20, "t": 20, "b": 80},
        xaxis={"title": {"text": _("Data owned by")}, "side": "bottom"},
        yaxis={"title": {"text": _("Used by")}, "autorange": "reversed"},
    )
