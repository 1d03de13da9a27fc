"""Customers-report figures (RFM heatmap, dormancy by acquisition month); no ORM, no request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts.nps import DETRACTOR_COLOUR, report_layout

DORMANT_COLOUR = "#d29a2b"


def rfm_heatmap_figure(
    counts: Sequence[Sequence[int]], revenue: Sequence[Sequence[float]], scores: Sequence[int]
) -> go.Figure:
    """Customers per cell; rows are recency scores and columns frequency scores, both in
    ``scores`` order (``counts[i][j]`` = recency ``scores[i]``, frequency ``scores[j]``)."""
    if len(counts) != len(scores) or any(len(row) != len(scores) for row in counts):
        raise ValueError("counts must be a square grid with one row and column per score")
    labels = [str(score) for score in scores]
    figure = go.Figure(
        go.Heatmap(
            z=[list(row) for row in counts],
            x=labels,
            y=labels,
            customdata=[list(row) for row in revenue],
            colorscale="Purples",
            text=[[f"{value:,}" for value in row] for row in counts],
            texttemplate="%{text}",
            hovertemplate=_("R %(r)s · F %(f)s: %(customers)s customers, %(revenue)s")
            % {"r": "%{y}", "f": "%{x}", "customers": "%{z:,}", "revenue": "¥%{customdata:,.0f}"}
            + "<extra></extra>",
            colorbar={"title": {"text": _("Customers")}},
        )
    )
    return report_layout(
        figure,
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
    figure = go.Figure()
    for name, values, colour in (
        (_("Churned"), churned, DETRACTOR_COLOUR),
        (_("Dormant"), dormant, DORMANT_COLOUR),
    ):
        figure.add_trace(
            go.Bar(
                x=labels,
                y=list(values),
                name=name,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
            )
        )
    return report_layout(
        figure,
        height=360,
        barmode="stack",
        xaxis={"type": "category", "title": {"text": _("Month of first order")}},
        yaxis={"title": {"text": _("Share of buyers (%)")}, "range": [0, 100]},
    )
