"""The NPS report: trend with the promoter / passive / detractor split, breakdowns by
touchpoint, survey department, segment, persona and journey stage, and the latest comments."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reports.catalog import Block, Column, Metric, ReportSpec, Table, register_report
from reports.charts import nps as nps_charts
from reports.selectors import nps as nps_selectors
from reports.selectors.nps import NpsCounts, NpsRow

SPLIT_COLUMNS = (
    Column("answers", _("Answers"), "int"),
    Column("promoters", _("Promoters"), "int"),
    Column("passives", _("Passives"), "int"),
    Column("detractors", _("Detractors"), "int"),
    Column("nps", _("NPS"), "score"),
)
SEGMENT_NOTE = _(
    "Restricted to the segment: these figures count the answers of its current members, "
    "read from the survey responses instead of the daily totals."
)


def _split(counts: NpsCounts) -> dict:
    return {
        "answers": counts.total,
        "promoters": counts.promoters,
        "passives": counts.passives,
        "detractors": counts.detractors,
        "nps": counts.score,
    }


def _breakdown(key: str, title, label, rows: list[NpsRow], *, help="", note="") -> Block:
    return Block(
        key=key,
        title=title,
        help=help,
        note=note,
        figure=(
            nps_charts.breakdown_figure(
                [row.label for row in rows],
                [row.counts.score for row in rows],
                [row.counts.total for row in rows],
            )
            if rows
            else None
        ),
        table=Table(
            [Column("name", label), *SPLIT_COLUMNS],
            [{"name": row.label, **_split(row.counts)} for row in rows],
        ),
    )


def build(user, filters) -> list[Block]:
    data = nps_selectors.nps_report(user=user, filters=filters)
    previous = data.previous
    note = SEGMENT_NOTE if data.from_responses else ""
    weeks = [week for week, _counts in data.weeks]
    trend = Block(
        key="trend",
        title=_("NPS by week"),
        help=_(
            "Answers to NPS surveys: promoters score 9–10, passives 7–8, detractors 0–6; "
            "NPS = % promoters − % detractors."
        ),
        note=note,
        metrics=[
            Metric("nps", _("NPS"), data.counts.score, "score", previous and previous.score),
            Metric(
                "answers", _("Answers"), data.counts.total, "count", previous and previous.total
            ),
            Metric(
                "promoters",
                _("Promoters"),
                data.counts.share(data.counts.promoters),
                "percent",
                previous and previous.share(previous.promoters),
            ),
            Metric(
                "detractors",
                _("Detractors"),
                data.counts.share(data.counts.detractors),
                "percent",
                previous and previous.share(previous.detractors),
            ),
        ],
        figure=nps_charts.trend_figure(
            weeks,
            [counts.promoters for _week, counts in data.weeks],
            [counts.passives for _week, counts in data.weeks],
            [counts.detractors for _week, counts in data.weeks],
            [counts.score for _week, counts in data.weeks],
        ),
        table=Table(
            [Column("week", _("Week starting"), "date"), *SPLIT_COLUMNS],
            [{"week": week, **_split(counts)} for week, counts in data.weeks],
        ),
    )
    comments = Block(
        key="comments",
        title=_("Latest comments"),
        help=_("The %(count)d newest comments on NPS surveys you can see, without names.")
        % {"count": nps_selectors.COMMENT_LIMIT},
        note=note,
        table=Table(
            [
                Column("answered", _("Answered"), "date"),
                Column("score", _("Score"), "int"),
                Column("touchpoint", _("Touchpoint")),
                Column("comment", _("Comment")),
            ],
            [
                {
                    "answered": timezone.localdate(comment.answered_at),
                    "score": comment.score,
                    "touchpoint": comment.touchpoint,
                    "comment": comment.comment,
                }
                for comment in data.comments
            ],
        ),
    )
    return [
        trend,
        _breakdown(
            "touchpoints", _("NPS by touchpoint"), _("Touchpoint"), data.by_touchpoint, note=note
        ),
        _breakdown(
            "departments",
            _("NPS by survey department"),
            _("Department"),
            data.by_department,
            help=_("Answers to the surveys each department owns."),
            note=note,
        ),
        _breakdown(
            "segments",
            _("NPS by segment"),
            _("Segment"),
            data.by_segment,
            help=_("Answers of each segment's current members."),
        ),
        _breakdown(
            "personas",
            _("NPS by persona"),
            _("Persona"),
            data.by_persona,
            help=_("Answers of the members of each persona's segment."),
        ),
        _breakdown(
            "stages",
            _("NPS by journey stage"),
            _("Journey stage"),
            data.by_stage,
            help=_("Answers given at the touchpoints of each stage of your journeys."),
            note=note,
        ),
        comments,
    ]


register_report(
    ReportSpec(
        slug="nps",
        title=_("NPS"),
        summary=_(
            "Net Promoter Score over time, its promoter, passive and detractor split, where "
            "it is won and lost, and what customers say."
        ),
        build=build,
        filters=("period", "compare", "department", "segment", "channel", "persona"),
        order=30,
        default_days=90,
    )
)
