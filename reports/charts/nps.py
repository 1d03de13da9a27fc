"""NPS figures: plain data in, a plotly ``Figure`` out; no ORM, no request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from reports.charts import STRATEGY_COLOUR, bar_traces, report_figure

PROMOTER_COLOUR = "#2e7d4f"
PASSIVE_COLOUR = "#b8bcc4"
DETRACTOR_COLOUR = "#b3412f"


def trend_figure(
    weeks: Sequence[dt.date],
    promoters: Sequence[int],
    passives: Sequence[int],
    detractors: Sequence[int],
    scores: Sequence[float | None],
) -> go.Figure:
    """Answers per week stacked by promoter / passive / detractor (left axis) and the
    week's NPS as a line (right axis, −100…100; a week without answers leaves a gap)."""
    if not len(weeks) == len(promoters) == len(passives) == len(detractors) == len(scores):
        raise ValueError("every series needs one value per week")
    labels = [week.isoformat() for week in weeks]
    data = bar_traces(
        labels,
        [
            (_("Detractors (0–6)"), detractors, DETRACTOR_COLOUR),
            (_("Passives (7–8)"), passives, PASSIVE_COLOUR),
            (_("Promoters (9–10)"), promoters, PROMOTER_COLOUR),
        ],
        hover="%{x}: %{y:,}<extra></extra>",
    )
    data.append(
        {
            "type": "scatter",
            "x": labels,
            "y": list(scores),
            "name": _("NPS"),
            "yaxis": "y2",
            "mode": "lines+markers",
            "connectgaps": False,
            "line": {"color": STRATEGY_COLOUR, "width": 3},
            "hovertemplate": "%{x}: NPS %{y:.1f}<extra></extra>",
        }
    )
    return report_figure(
        data,
        height=380,
        barmode="stack",
        xaxis={"type": "category", "title": {"text": _("Week starting")}},
        yaxis={"title": {"text": _("Answers")}, "rangemode": "tozero", "tickformat": ",d"},
        yaxis2={
            "title": {"text": _("NPS")},
            "overlaying": "y",
            "side": "right",
            "range": [-100, 100],
            "zeroline": True,
            "showgrid": False,
        },
    )


def breakdown_figure(
    labels: Sequence[str], scores: Sequence[float | None], answers: Sequence[int]
) -> go.Figure:
    """NPS per row as horizontal bars (first row on top), answers in the hover text."""
    if not len(labels) == len(scores) == len(answers):
        raise ValueError("labels, scores and answers must have the same length")
    colours = [PROMOTER_COLOUR if (score or 0) >= 0 else DETRACTOR_COLOUR for score in scores]
    data = {
        "type": "bar",
        "x": list(scores),
        "y": [str(label) for label in labels],
        "orientation": "h",
        "marker": {"color": colours},
        "customdata": list(answers),
        "hovertemplate": _("%(label)s: NPS %(score)s (%(answers)s answers)")
        % {"label": "%{y}", "score": "%{x:.1f}", "answers": "%{customdata:,}"}
        + "<extra></extra>",
    }
    return report_figure(
        [data],
        height=max(200, 60 + 28 * len(labels)),
        showlegend=False,
        xaxis={"range": [-100, 100], "title": {"text": _("NPS")}, "zeroline": True},
        yaxis={"autorange": "reversed", "type": "category", "automargin": True},
    )
