"""Reads of the NPS report: answers to NPS surveys, split and broken down.

Every figure counts answers with :func:`experience.nps.nps_counts` / ``nps_score`` (the one
NPS definition). Without a segment, answers come from the daily rollup
(:class:`reports.models.DailyAnswers`), one GROUP BY over (day, survey, touchpoint) that
feeds the trend, the headline and the touchpoint, department and journey-stage breakdowns.
With a segment (or a persona's segment) the same query reads the survey responses of the
segment's current members instead, since daily totals cannot be split by person.

Filters: ``department`` keeps answers to surveys that department owns (and segments,
personas and journeys it owns in those breakdowns); ``channel`` keeps answers given at
touchpoints of that channel. The headline and the trend cover every NPS survey of the
company; breakdowns naming a survey owner, touchpoint, segment, persona or journey list
only those visible to the user.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, QuerySet, Sum
from django.db.models.functions import Coalesce

from config.org.models import Department
from customers.models import Segment, SegmentMembership
from experience.models import Survey, SurveyResponse, Touchpoint
from experience.nps import nps_counts, nps_score
from journeys.models import Journey, Persona, Stage
from reports.catalog import Period, ReportFilters
from reports.models import DailyAnswers
from reports.rollups import local_day

COMMENT_LIMIT = 20


@dataclass(frozen=True)
class NpsCounts:
    """Answers to NPS surveys and their promoter / passive / detractor split."""

    total: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def score(self) -> float | None:
        return nps_score(total=self.total, promoters=self.promoters, detractors=self.detractors)

    def share(self, part: int) -> float | None:
        """``part`` as a percentage (0–100) of all answers."""
        return round(part * 100 / self.total, 1) if self.total else None

    def __add__(self, other: NpsCounts) -> NpsCounts:
        return NpsCounts(
            self.total + other.total,
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )


ZERO = NpsCounts()


@dataclass(frozen=True)
class NpsRow:
    """One line of a breakdown: what it names and its counts."""

    key: int | None
    label: str
    counts: NpsCounts


@dataclass(frozen=True)
class NpsComment:
    answered_at: dt.datetime
    score: int | None
    touchpoint: str
    comment: str


@dataclass
class NpsReport:
    counts: NpsCounts
    previous: NpsCounts | None
    weeks: list[tuple[dt.date, NpsCounts]]
    by_touchpoint: list[NpsRow] = field(default_factory=list)
    by_department: list[NpsRow] = field(default_factory=list)
    by_segment: list[NpsRow] = field(default_factory=list)
    by_persona: list[NpsRow] = field(default_factory=list)
    by_stage: list[NpsRow] = field(default_factory=list)
    comments: list[NpsComment] = field(default_factory=list)
    from_responses: bool = False


# --- Sources ------------------------------------------------------------------------------


def nps_surveys(*, department: Department | None = None) -> dict[int, int]:
    """NPS survey id → owner department id (of one department, if given)."""
    surveys = Survey.objects.filter(kind=Survey.Kind.NPS)
    if department is not None:
        surveys = surveys.filter(owner_department=department)
    return dict(surveys.values_list("pk", "owner_department_id"))


def _members(segment_id: int, customer_field: str = "customer_id") -> Exists:
    return Exists(
        SegmentMembership.objects.filter(
            segment_id=segment_id, customer_id=OuterRef(customer_field)
        )
    )


def _responses(
    *, period: Period, survey_ids, channel: str = "", segment_id: int | None = None
) -> QuerySet[SurveyResponse]:
    """Scored answers to the surveys in the period, at touchpoints of the channel, by members."""
    lo, hi = period.bounds()
    responses = SurveyResponse.objects.filter(
        survey_id__in=survey_ids, answered_at__gte=lo, answered_at__lt=hi
    )
    if channel:
        responses = responses.filter(touchpoint__channel=channel)
    if segment_id is not None:
        responses = responses.filter(_members(segment_id))
    return responses


def _split(row: dict) -> NpsCounts:
    total, promoters, detractors = row["total"] or 0, row["promoters"] or 0, row["detractors"] or 0
    return NpsCounts(total, promoters, total - promoters - detractors, detractors)


def answer_cells(
    *,
    period: Period,
    survey_ids,
    channel: str = "",
    segment_id: int | None = None,
    group: tuple[str, ...] = ("day", "survey_id", "touchpoint_id"),
) -> list[tuple[tuple, NpsCounts]]:
    """Counts per ``group`` key: from the daily rollup, or from the members' responses when
    a segment is given (one aggregate query either way)."""
    if segment_id is None:
        rows = DailyAnswers.objects.filter(
            survey_id__in=survey_ids, day__gte=period.start, day__lte=period.end
        )
        if channel:
            rows = rows.filter(touchpoint__channel=channel)
        aggregates = {
            "total": Coalesce(Sum("scored"), 0),
            "promoters": Coalesce(Sum("promoters"), 0),
            "detractors": Coalesce(Sum("detractors"), 0),
        }
    else:
        rows = _responses(
            period=period, survey_ids=survey_ids, channel=channel, segment_id=segment_id
        )
        if "day" in group:
            rows = rows.annotate(day=local_day("answered_at"))
        aggregates = nps_counts()
    if not group:
        return [((), _split(rows.aggregate(**aggregates)))]
    grouped = rows.values(*group).annotate(**aggregates).order_by()
    return [(tuple(row[key] for key in group), _split(row)) for row in grouped]


# --- The report ---------------------------------------------------------------------------


def _week(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _weeks(period: Period, by_day: dict[dt.date, NpsCounts]) -> list[tuple[dt.date, NpsCounts]]:
    totals: dict[dt.date, NpsCounts] = {}
    week = _week(period.start)
    while week <= period.end:
        totals[week] = ZERO
        week += dt.timedelta(days=7)
    for day, counts in by_day.items():
        totals[_week(day)] = totals.get(_week(day), ZERO) + counts
    return sorted(totals.items())


def _rows(counts: dict, labels: dict) -> list[NpsRow]:
    """Rows for the labelled keys that have answers, most answers first."""
    rows = [
        NpsRow(key, str(labels[key]), counts[key]) for key in labels if counts.get(key, ZERO).total
    ]
    return sorted(rows, key=lambda row: (-row.counts.total, row.label))


def nps_report(*, user, filters: ReportFilters) -> NpsReport:
    """Every figure of the NPS report for ``user`` and ``filters``."""
    surveys = nps_surveys(department=filters.department)
    segment_id = filters.segment_id
    scope = {"survey_ids": list(surveys), "channel": filters.channel, "segment_id": segment_id}

    by_day: dict[dt.date, NpsCounts] = defaultdict(lambda: ZERO)
    by_survey_touchpoint: dict[tuple[int, int | None], NpsCounts] = defaultdict(lambda: ZERO)
    total = ZERO
    for (day, survey_id, touchpoint_id), counts in answer_cells(period=filters.period, **scope):
        by_day[day] += counts
        by_survey_touchpoint[(survey_id, touchpoint_id)] += counts
        total += counts
    previous = None
    if filters.compare is not None:
        previous = answer_cells(period=filters.compare, group=(), **scope)[0][1]

    report = NpsReport(
        counts=total,
        previous=previous,
        weeks=_weeks(filters.period, by_day),
        from_responses=segment_id is not None,
    )

    by_touchpoint: dict[int | None, NpsCounts] = defaultdict(lambda: ZERO)
    by_owner: dict[int, NpsCounts] = defaultdict(lambda: ZERO)
    visible_surveys = set(
        Survey.objects.visible_to(user).filter(pk__in=list(surveys)).values_list("pk", flat=True)
    )
    for (survey_id, touchpoint_id), counts in by_survey_touchpoint.items():
        by_touchpoint[touchpoint_id] += counts
        if survey_id in visible_surveys:
            by_owner[surveys[survey_id]] += counts

    touchpoints = dict(Touchpoint.objects.visible_to(user).values_list("pk", "name"))
    report.by_touchpoint = _rows(by_touchpoint, touchpoints)
    owners = dict(Department.objects.filter(pk__in=list(by_owner)).values_list("pk", "name"))
    report.by_department = _rows(by_owner, owners)
    report.by_stage = _stage_rows(user, filters, by_touchpoint)
    report.by_segment, report.by_persona = _segment_rows(user, filters, scope)
    report.comments = _comments(user, filters, scope, touchpoints)
    return report


def _owned(queryset: QuerySet, user, filters: ReportFilters) -> QuerySet:
    queryset = queryset.visible_to(user)
    if filters.department is not None:
        queryset = queryset.filter(owner_department=filters.department)
    return queryset


def _stage_rows(user, filters: ReportFilters, by_touchpoint: dict) -> list[NpsRow]:
    """A stage's answers are those given at its touchpoints (stages of visible journeys)."""
    journeys = _owned(Journey.objects.all(), user, filters)
    pairs = Stage.touchpoints.through.objects.filter(stage__journey__in=journeys).values_list(
        "stage_id", "stage__journey__name", "stage__name", "stage__position", "touchpoint_id"
    )
    counts: dict[int, NpsCounts] = defaultdict(lambda: ZERO)
    labels: dict[int, str] = {}
    order: dict[int, tuple] = {}
    for stage_id, journey, stage, position, touchpoint_id in pairs:
        counts[stage_id] += by_touchpoint.get(touchpoint_id, ZERO)
        labels[stage_id] = f"{journey} › {stage}"
        order[stage_id] = (journey, position)
    rows = [NpsRow(pk, labels[pk], counts[pk]) for pk in labels if counts[pk].total]
    return sorted(rows, key=lambda row: order[row.key])


