"""The value report: LTV by acquisition channel and cohort, F2 repeat rate, retention.

Read from the acquisition cohorts (``reports.cohorts``, refreshed every 15 minutes); with a
segment or persona the same figures are computed from the members' orders (see
``reports.selectors.value``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from experience.models import Touchpoint
from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import value as value_charts
from reports.selectors import value as value_selectors
from reports.selectors.value import LTV_MONTHS, UNKNOWN_CHANNEL, ValueReport

CHANNEL_LABELS = dict(Touchpoint.Channel.choices)
EMPTY = _("No customer placed a first order in the cohort months of this period.")


def channel_label(channel: str) -> str:
    if channel == UNKNOWN_CHANNEL:
        return str(_("Unknown touchpoint"))
    return str(CHANNEL_LABELS.get(channel, channel))


def month_label(month) -> str:
    return month.strftime("%Y-%m")


def _headline_block(data: ValueReport) -> Block:
    now, before = data.headline, data.previous
    return Block(
        key="headline",
        title=_("Cohorts of the period"),
        help=_(
            "Customers whose first order fell in the cohort months of the period, against the "
            "comparison period's cohorts."
        ),
        metrics=[
            Metric.compared("customers", _("New customers"), now, before),
            Metric.compared("f2_rate", _("F2 repeat rate"), now, before, unit="ratio"),
            Metric.compared("f2_rate_90d", _("F2 within 90 days"), now, before, unit="ratio"),
            Metric.compared(
                "ltv_12",
                _("12-month LTV"),
                now,
                before,
                unit="yen",
                hint=_("Cohorts younger than 12 months count the months so far."),
            ),
        ],
    )


def _ltv_channel_block(data: ValueReport) -> Block:
    curves = {channel_label(channel): points for channel, points in data.curves.items()}
    rows = [
        {"channel": label, "offset": offset, "ltv": value}
        for label, points in curves.items()
        for offset, value in points
    ]
    return Block(
        key="ltv-channel",
        title=_("LTV by acquisition channel"),
        help=_(
            "Cumulative revenue per customer by months since the first order, by the channel "
            "of the first order. Each month's revenue averages the cohorts that have completed "
            "that month."
        ),
        note="" if rows else EMPTY,
        figure=value_charts.ltv_figure(curves) if rows else None,
        table=Table(
            [
                Column("channel", _("Acquisition channel")),
                Column("offset", _("Months since first order"), "int"),
                Column("ltv", _("Revenue per customer"), "yen"),
            ],
            rows,
        ),
    )


def _ltv_cohort_block(data: ValueReport) -> Block:
    rows = []
    for row in data.rows:
        cells = {
            "cohort": month_label(row.cohort),
            "customers": row.customers,
            "ltv_to_date": row.ltv_to_date,
        }
        for months in LTV_MONTHS:
            cells[f"ltv_{months}"] = value_selectors.ltv_after(row, months, data.today)
        rows.append(cells)
    return Block(
        key="ltv-cohort",
        title=_("LTV by cohort"),
        help=_(
            "Revenue per customer in the first 3, 6 and 12 months after the first order; empty "
            "until the cohort has completed those months."
        ),
        note="" if rows else EMPTY,
        table=Table(
            [
                Column("cohort", _("Month of first purchase")),
                Column("customers", _("Customers"), "int"),
                *(
                    Column(f"ltv_{months}", _("%(months)d-month LTV") % {"months": months}, "yen")
                    for months in LTV_MONTHS
                ),
                Column("ltv_to_date", _("LTV to date"), "yen"),
            ],
            rows,
        ),
    )


def _f2_block(data: ValueReport) -> Block:
    rows = [
        {
            "cohort": month_label(row.cohort),
            "customers": row.customers,
            "repeaters": row.repeaters,
            "f2_rate": row.f2_rate,
            "repeaters_90d": row.repeaters_90d,
            "f2_rate_90d": row.f2_rate_90d,
        }
        for row in data.rows
    ]
    return Block(
        key="f2",
        title=_("F2 repeat rate by month of first purchase"),
        help=_(
            "Share of the customers of each cohort who placed a second completed order: ever, "
            "and within 90 days of the first."
        ),
        note="" if rows else EMPTY,
        figure=(
            value_charts.f2_figure(
                [row["cohort"] for row in rows],
                [row["f2_rate"] for row in rows],
                [row["f2_rate_90d"] for row in rows],
            )
            if rows
            else None
        ),
        table=Table(
            [
                Column("cohort", _("Month of first purchase")),
                Column("customers", _("Customers"), "int"),
                Column("repeaters", _("Second order"), "int"),
                Column("f2_rate", _("F2 repeat rate"), "ratio"),
                Column("repeaters_90d", _("Second order within 90 days"), "int"),
                Column("f2_rate_90d", _("F2 within 90 days"), "ratio"),
            ],
            rows,
        ),
    )


def _retention_block(data: ValueReport) -> Block:
    cohorts, width, grid = value_selectors.retention(data.rows, data.today)
    rows = []
    for cohort, shares in zip(cohorts, grid, strict=True):
        cells = {"cohort": month_label(cohort.cohort), "customers": cohort.customers}
        cells.update({f"m{offset}": share for offset, share in enumerate(shares)})
        rows.append(cells)
    labels = [row["cohort"] for row in rows]
    return Block(
        key="retention",
        title=_("Cohort retention"),
        help=_(
            "Share of each cohort buying in each month since its first order (month 0 is the "
            "month of the first order; the current month so far)."
        ),
        note="" if rows else EMPTY,
        figure=value_charts.retention_figure(labels, width, grid) if rows else None,
        table=Table(
            [
                Column("cohort", _("Month of first purchase")),
                Column("customers", _("Customers"), "int"),
                *(
                    Column(f"m{offset}", _("Month %(offset)d") % {"offset": offset}, "ratio")
                    for offset in range(width)
                ),
            ],
            rows,
        ),
    )


def build(user, filters) -> list[Block]:
    """Cohort figures cover every customer (no department-owned thing is named)."""
    data = value_selectors.value_report(filters=filters)
    return [
        _headline_block(data),
        _ltv_channel_block(data),
        _ltv_cohort_block(data),
        _f2_block(data),
        _retention_block(data),
    ]


register_report(
    ReportSpec(
        slug="value",
        title=_("Customer value: LTV, F2 and cohorts"),
        summary=_(
            "Lifetime value by acquisition channel and cohort, second-purchase (F2) rates by "
            "month of first purchase and cohort retention."
        ),
        build=build,
        filters=("period", "compare", "channel", "segment", "persona"),
        order=50,
        default_days=365,
    )
)
