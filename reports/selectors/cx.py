"""Reads of the CX-value report: what each of the five experience values reaches and yields.

A value is aimed at by campaigns (``Campaign.experience_values``) and touchpoints
(``Touchpoint.experience_values``); only those the user can see, narrowed by the department
(owner) and channel filters, count. Per value:

- **reach**: distinct people in the treatment group of its campaigns who entered in the
  period (enrolments; the segment filter applies);
- **visits**: visitor-days at its touchpoints (``DailyEvents.customers`` summed over days and
  event types: a person is counted once per day, event type and value mask);
- **engagement**: opens and clicks of its campaigns (``DailyDeliveries``), and events that
  delivered the value (``DailyEvents.value_bits``);
- **conversion** and **revenue** of its campaigns (``DailyDeliveries``);
- **outcome**: NPS, repeat-purchase rate and promoter share of reached people against the
  holdout, over the campaigns active in the period (``CampaignOutcome``; with a segment,
  the same figures recomputed over the members' enrolments).

Events delivering a value carry no department: without a department or channel filter they
are counted company-wide (like the overall NPS); with one, at the touchpoints in scope.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import ExperienceValue, Survey, SurveyResponse, Touchpoint
from journeys.models import Enrollment
from reports.catalog import Period, ReportFilters
from reports.models import DailyDeliveries, DailyEvents
from reports.outcomes import Counts, empty_counts, segment_outcome_counts
from reports.selectors.lift import group_nps, scoped_campaigns, stored_outcomes

VALUE_CODES: tuple[str, ...] = tuple(ExperienceValue.Code.values)
# Event types in which customers speak up for the company (the demo's names, and the usual
# ones of web shops): reviews, referrals, shares.
ADVOCACY_EVENT_TYPES: tuple[str, ...] = (
    "review_posted",
    "review",
    "referral",
    "share",
    "social_share",
)
LATEST_COMMENTS = 5
DELIVERY_MEASURES = ("opened", "clicked", "converted", "revenue")


@dataclass
class ValueFigures:
    """Everything measured for one experience value."""

    code: str
    campaigns: list[str] = field(default_factory=list)
    touchpoints: list[str] = field(default_factory=list)
    reached: int = 0
    visits: int = 0
    touchpoint_events: int = 0
    value_events: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    revenue: Decimal = Decimal(0)
    treatment: Counts = field(default_factory=empty_counts)
    holdout: Counts = field(default_factory=empty_counts)

    @property
    def label(self) -> str:
        return str(ExperienceValue.Code(self.code).label)

    @property
    def nps_reached(self) -> float | None:
        return group_nps(self.treatment)

    @property
    def nps_holdout(self) -> float | None:
        return group_nps(self.holdout)

    @property
    def nps_change(self) -> float | None:
        if self.nps_reached is None or self.nps_holdout is None:
            return None
        return round(self.nps_reached - self.nps_holdout, 1)

    @property
    def repeat_reached(self) -> float | None:
        return _share(self.treatment["repeat_buyers"], self.treatment["enrolled"])

    @property
    def repeat_holdout(self) -> float | None:
        return _share(self.holdout["repeat_buyers"], self.holdout["enrolled"])

    @property
    def repeat_change(self) -> float | None:
        if self.repeat_reached is None or self.repeat_holdout is None:
            return None
        return self.repeat_reached - self.repeat_holdout

    @property
    def promoter_share_reached(self) -> float | None:
        return promoter_share(self.treatment)

    @property
    def promoter_share_holdout(self) -> float | None:
        return promoter_share(self.holdout)


@dataclass(frozen=True)
class WeekFigures:
    week: dt.date
    code: str
    value_events: int
    opened: int
    clicked: int
    converted: int
    revenue: Decimal


@dataclass
class ValueReport:
    values: list[ValueFigures]
    weeks: list[WeekFigures]
    active: set[int]
    campaign_codes: dict[int, list[str]]

    @property
    def active_campaigns(self) -> int:
        return len(self.active)


@dataclass(frozen=True)
class Comment:
    answered: dt.date
    score: int | None
    survey: str
    text: str


@dataclass(frozen=True)
class Empathy:
    comments: int
    latest: list[Comment]
    advocacy: dict[str, dict[str, int]]
    treatment: Counts
    holdout: Counts

    @property
    def advocacy_events(self) -> int:
        return sum(row["events"] for row in self.advocacy.values())

    @property
    def promoter_share_reached(self) -> float | None:
        return promoter_share(self.treatment)

    @property
    def promoter_share_holdout(self) -> float | None:
        return promoter_share(self.holdout)

    @property
    def promoter_shift(self) -> float | None:
        reached, held = self.promoter_share_reached, self.promoter_share_holdout
        if reached is None or held is None:
            return None
        return reached - held


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def promoter_share(counts: Counts) -> float | None:
    """Promoters among the NPS answers of a group (0–1)."""
    answers = counts["promoters"] + counts["passives"] + counts["detractors"]
    return _share(counts["promoters"], answers)


def week_of(day: dt.date) -> dt.date:
    """The Monday of ``day`` 's ISO week."""
    return day - dt.timedelta(days=day.weekday())


