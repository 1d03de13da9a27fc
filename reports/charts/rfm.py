"""Customers-report figures (RFM heatmap, dormancy by acquisition month); no ORM, no request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import PURPLES, bar_traces, report_figure
from reports.charts.nps import DETRACTOR_COLOUR

DORMANT_COLOUR = "#d29a2b"


def rfm_heatmap_figure(
    counts: Sequence[Sequence[int]],
    revenue: Sequence[Sequence[float]],
    recency_scores: Sequence[int],
    frequency_scores: Sequence[int],
) -> go.Figure:
    """Customers per cell: ``counts[i][j]`` is recency ``recency_scores[i]`` and frequency
    ``frequency_scores[j]``; the first row is drawn at the bottom."""
    if len(counts) != len(recency_scores) or any(
        len(row) != len(frequency_scores) for row in counts
    ):
        raise ValueError("counts must have one row per recency and one column per frequency")
    data = {
        "type": "heatmap",
        "z": [list(row) for row in counts],
        "x": [str(score) for score in frequency_scores],
        "y": [str(score) for score in recency_scores],
        "customdata": [list(row) for row in revenue],
        "colorscale": PURPLES,
        "text": [[f"{value:,}" for value in row] for row in counts],
        "texttemplate": "%{text}",
        "hovertemplate": _("R %(r)s · F %(f)s: %(customers)s customers, %(revenue)s")
        % {"r": "%{y}", "f": "%{x}", "customers": "%{z:,}", "revenue": "¥%{customdata:,.0f}"}
        + "<extra></extra>",
        "colorbar": {"title": {"text": _("Customers")}},
    }
    return report_figure(
        [data],
        height=400,
        xaxis={"title": {"text": _("Frequency score")}, "type": "category"},
        yaxis={"title": {"text": _("Recency score")}, "type": "category"},
    )


def dormancy_figure(
    months: Sequence[dt.date], dormant: Sequence[float | None], churned: Sequence[float | None]
) -> go.Figure:
    """Dormant and churned shares (%) of each acquisition month's buyers, stacked."""
    if not len(months) == len(dormant) == len(churned):
        raise ValueError("months, dormant and churned must have the same length")
    labels = [month.strftime("%Y-%m") for month in months]
    data = bar_traces(
        labels,
        [(_("Churned"), churned, DETRACTOR_COLOUR), (_("Dormant"), dormant, DORMANT_COLOUR)],
        hover="%{x}: %{y:.1f}%<extra></extra>",
    )
    return report_figure(
        data,
        height=360,
        barmode="stack",
        xaxis={"type": "category", "title": {"text": _("Month of first order")}},
        yaxis={"title": {"text": _("Share of buyers (%)")}, "range": [0, 100]},
    )
