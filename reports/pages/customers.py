"""The customers report: the RFM grid (click a cell for its customers) and the dormant and
churn rates at the end of the period, by month of first order."""

from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from customers.models import Segment
from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import rfm as rfm_charts
from reports.selectors import rfm as rfm_selectors
from reports.selectors.rfm import SCORES

HEAT_LEVELS = 5


def _heat(count: int, top: int) -> int:
    """0 (empty) … HEAT_LEVELS − 1 (the fullest cell), for the grid's CSS classes."""
    if not count or not top:
        return 0
    return max(1, round(count * (HEAT_LEVELS - 1) / top))


def _grid_block(user, filters) -> Block:
    grid = rfm_selectors.rfm_grid(segment_id=filters.segment_id)
    top = max((cell.customers for cell in grid.cells.values()), default=0)
    # Cell links keep the segment when the user may see it (a persona's segment may not be).
    query = ""
    if (
        filters.segment_id is not None
        and Segment.objects.visible_to(user).filter(pk=filters.segment_id).exists()
    ):
        query = "?" + urlencode({"segment": filters.segment_id})
    recency_rows = [
        {
            "recency": recency,
            "cells": [
                {
                    "cell": grid.cell(recency, frequency),
                    "heat": _heat(grid.cell(recency, frequency).customers, top),
                    "url": reverse("reports:rfm_cell", args=[recency, frequency]) + query,
                }
                for frequency in SCORES
            ],
        }
        for recency in reversed(SCORES)
    ]
    ordered = list(reversed(SCORES))
    return Block(
        key="rfm",
        title=_("RFM grid"),
        help=_(
            "Customers with completed orders by recency score (rows, 5 = most recent) and "
            "frequency score (columns, 5 = most orders), with their lifetime revenue. Scores "
            "are quintiles of all buyers as of the last metrics computation; the period does "
            "not change them. Open a cell to see its customers or save it as a segment."
        ),
        note=(
            _("Restricted to the members of the segment.") if filters.segment_id is not None else ""
        ),
        metrics=[
            Metric("customers", _("Customers with orders"), grid.customers),
            Metric("revenue", _("Lifetime revenue"), grid.revenue, "yen"),
        ],
        figure=rfm_charts.rfm_heatmap_figure(
            [[grid.cell(r, f).customers for f in SCORES] for r in SCORES],
            [[float(grid.cell(r, f).revenue) for f in SCORES] for r in SCORES],
            SCORES,
            SCORES,
        )
        if grid.customers
        else None,
        table=Table(
            [
                Column("recency", _("Recency score"), "int"),
                Column("frequency", _("Frequency score"), "int"),
                Column("customers", _("Customers"), "int"),
                Column("revenue", _("Revenue"), "yen"),
            ],
            [
                {
                    "recency": r,
                    "frequency": f,
                    "customers": grid.cell(r, f).customers,
                    "revenue": grid.cell(r, f).revenue,
                }
                for r in ordered
                for f in SCORES
            ],
        ),
        template="reports/_rfm_grid.html",
        context={"rows": recency_rows, "scores": SCORES},
    )


def _dormancy_block(filters) -> Block:
    report = rfm_selectors.dormancy(
        as_of=filters.period.end,
        previous_as_of=filters.compare.end if filters.compare else None,
        segment_id=filters.segment_id,
    )
    current, previous = report.current, report.previous
    return Block(
        key="dormancy",
        title=_("Dormant and churned customers"),
        help=_(
            "At the end of the period, among customers with a completed order before it: "
            "dormant = last order 180–365 days earlier, churned = more than 365 days earlier. "
            "By month of first order."
        ),
        note=(
            _("Restricted to the members of the segment.") if filters.segment_id is not None else ""
        ),
        metrics=[
            Metric(
                "dormant_rate",
                _("Dormant"),
                current.dormant_rate,
                "percent",
                previous and previous.dormant_rate,
            ),
            Metric(
                "churn_rate",
                _("Churned"),
                current.churn_rate,
                "percent",
                previous and previous.churn_rate,
            ),
            Metric(
                "buyers",
                _("Customers with orders"),
                current.buyers,
                "count",
                previous and previous.buyers,
            ),
        ],
        figure=rfm_charts.dormancy_figure(
            [month for month, _counts in report.by_month],
            [counts.dormant_rate for _month, counts in report.by_month],
            [counts.churn_rate for _month, counts in report.by_month],
        )
        if report.by_month
        else None,
        table=Table(
            [
                Column("month", _("Month of first order"), "date"),
                Column("buyers", _("Customers"), "int"),
                Column("dormant", _("Dormant"), "int"),
                Column("dormant_rate", _("Dormant (%)"), "percent"),
                Column("churned", _("Churned"), "int"),
                Column("churn_rate", _("Churned (%)"), "percent"),
            ],
            [
                {
                    "month": month,
                    "buyers": counts.buyers,
                    "dormant": counts.dormant,
                    "dormant_rate": counts.dormant_rate,
                    "churned": counts.churned,
                    "churn_rate": counts.churn_rate,
                }
                for month, counts in report.by_month
            ],
        ),
    )


def build(user, filters) -> list[Block]:
    return [_grid_block(user, filters), _dormancy_block(filters)]


register_report(
    ReportSpec(
        slug="customers",
        title=_("Customers: RFM, dormancy and churn"),
        summary=_(
            "Where customers stand by recency and frequency, who they are, and how many have "
            "gone quiet or left."
        ),
        build=build,
        filters=("period", "compare", "segment", "persona"),
        order=40,
        default_days=90,
    )
)
