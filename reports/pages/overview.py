"""The four-circle overview: how the loop turned in the period, and per department."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import overview as overview_charts
from reports.selectors import overview as overview_selectors
from reports.selectors.overview import LoopOverview, LoopTotals

# Headline figures per stage of the loop: (key, label, unit). The weekly e-mail lists the same.
STAGES = (
    (
        "data-in",
        _("Data in"),
        _("What the touchpoints brought in: behaviour, people and their voice."),
        (
            ("events", _("Events"), "count"),
            ("new_profiles", _("New profiles"), "count"),
            ("unified_profiles", _("Profiles unified"), "count"),
            ("answers", _("Survey answers"), "count"),
        ),
    ),
    (
        "action-out",
        _("Action out"),
        _("What the platform did with it: messages sent and visits for staff."),
        (
            ("sent", _("Deliveries sent"), "count"),
            ("tasks_created", _("Staff tasks created"), "count"),
            ("tasks_done", _("Staff tasks done"), "count"),
        ),
    ),
    (
        "results",
        _("Results"),
        _("What came back: conversions, orders, revenue and loyalty."),
        (
            ("conversions", _("Conversions"), "count"),
            ("attributed_revenue", _("Attributed revenue"), "yen"),
            ("orders", _("Orders"), "count"),
            ("revenue", _("Revenue"), "yen"),
            ("nps", _("NPS"), "score"),
        ),
    ),
)
COMPANY_WIDE = ("new_profiles", "unified_profiles")
DEPARTMENT_COLUMNS = (
    ("events", _("Events at its touchpoints"), "int"),
    ("answers", _("Answers to its surveys"), "int"),
    ("sent", _("Deliveries of its campaigns"), "int"),
    ("tasks_created", _("Staff tasks created"), "int"),
    ("tasks_done", _("Staff tasks done"), "int"),
    ("conversions", _("Conversions"), "int"),
    ("attributed_revenue", _("Attributed revenue"), "yen"),
    ("orders", _("Orders at its touchpoints"), "int"),
    ("revenue", _("Revenue at its touchpoints"), "yen"),
    ("nps", _("NPS of its surveys"), "score"),
)


def stage_metrics(totals: LoopTotals, previous: LoopTotals | None, keys) -> list[Metric]:
    """The metrics of one stage of the loop, with the comparison period's values."""
    now, before = totals.as_dict(), previous.as_dict() if previous is not None else {}
    return [
        Metric(key, label, now[key], unit=unit, previous=before.get(key))
        for key, label, unit in keys
    ]


def _stage_blocks(data: LoopOverview, filters) -> list[Block]:
    blocks = []
    for key, title, help_text, keys in STAGES:
        if filters.department is not None:
            keys = tuple(item for item in keys if item[0] not in COMPANY_WIDE)
        blocks.append(
            Block(
                key=key,
                title=title,
                help=help_text,
                metrics=stage_metrics(data.totals, data.previous, keys),
                note=(
                    _(
                        "New and unified profiles are company-wide: the department filter "
                        "does not apply to them, so they are left out."
                    )
                    if key == "data-in" and filters.department is not None
                    else ""
                ),
            )
        )
    return blocks


def _loop_block(data: LoopOverview) -> Block:
    days = sorted(data.days)
    series = {
        name: [getattr(data.days[day], name) for day in days]
        for name in LoopTotals.__dataclass_fields__
    }
    figure = overview_charts.loop_figure(
        days,
        {
            _("Events"): series["events"],
            _("New profiles"): series["new_profiles"],
            _("Survey answers"): series["answers"],
        },
        {_("Deliveries sent"): series["sent"], _("Staff tasks created"): series["tasks_created"]},
        {_("Conversions"): series["conversions"], _("Orders"): series["orders"]},
    )
    columns = [
        Column("day", _("Day"), "date"),
        Column("events", _("Events"), "int"),
        Column("new_profiles", _("New profiles"), "int"),
        Column("unified_profiles", _("Profiles unified"), "int"),
        Column("answers", _("Survey answers"), "int"),
        Column("sent", _("Deliveries sent"), "int"),
        Column("tasks_created", _("Staff tasks created"), "int"),
        Column("tasks_done", _("Staff tasks done"), "int"),
        Column("conversions", _("Conversions"), "int"),
        Column("orders", _("Orders"), "int"),
        Column("revenue", _("Revenue"), "yen"),
    ]
    rows = [
        {"day": day, **{c.key: getattr(data.days[day], c.key) for c in columns[1:]}} for day in days
    ]
    return Block(
        key="loop",
        title=_("The loop, day by day"),
        help=_("Data in, action out and results per day of the period."),
        figure=figure,
        table=Table(columns, rows),
    )


def _department_block(data: LoopOverview) -> Block:
    columns = [
        Column("department", _("Department"), "text"),
        *(Column(key, label, kind) for key, label, kind in DEPARTMENT_COLUMNS),
    ]
    rows = []
    for row in data.departments:
        values = row.totals.as_dict()
        rows.append(
            {
                "department": row.name or str(_("No department (no touchpoint)")),
                **{key: values[key] for key, _label, _kind in DEPARTMENT_COLUMNS},
            }
        )
    return Block(
        key="departments",
        title=_("By department"),
        help=_(
            "Each department's part of the loop: events and orders at its touchpoints, answers "
            "to its surveys, deliveries of its campaigns, the staff tasks assigned to it."
        ),
        table=Table(columns, rows),
    )


def build(user, filters) -> list[Block]:
    data = overview_selectors.loop_overview(user=user, filters=filters)
    return [
        *_stage_blocks(data, filters),
        _loop_block(data),
        _department_block(data),
        Block(
            key="subscribe",
            title=_("Weekly e-mail"),
            template="reports/subscriptions.html#subscribe-link",
        ),
    ]


register_report(
    ReportSpec(
        slug="overview",
        title=_("Four-circle overview"),
        summary=_(
            "How the loop turned: data in, action out and results, against the previous "
            "period and per department."
        ),
        build=build,
        filters=("period", "compare", "department"),
        order=10,
        default_days=7,
    )
)
