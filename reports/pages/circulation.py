"""Data circulation: which department's data the segments and campaigns of another use."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import overview as overview_charts
from reports.selectors import circulation as circulation_selectors
from reports.selectors.circulation import Circulation

KIND_LABELS = {
    "event_type": _("Event type"),
    "touchpoint": _("Touchpoint"),
    "attribute": _("Attribute"),
    "survey": _("Survey"),
    "segment": _("Segment"),
    "import": _("Import"),
}


def _walls_block(data: Circulation) -> Block:
    now, before = data.walls_down, data.walls_down_before
    return Block(
        key="walls",
        title=_("Walls down"),
        help=_(
            "The share of segments and campaigns that use another department's data, among "
            "those that existed at the end of the period (and of the comparison period). "
            "Rule trees are read as they are now."
        ),
        metrics=[
            Metric.compared(
                "walls_down_rate",
                _("Using another department's data"),
                now,
                before,
                attr="rate",
                unit="ratio",
            ),
            Metric.compared("crossing", _("Segments and campaigns crossing a wall"), now, before),
            Metric.compared("total", _("Segments and campaigns"), now, before),
        ],
    )


def _flows_block(data: Circulation) -> Block:
    names = data.departments
    crossing = [flow for flow in data.flows if flow.is_cross]
    owners = sorted({flow.owner_id for flow in data.flows}, key=lambda pk: names.get(pk, ""))
    users = sorted({flow.user_id for flow in data.flows}, key=lambda pk: names.get(pk, ""))
    cells: dict[tuple[int, int], int] = {}
    for flow in data.flows:
        cells[(flow.user_id, flow.owner_id)] = (
            cells.get((flow.user_id, flow.owner_id), 0) + flow.segments + flow.campaigns
        )
    figure = None
    if data.flows:
        figure = overview_charts.circulation_figure(
            [names.get(pk, "") for pk in owners],
            [names.get(pk, "") for pk in users],
            [[cells.get((user, owner), 0) for owner in owners] for user in users],
        )
    columns = [
        Column("owner", _("Data owned by"), "text"),
        Column("user", _("Used by"), "text"),
        Column("kind", _("Kind of data"), "text"),
        Column("crosses", _("Across departments"), "text"),
        Column("segments", _("Segments"), "int"),
        Column("campaigns", _("Campaigns"), "int"),
        Column("sent", _("Deliveries sent in the period"), "int"),
        Column("examples", _("Examples you can see"), "text"),
    ]
    rows = [
        {
            "owner": names.get(flow.owner_id, ""),
            "user": names.get(flow.user_id, ""),
            "kind": str(KIND_LABELS[flow.kind]),
            "crosses": str(_("yes") if flow.is_cross else _("no")),
            "segments": flow.segments,
            "campaigns": flow.campaigns,
            "sent": flow.sent,
            "examples": ", ".join(flow.names),
        }
        for flow in data.flows
    ]
    return Block(
        key="flows",
        title=_("Whose data is used where"),
        help=_(
            "Each cell counts the segments and campaigns of a department (row) that use data "
            "owned by a department (column); the diagonal is a department's own data."
        ),
        metrics=[
            Metric("flows", _("Flows across departments"), len(crossing)),
            Metric("cross_sent", _("Deliveries of campaigns using others' data"), data.cross_sent),
        ],
        figure=figure,
        table=Table(columns, rows),
    )


def _shares_block(data: Circulation) -> Block:
    names = data.departments
    columns = [
        Column("owner", _("Owner"), "text"),
        Column("shared_with", _("Shared with"), "text"),
        Column("kind", _("Kind of record"), "text"),
        Column("shared", _("Records shared"), "int"),
        Column("can_edit", _("With edit rights"), "int"),
        Column("new", _("Shared in the period"), "int"),
    ]
    rows = sorted(
        (
            {
                "owner": names.get(pair.owner_id, ""),
                "shared_with": names.get(pair.department_id, ""),
                "kind": pair.kind,
                "shared": pair.shared,
                "can_edit": pair.can_edit,
                "new": pair.new_in_period,
            }
            for pair in data.shares
        ),
        key=lambda row: (row["owner"], row["shared_with"], row["kind"]),
    )
    return Block(
        key="sharing",
        title=_("Sharing between departments"),
        help=_("Records one department shares with another, as they stand now."),
        metrics=[
            Metric("shared", _("Records shared"), sum(pair.shared for pair in data.shares)),
            Metric(
                "shared_new",
                _("Shared in the period"),
                sum(pair.new_in_period for pair in data.shares),
            ),
        ],
        table=Table(columns, rows),
    )


def build(user, filters) -> list[Block]:
    data = circulation_selectors.data_circulation(user=user, filters=filters)
    return [_walls_block(data), _flows_block(data), _shares_block(data)]


register_report(
    ReportSpec(
        slug="circulation",
        title=_("Data circulation"),
        summary=_(
            "Which department's data the segments and campaigns of another department use: "
            "the measure of walls coming down."
        ),
        build=build,
        filters=("period", "compare", "department"),
        order=80,
        default_days=30,
    )
)
