"""Pure chart builders of circle ③: plain data in, a plotly ``Figure`` out; no ORM, no request.

Selectors (``journeys.selectors``, ``journeys.maps.selectors``) feed them; views serialise
the figure with ``to_json()`` for the local plotly.js. Figures are written as plain trace and
layout dicts and built without plotly's per-property validation (as ``reports.charts`` does,
and for the same reason: validation costs 10–25 ms a figure); the tests validate them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from django.utils.translation import gettext as _

FUNNEL_COLOUR = "#1f5b8a"
EMOTION_COLOUR = "#c0392b"
REACH_COLOUR = "#9fb9cf"
EMOTION_MIN, EMOTION_MAX = -2, 2
FONT = {"family": "system-ui, sans-serif", "color": "#373c44"}


@functools.cache
def _template() -> dict[str, Any]:
    """plotly's default template as a plain dict, converted once (not per figure)."""
    return pio.templates[pio.templates.default].to_plotly_json()


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A ``Figure`` from trace and layout dicts, skipping plotly's validation."""
    return go.Figure({"data": data, "layout": {"template": _template(), **layout}}, _validate=False)


def funnel_figure(stages: Sequence[tuple[str, int]]) -> go.Figure:
    """The funnel as horizontal bars, widest at the top (the bundled plotly.js has no funnel
    trace); each bar's label shows its share of the first stage."""
    labels = [label for label, _count in stages]
    values = [count for _label, count in stages]
    first = values[0] if values else 0
    text = [
        f"{value:,} ({value * 100 / first:.1f}%)" if first else f"{value:,}" for value in values
    ]
    data = {
        "type": "bar",
        "x": values,
        "y": [str(label) for label in labels],
        "orientation": "h",
        "text": text,
        "textposition": "auto",
        "marker": {"color": FUNNEL_COLOUR},
        "hovertemplate": "%{y}: %{x:,}<extra></extra>",
    }
    return _figure(
        [data],
        {
            "margin": {"l": 96, "r": 24, "t": 16, "b": 32},
            "height": 280,
            "yaxis": {"autorange": "reversed", "type": "category"},
            "xaxis": {"rangemode": "tozero", "tickformat": ",d"},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": FONT,
        },
    )


def emotion_curve_figure(
    stage_names: Sequence[str],
    emotions: Sequence[int],
    reach: Sequence[int | None] | None = None,
) -> go.Figure:
    """The persona's feelings along the journey: a line on −2…+2 with a zero line, one point
    per stage (stage names as categories), and optionally each stage's reach as bars on a
    second axis, so a low point with many people stands out."""
    names = [str(name) for name in stage_names]
    if len(names) != len(emotions):
        raise ValueError("stage_names and emotions must have the same length")
    if reach is not None and len(reach) != len(names):
        raise ValueError("reach must have one value per stage")
    for value in emotions:
        if not EMOTION_MIN <= value <= EMOTION_MAX:
            raise ValueError(f"emotion {value} is outside {EMOTION_MIN}…{EMOTION_MAX}")
    # Two stages may share a name; categories must not collapse them into one point.
    labels = _unique_labels(names)
    data = []
    if reach is not None:
        data.append(
            {
                "type": "bar",
                "x": labels,
                "y": [value if value is not None else 0 for value in reach],
                "name": _("Reach (people)"),
                "yaxis": "y2",
                "marker": {"color": REACH_COLOUR},
                "opacity": 0.6,
                "hovertemplate": "%{x}: %{y:,}<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "x": labels,
            "y": list(emotions),
            "name": _("Emotion"),
            "mode": "lines+markers",
            "line": {"color": EMOTION_COLOUR, "width": 3, "shape": "spline"},
            "marker": {"size": 10},
            "hovertemplate": "%{x}: %{y:+d}<extra></extra>",
        }
    )
    layout = {
        "margin": {"l": 56, "r": 64 if reach is not None else 24, "t": 16, "b": 48},
        "height": 280,
        "showlegend": reach is not None,
        "legend": {"orientation": "h", "y": -0.25},
        "xaxis": {"type": "category"},
        "yaxis": {
            "title": {"text": _("Emotion")},
            "range": [EMOTION_MIN - 0.5, EMOTION_MAX + 0.5],
            "tickvals": list(range(EMOTION_MIN, EMOTION_MAX + 1)),
            "zeroline": True,
            "zerolinewidth": 2,
            "zerolinecolor": "#8a8f98",
        },
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": FONT,
    }
    if reach is not None:
        layout["yaxis2"] = {
            "title": {"text": _("Reach (people)")},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",d",
            "showgrid": False,
        }
    return _figure(data, layout)


def _unique_labels(names: Sequence[str]) -> list[str]:
    """The names, with " (2)", " (3)"… appended to repeats so each stays its own category."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels
