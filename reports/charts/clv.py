"""CLV-report figures (holdout check, P(alive) and value histograms); no ORM, no request."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import PLATFORM_COLOUR, STRATEGY_COLOUR, bar_traces, report_figure
from reports.charts.nps import PASSIVE_COLOUR


def holdout_figure(
    buckets: Sequence[str], predicted: Sequence[float], actual: Sequence[float]
) -> go.Figure:
    """Mean purchases per customer in the holdout, predicted vs actual, by the number of
    repeat purchases in the calibration period (the check of Fader, Hardie & Lee, fig. 4)."""
    if not len(buckets) == len(predicted) == len(actual):
        raise ValueError("buckets, predicted and actual must have the same length")
    data = bar_traces(
        buckets,
        [(_("Actual"), actual, PLATFORM_COLOUR), (_("Predicted"), predicted, STRATEGY_COLOUR)],
        hover="%{x}: %{y:.2f}<extra>{name}</extra>",
    )
    return report_figure(
        data,
        height=340,
        barmode="group",
        xaxis={
            "title": {"text": _("Repeat purchases in the calibration period")},
            "type": "category",
        },
        yaxis={
            "title": {"text": _("Purchases per customer in the holdout")},
            "rangemode": "tozero",
        },
    )


def histogram_figure(
    labels: Sequence[str],
    one_time: Sequence[int],
    repeat: Sequence[int],
    *,
    x_title: str,
) -> go.Figure:
    """Customers per bin (pre-aggregated), stacked: repeat buyers and one-time buyers."""
    if not len(labels) == len(one_time) == len(repeat):
        raise ValueError("labels, one_time and repeat must have the same length")
    data = bar_traces(
        labels,
        [
            (_("Repeat buyers"), repeat, STRATEGY_COLOUR),
            (_("One purchase so far"), one_time, PASSIVE_COLOUR),
        ],
        hover="%{x}: %{y:,}<extra>{name}</extra>",
    )
    return report_figure(
        data,
        height=320,
        barmode="stack",
        bargap=0.05,
        xaxis={"title": {"text": x_title}, "type": "category"},
        yaxis={"title": {"text": _("Customers")}, "rangemode": "tozero", "tickformat": ",d"},
    )


def segment_value_figure(names: Sequence[str], values: Sequence[float]) -> go.Figure:
    """Total predicted value per segment, horizontal bars, highest at the top."""
    if len(names) != len(values):
        raise ValueError("names and values must have the same length")
    data = {
        "type": "bar",
        "x": list(values)[::-1],
        "y": [str(name) for name in names][::-1],
        "orientation": "h",
        "marker": {"color": STRATEGY_COLOUR},
        "hovertemplate": "%{y}: ¥%{x:,.0f}<extra></extra>",
    }
    return report_figure(
        [data],
        height=max(240, 28 * len(names) + 80),
        xaxis={
            "title": {"text": _("Predicted value (¥)")},
            "tickformat": ",.0f",
            "tickprefix": "¥",
        },
        yaxis={"type": "category", "automargin": True},
    )
