"""The campaign-lift report: did the message change behaviour, against the holdout?"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from journeys.selectors import LIFT_MIN_GROUP, Lift
from reports.catalog import Block, Column, Metric, ReportFilters, ReportSpec, Table, register_report
from reports.charts.lift import LiftPoint, lift_figure
from reports.selectors.lift import CampaignLift, LiftSummary, campaign_lifts


def _points(rows: list[CampaignLift], measure: str) -> list[LiftPoint]:
    points = []
    for row in rows:
        lift: Lift = getattr(row, measure)
        if lift.enough:
            points.append(
                LiftPoint(
                    row.name,
                    lift.difference * 100,
                    lift.ci_low * 100,
                    lift.ci_high * 100,
                )
            )
    return points


def _verdict(lift: Lift) -> str:
    if not lift.enough:
        return str(_("Not enough people"))
    if not lift.significant:
        return str(_("No clear difference"))
    return str(_("Higher than holdout")) if lift.difference > 0 else str(_("Lower than holdout"))


def _row(row: CampaignLift) -> dict:
    revenue_treated, revenue_held = row.revenue_per_person
    return {
        "campaign": row.name,
        "department": row.department,
        "channel": row.channel,
        "treated": row.treatment["enrolled"],
        "holdout": row.holdout["enrolled"],
        "conversion_treated": row.conversion.treatment_rate,
        "conversion_holdout": row.conversion.holdout_rate,
        "conversion_lift": row.conversion.difference,
        "conversion_low": row.conversion.ci_low,
        "conversion_high": row.conversion.ci_high,
        "verdict": _verdict(row.conversion),
        "purchase_treated": row.purchase.treatment_rate,
        "purchase_holdout": row.purchase.holdout_rate,
        "purchase_lift": row.purchase.difference,
        "repeat_treated": row.repeat.treatment_rate,
        "repeat_holdout": row.repeat.holdout_rate,
        "repeat_lift": row.repeat.difference,
        "repeat_low": row.repeat.ci_low,
        "repeat_high": row.repeat.ci_high,
        "revenue_treated": revenue_treated,
        "revenue_holdout": revenue_held,
        "revenue_lift": row.revenue_difference,
        "incremental_conversions": row.incremental_conversions,
        "incremental_revenue": row.incremental_revenue,
        "nps_treated": row.nps_treatment,
        "nps_holdout": row.nps_holdout,
    }


COLUMNS = [
    Column("campaign", _("Campaign")),
    Column("department", _("Department")),
    Column("channel", _("Channel")),
    Column("treated", _("Treated"), "int"),
    Column("holdout", _("Holdout"), "int"),
    Column("conversion_treated", _("Conversion, treated"), "ratio"),
    Column("conversion_holdout", _("Conversion, holdout"), "ratio"),
    Column("conversion_lift", _("Conversion lift (pt)"), "ratio"),
    # xgettext:no-python-format
    Column("conversion_low", _("95% interval, low"), "ratio"),
    # xgettext:no-python-format
    Column("conversion_high", _("95% interval, high"), "ratio"),
    Column("verdict", _("Verdict")),
    Column("purchase_treated", _("Bought in window, treated"), "ratio"),
    Column("purchase_holdout", _("Bought in window, holdout"), "ratio"),
    Column("purchase_lift", _("Purchase lift (pt)"), "ratio"),
    Column("repeat_treated", _("Repeat purchase, treated"), "ratio"),
    Column("repeat_holdout", _("Repeat purchase, holdout"), "ratio"),
    Column("repeat_lift", _("Repeat lift (pt)"), "ratio"),
    # xgettext:no-python-format
    Column("repeat_low", _("Repeat 95% low"), "ratio"),
    # xgettext:no-python-format
    Column("repeat_high", _("Repeat 95% high"), "ratio"),
    Column("revenue_treated", _("Revenue per person, treated"), "yen"),
    Column("revenue_holdout", _("Revenue per person, holdout"), "yen"),
    Column("revenue_lift", _("Revenue per person, difference"), "yen"),
    Column("incremental_conversions", _("Incremental conversions"), "float"),
    Column("incremental_revenue", _("Incremental revenue"), "yen"),
    Column("nps_treated", _("NPS, reached"), "score"),
    Column("nps_holdout", _("NPS, holdout"), "score"),
]


def _metrics(summary: LiftSummary, previous: LiftSummary | None) -> list[Metric]:
    def before(name):
        return getattr(previous, name) if previous is not None else None

    return [
        Metric(
            "campaigns",
            _("Campaigns active"),
            len(summary.campaigns),
            previous=len(previous.campaigns) if previous is not None else None,
        ),
        Metric(
            "significant",
            _("Significant positive lift"),
            summary.significant_positive,
            previous=before("significant_positive"),
            # xgettext:no-python-format
            hint=_("95% interval above zero"),
        ),
        Metric(
            "incremental_conversions",
            _("Incremental conversions"),
            summary.incremental_conversions,
            unit="float",
            previous=before("incremental_conversions"),
        ),
        Metric(
            "incremental_revenue",
            _("Incremental revenue"),
            summary.incremental_revenue,
            unit="yen",
            previous=before("incremental_revenue"),
        ),
    ]


def build(user, filters: ReportFilters) -> list[Block]:
    summary = campaign_lifts(user, filters, filters.period)
    previous = campaign_lifts(user, filters, filters.compare) if filters.compare else None
    rows = summary.campaigns
    figure = None
    conversion = _points(rows, "conversion")
    if conversion:
        figure = lift_figure(conversion, _points(rows, "purchase"), _points(rows, "repeat"))
    note = ""
    if rows and not summary.measured:
        note = _(
            "No campaign has %(n)d people in both groups yet, so no lift can be estimated."
        ) % {"n": LIFT_MIN_GROUP}
    return [
        Block(
            key="lift",
            title=_("Lift against the holdout"),
            help=_(
                "Campaigns you can see that were active in the period. Each compares the people "
                "contacted with the holdout, who were left alone, over everyone who entered so "
                "far, within the campaign's attribution window after entry. Conversion: a "
                "delivery converted; purchase: a completed order in the window; repeat: a "
                "purchase in the window by someone who had bought before. Bars are 95%% "
                "intervals; below %(n)d people in a group there is not enough data. Incremental "
                "figures are (treated rate − holdout rate) × treated, summed over measured "
                "campaigns; revenue per person has no interval."
            )
            % {"n": LIFT_MIN_GROUP},
            metrics=_metrics(summary, previous),
            figure=figure,
            table=Table(COLUMNS, [_row(row) for row in rows]),
            note=note,
        )
    ]


register_report(
    ReportSpec(
        slug="lift",
        title=_("Campaign lift"),
        summary=_(
            "Treatment against holdout per campaign: conversion, repeat purchase, revenue "
            "per person and NPS, with confidence intervals at 95%."
        ),
        build=build,
        filters=("period", "compare", "department", "channel"),
        order=60,
        default_days=90,
    )
)
