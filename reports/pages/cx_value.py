"""The CX-value report: what each experience value (deal, convenience, fun, reassurance,
empathy) reaches, engages, converts and changes in loyalty."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from experience.models import ExperienceValue
from reports.catalog import Block, Column, Metric, ReportFilters, ReportSpec, Table, register_report
from reports.charts.cx import value_heatmap, value_trend
from reports.selectors.cx import (
    ADVOCACY_EVENT_TYPES,
    Empathy,
    ValueFigures,
    ValueReport,
    add_outcomes,
    empathy,
    value_report,
)

VALUE_COLUMNS = [
    Column("value", _("Experience value")),
    Column("campaigns", _("Campaigns")),
    Column("touchpoints", _("Touchpoints")),
    Column("reached", _("People reached"), "int"),
    Column("visits", _("Touchpoint visitor-days"), "int"),
    Column("opened", _("Opens"), "int"),
    Column("clicked", _("Clicks"), "int"),
    Column("value_events", _("Events delivering the value"), "int"),
    Column("converted", _("Conversions"), "int"),
    Column("revenue", _("Revenue"), "yen"),
    Column("nps_reached", _("NPS, reached"), "score"),
    Column("nps_holdout", _("NPS, holdout"), "score"),
    Column("nps_change", _("NPS change"), "score"),
    Column("repeat_reached", _("Repeat purchase, reached"), "ratio"),
    Column("repeat_holdout", _("Repeat purchase, holdout"), "ratio"),
    Column("repeat_change", _("Repeat purchase change"), "ratio"),
]
TREND_COLUMNS = [
    Column("week", _("Week"), "date"),
    Column("value", _("Experience value")),
    Column("value_events", _("Events delivering the value"), "int"),
    Column("opened", _("Opens"), "int"),
    Column("clicked", _("Clicks"), "int"),
    Column("converted", _("Conversions"), "int"),
    Column("revenue", _("Revenue"), "yen"),
]
COMMENT_COLUMNS = [
    Column("answered", _("Answered"), "date"),
    Column("score", _("Score"), "int"),
    Column("survey", _("Survey")),
    Column("comment", _("Comment")),
]
ADVOCACY_COLUMNS = [
    Column("event_type", _("Event type")),
    Column("events", _("Events"), "int"),
    Column("visits", _("Person-days"), "int"),
]
DAILY_NOTE = _("The segment filter does not apply here: this figure counts daily totals.")


def _value_row(value: ValueFigures) -> dict:
    return {
        "value": value.label,
        "campaigns": ", ".join(value.campaigns),
        "touchpoints": ", ".join(value.touchpoints),
        "reached": value.reached,
        "visits": value.visits,
        "opened": value.opened,
        "clicked": value.clicked,
        "value_events": value.value_events,
        "converted": value.converted,
        "revenue": value.revenue,
        "nps_reached": value.nps_reached,
        "nps_holdout": value.nps_holdout,
        "nps_change": value.nps_change,
        "repeat_reached": value.repeat_reached,
        "repeat_holdout": value.repeat_holdout,
        "repeat_change": value.repeat_change,
    }


def _heatmap(report: ValueReport):
    measures = [
        ("reached", _("Reach"), "{:,}"),
        ("visits", _("Visits"), "{:,}"),
        ("opened", _("Opens"), "{:,}"),
        ("clicked", _("Clicks"), "{:,}"),
        ("value_events", _("Value events"), "{:,}"),
        ("converted", _("Conversions"), "{:,}"),
        ("revenue", _("Revenue"), "¥{:,.0f}"),
        ("nps_change", _("NPS change"), "{:+.1f}"),
        ("repeat_change", _("Repeat change (pt)"), "{:+.1f}"),
    ]
    cells, texts = [], []
    for value in report.values:
        row, text = [], []
        for key, _label, template in measures:
            number = getattr(value, key)
            if key == "repeat_change" and number is not None:
                number *= 100
            row.append(float(number) if number is not None else None)
            text.append(template.format(number) if number is not None else "—")
        cells.append(row)
        texts.append(text)
    return value_heatmap(
        [value.label for value in report.values],
        [str(label) for _key, label, _template in measures],
        cells,
        texts,
    )


def _trend(report: ValueReport):
    weeks = sorted({week.week for week in report.weeks})
    if not weeks:
        return None
    position = {week: index for index, week in enumerate(weeks)}
    labels = {code: str(ExperienceValue.Code(code).label) for code in ExperienceValue.Code.values}
    events = {label: [0] * len(weeks) for label in labels.values()}
    conversions = {label: [0] * len(weeks) for label in labels.values()}
    for week in report.weeks:
        events[labels[week.code]][position[week.week]] = week.value_events
        conversions[labels[week.code]][position[week.week]] = week.converted
    return value_trend(weeks, events, conversions)


def _totals(report: ValueReport) -> dict:
    return {
        "value_events": sum(value.value_events for value in report.values),
        "active_campaigns": report.active_campaigns,
    }


def build(user, filters: ReportFilters) -> list[Block]:
    report = value_report(user, filters, filters.period)
    previous = value_report(user, filters, filters.compare) if filters.compare else None
    add_outcomes([report, previous] if previous else [report], filters.segment_id)
    segment = filters.segment_id is not None
    totals = _totals(report)
    before = _totals(previous) if previous else {}
    values_block = Block(
        key="values",
        title=_("The five experience values"),
        help=_(
            "Campaigns and touchpoints you can see that aim at each value. Reach: people "
            "contacted by the value's campaigns who entered in the period. Visits: visitor-days "
            "at its touchpoints (a person once per day, event type and value mask). Opens, clicks, "
            "conversions and revenue of its campaigns in the period. NPS and repeat purchase: "
            "reached people against the holdout over every enrolment so far of the campaigns "
            "active in the period, within each campaign's attribution window. A campaign "
            "aiming at two values counts in both rows."
        ),
        metrics=[
            Metric(
                "active_campaigns",
                _("Campaigns active"),
                totals["active_campaigns"],
                previous=before.get("active_campaigns"),
            ),
            Metric(
                "value_events",
                _("Events delivering a value"),
                totals["value_events"],
                previous=before.get("value_events"),
            ),
        ],
        figure=_heatmap(report),
        table=Table(VALUE_COLUMNS, [_value_row(value) for value in report.values]),
        note=_(
            "The segment filter applies to reach and to the NPS and repeat-purchase comparison "
            "(its members' enrolments); visits, opens, clicks, events, conversions and revenue "
            "count daily totals of everyone."
        )
        if segment
        else "",
    )
    trend_block = Block(
        key="trend",
        title=_("Weekly trend per value"),
        help=_(
            "Events that delivered each value (lines) and conversions of its campaigns "
            "(dotted), per week starting Monday."
        ),
        figure=_trend(report),
        table=Table(
            TREND_COLUMNS,
            [
                {
                    "week": week.week,
                    "value": str(ExperienceValue.Code(week.code).label),
                    "value_events": week.value_events,
                    "opened": week.opened,
                    "clicked": week.clicked,
                    "converted": week.converted,
                    "revenue": week.revenue,
                }
                for week in report.weeks
            ],
        ),
        note=DAILY_NOTE if segment else "",
    )
    feeling = empathy(user, filters, filters.period, report)
    feeling_before = empathy(user, filters, filters.compare, previous) if previous else None
    return [values_block, trend_block, *_empathy_blocks(feeling, feeling_before, segment)]


def _empathy_blocks(feeling: Empathy, before: Empathy | None, segment: bool) -> list[Block]:
    return [
        Block(
            key="empathy",
            title=_("Empathy made visible"),
            help=_(
                "What customers say in NPS comments (surveys you can see; words only, no "
                "names), and the loyalty shift of the empathy campaigns: the share of "
                "promoters among reached people against the holdout."
            ),
            metrics=[
                Metric.compared("comments", _("NPS comments"), feeling, before),
                Metric.compared("advocacy_events", _("Advocacy events"), feeling, before),
                Metric.compared(
                    "promoters_reached",
                    _("Promoters, reached"),
                    feeling,
                    before,
                    attr="promoter_share_reached",
                    unit="ratio",
                ),
                Metric.compared(
                    "promoters_holdout",
                    _("Promoters, holdout"),
                    feeling,
                    before,
                    attr="promoter_share_holdout",
                    unit="ratio",
                ),
                Metric.compared(
                    "promoter_shift", _("Loyalty shift"), feeling, before, unit="ratio"
                ),
            ],
            table=Table(
                COMMENT_COLUMNS,
                [
                    {
                        "answered": comment.answered,
                        "score": comment.score,
                        "survey": comment.survey,
                        "comment": comment.text,
                    }
                    for comment in feeling.latest
                ],
            ),
            note=_(
                "The segment filter applies to the comments and the loyalty shift; advocacy "
                "events count daily totals of everyone."
            )
            if segment
            else "",
        ),
        Block(
            key="advocacy",
            title=_("Advocacy events"),
            help=_("Events in which customers speak up for us: %(types)s.")
            % {"types": ", ".join(ADVOCACY_EVENT_TYPES)},
            table=Table(
                ADVOCACY_COLUMNS,
                [
                    {"event_type": name, "events": row["events"], "visits": row["visits"]}
                    for name, row in feeling.advocacy.items()
                ],
            ),
            note=DAILY_NOTE if segment else "",
        ),
    ]


register_report(
    ReportSpec(
        slug="cx-value",
        title=_("CX value"),
        summary=_(
            "The five experience values — deal, convenience, fun, reassurance, empathy: "
            "reach, engagement, conversion, revenue and loyalty of what aims at each."
        ),
        build=build,
        filters=("period", "compare", "department", "channel", "segment", "persona"),
        order=20,
        default_days=90,
    )
)