def _segment_rows(user, filters: ReportFilters, scope: dict) -> tuple[list[NpsRow], list[NpsRow]]:
    """Answers of each visible segment's members (and each visible persona's segment), in
    one GROUP BY over memberships joined to the survey responses."""
    segments = dict(_owned(Segment.objects.all(), user, filters).values_list("pk", "name"))
    personas = list(
        _owned(Persona.objects.filter(segment__isnull=False), user, filters).values_list(
            "pk", "name", "segment_id"
        )
    )
    segment_ids = set(segments) | {segment_id for _pk, _name, segment_id in personas}
    if not segment_ids or not scope["survey_ids"]:
        return [], []
    lo, hi = filters.period.bounds()
    prefix = "customer__survey_responses__"
    answers = {
        f"{prefix}survey_id__in": scope["survey_ids"],
        f"{prefix}answered_at__gte": lo,
        f"{prefix}answered_at__lt": hi,
    }
    if scope["channel"]:
        answers[f"{prefix}touchpoint__channel"] = scope["channel"]
    memberships = SegmentMembership.objects.filter(segment_id__in=segment_ids, **answers)
    if scope["segment_id"] is not None:
        memberships = memberships.filter(_members(scope["segment_id"]))
    counts = {
        row["segment_id"]: _split(row)
        for row in memberships.values("segment_id").annotate(**nps_counts(prefix)).order_by()
    }
    persona_counts = {pk: counts.get(segment_id, ZERO) for pk, _name, segment_id in personas}
    return (
        _rows(counts, segments),
        _rows(persona_counts, {pk: name for pk, name, _segment_id in personas}),
    )


def _comments(user, filters: ReportFilters, scope: dict, touchpoints: dict) -> list[NpsComment]:
    """The newest comments on visible NPS surveys in the period (no customer named)."""
    visible = Survey.objects.visible_to(user).filter(pk__in=scope["survey_ids"])
    responses = (
        _responses(
            period=filters.period,
            survey_ids=visible.values("pk"),
            channel=scope["channel"],
            segment_id=scope["segment_id"],
        )
        .exclude(comment="")
        .order_by("-answered_at", "-pk")
        .values_list("answered_at", "score", "touchpoint_id", "comment")[:COMMENT_LIMIT]
    )
    return [
        NpsComment(answered_at, score, touchpoints.get(touchpoint_id, ""), comment)
        for answered_at, score, touchpoint_id, comment in responses
    ]