def scoped_touchpoints(user, filters: ReportFilters) -> QuerySet[Touchpoint]:
    touchpoints = Touchpoint.objects.visible_to(user)
    if filters.department is not None:
        touchpoints = touchpoints.filter(owner_department=filters.department)
    if filters.channel:
        touchpoints = touchpoints.filter(channel=filters.channel)
    return touchpoints


def _members(segment_id: int, path: str = "customer_id") -> Exists:
    return Exists(
        SegmentMembership.objects.filter(segment_id=segment_id, customer_id=OuterRef(path))
    )


def _value_map(queryset: QuerySet) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Names and value codes of campaigns or touchpoints, in one query."""
    names: dict[int, str] = {}
    codes: dict[int, list[str]] = defaultdict(list)
    for pk, name, code in queryset.values_list("pk", "name", "experience_values__code").order_by(
        "name", "pk"
    ):
        names[pk] = name
        if code:
            codes[pk].append(code)
    return names, codes


def value_report(user, filters: ReportFilters, period: Period) -> ValueReport:
    """The per-value figures and weekly series for ``period``."""
    figures = {code: ValueFigures(code) for code in VALUE_CODES}
    campaigns = scoped_campaigns(user, filters)
    touchpoints = scoped_touchpoints(user, filters)
    campaign_names, campaign_codes = _value_map(campaigns)
    touchpoint_names, touchpoint_codes = _value_map(touchpoints)
    for pk, codes in campaign_codes.items():
        for code in codes:
            figures[code].campaigns.append(campaign_names[pk])
    for pk, codes in touchpoint_codes.items():
        for code in codes:
            figures[code].touchpoints.append(touchpoint_names[pk])
    weekly: dict[tuple[dt.date, str], dict] = defaultdict(
        lambda: dict.fromkeys(("value_events", *DELIVERY_MEASURES), 0)
    )
    lo, hi = period.bounds()
    segment_id = filters.segment_id

    # Reach: distinct treated people per value.
    aimed = [pk for pk, codes in campaign_codes.items() if codes]
    if aimed:
        enrolments = Enrollment.objects.filter(
            campaign_id__in=aimed, is_holdout=False, entered_at__gte=lo, entered_at__lt=hi
        )
        if segment_id is not None:
            enrolments = enrolments.filter(_members(segment_id))
        for row in (
            enrolments.values("campaign__experience_values__code")
            .annotate(people=Count("customer_id", distinct=True))
            .order_by()
        ):
            figures[row["campaign__experience_values__code"]].reached = row["people"]

    # Visits at the value's touchpoints.
    in_period = Q(day__gte=period.start, day__lte=period.end)
    aimed_touchpoints = [pk for pk, codes in touchpoint_codes.items() if codes]
    if aimed_touchpoints:
        for row in (
            DailyEvents.objects.filter(in_period, touchpoint_id__in=aimed_touchpoints)
            .values("touchpoint__experience_values__code")
            .annotate(visits=Sum("customers"), events=Sum("events"))
            .order_by()
        ):
            value = figures[row["touchpoint__experience_values__code"]]
            value.visits = row["visits"] or 0
            value.touchpoint_events = row["events"] or 0

    # Events that delivered each value, per day → per week.
    value_events = DailyEvents.objects.filter(in_period, value_bits__gt=0)
    if filters.department is not None or filters.channel:
        value_events = value_events.filter(touchpoint__in=touchpoints.values("pk"))
    for row in value_events.values("day", "value_bits").annotate(events=Sum("events")).order_by():
        for code in ExperienceValue.codes_from_bits(row["value_bits"]):
            figures[code].value_events += row["events"]
            weekly[(week_of(row["day"]), code)]["value_events"] += row["events"]

    # Engagement, conversion and revenue of the value's campaigns, per day → per week.
    active: set[int] = set()
    for row in (
        DailyDeliveries.objects.filter(in_period, campaign__in=campaigns.values("pk"))
        .values("day", "campaign_id")
        .annotate(**{name: Sum(name) for name in DELIVERY_MEASURES})
        .order_by()
    ):
        active.add(row["campaign_id"])
        for code in campaign_codes.get(row["campaign_id"], ()):
            value = figures[code]
            cell = weekly[(week_of(row["day"]), code)]
            for name in DELIVERY_MEASURES:
                setattr(value, name, getattr(value, name) + (row[name] or 0))
                cell[name] += row[name] or 0

    weeks = [
        WeekFigures(week=week, code=code, **cell)
        for (week, code), cell in sorted(
            weekly.items(), key=lambda item: (item[0][0], VALUE_CODES.index(item[0][1]))
        )
    ]
    return ValueReport(
        values=[figures[code] for code in VALUE_CODES],
        weeks=weeks,
        active=active,
        campaign_codes=dict(campaign_codes),
    )


def add_outcomes(reports: list[ValueReport], segment_id: int | None) -> None:
    """Fold the treatment and holdout outcomes of each report's active campaigns into its
    values; one read serves every report (the period and its comparison)."""
    campaign_ids = set().union(*(report.active for report in reports))
    if not campaign_ids:
        return
    if segment_id is None:
        outcomes = stored_outcomes(campaign_ids)
    else:
        outcomes = segment_outcome_counts(campaign_ids=campaign_ids, segment_id=segment_id)
    for report in reports:
        figures = {value.code: value for value in report.values}
        for (campaign_id, is_holdout), counts in outcomes.items():
            if campaign_id not in report.active:
                continue
            for code in report.campaign_codes.get(campaign_id, ()):
                group = figures[code].holdout if is_holdout else figures[code].treatment
                for name in group:
                    group[name] += counts[name]


def empathy(user, filters: ReportFilters, period: Period, report: ValueReport) -> Empathy:
    """NPS comments, advocacy events and the promoter shift of empathy campaigns."""
    lo, hi = period.bounds()
    surveys = Survey.objects.visible_to(user).filter(kind=Survey.Kind.NPS)
    if filters.department is not None:
        surveys = surveys.filter(owner_department=filters.department)
    answers = SurveyResponse.objects.filter(
        survey__in=surveys.values("pk"), answered_at__gte=lo, answered_at__lt=hi
    ).exclude(comment="")
    if filters.channel:
        answers = answers.filter(touchpoint__channel=filters.channel)
    if filters.segment_id is not None:
        answers = answers.filter(_members(filters.segment_id))
    count = answers.count()
    latest = [
        Comment(answered=timezone.localtime(answered).date(), score=score, survey=survey, text=text)
        for answered, score, survey, text in answers.order_by("-answered_at", "-pk").values_list(
            "answered_at", "score", "survey__name", "comment"
        )[:LATEST_COMMENTS]
    ]

    advocacy_rows = DailyEvents.objects.filter(
        day__gte=period.start, day__lte=period.end, event_type__name__in=ADVOCACY_EVENT_TYPES
    )
    if filters.department is not None or filters.channel:
        advocacy_rows = advocacy_rows.filter(
            touchpoint__in=scoped_touchpoints(user, filters).values("pk")
        )
    advocacy = {
        row["event_type__name"]: {"events": row["events"] or 0, "visits": row["visits"] or 0}
        for row in advocacy_rows.values("event_type__name")
        .annotate(events=Sum("events"), visits=Sum("customers"))
        .order_by("event_type__name")
    }
    empathy_value = next(
        value for value in report.values if value.code == ExperienceValue.Code.EMPATHY
    )
    return Empathy(
        comments=count,
        latest=latest,
        advocacy=advocacy,
        treatment=empathy_value.treatment,
        holdout=empathy_value.holdout,
    )
