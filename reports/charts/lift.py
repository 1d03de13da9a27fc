"""The campaign-lift figure: treatment − holdout per campaign, with its 95 % interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import PLATFORM_COLOUR, STRATEGY_COLOUR, report_figure

NEUTRAL_COLOUR = "#8a8f98"


@dataclass(frozen=True)
class LiftPoint:
    """One measured lift of one campaign, in percentage points."""

    campaign: str
    difference: float
    low: float
    high: float


def lift_figure(
    conversion: Sequence[LiftPoint],
    purchase: Sequence[LiftPoint] = (),
    repeat: Sequence[LiftPoint] = (),
) -> go.Figure:
    """Lift (points) per campaign as markers with error bars; one trace per measure."""
    data = []
    for points, name, colour, symbol in (
        (conversion, _("Conversion"), STRATEGY_COLOUR, "circle"),
        (purchase, _("Purchase in window"), PLATFORM_COLOUR, "diamond"),
        (repeat, _("Repeat purchase"), NEUTRAL_COLOUR, "square"),
    ):
        if not points:
            continue
        data.append(
            {
                "type": "scatter",
                "x": [point.difference for point in points],
                "y": [str(point.campaign) for point in points],
                "name": name,
                "mode": "markers",
                "marker": {"color": colour, "size": 10, "symbol": symbol},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [point.high - point.difference for point in points],
                    "arrayminus": [point.difference - point.low for point in points],
                    "color": colour,
                },
                "hovertemplate": "%{y}: %{x:+.2f} pt<extra>" + name + "</extra>",
            }
        )
    rows = max((len(points) for points in (conversion, purchase, repeat)), default=0)
    return report_figure(
        data,
        # The zero line: what add_vline draws, across the whole plot height.
        shapes=[
            {
                "type": "line",
                "x0": 0,
                "x1": 0,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "y domain",
                "line": {"color": "#373c44", "width": 1, "dash": "dot"},
            }
        ],
        margin={"l": 220, "r": 24, "t": 24, "b": 56},
        height=max(240, 60 + 48 * rows),
        legend={"orientation": "h", "y": -0.25},
        xaxis={"title": {"text": _("Treatment − holdout (percentage points)")}, "zeroline": False},
        yaxis={"type": "category", "autorange": "reversed"},
    )
