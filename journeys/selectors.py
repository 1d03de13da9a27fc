"""Reads of circle ③: personas, journeys and campaigns, always scoped to the asking user."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from journeys.models import (
    SLOT_KINDS,
    TRIGGER_KINDS,
    Campaign,
    CampaignRun,
    Delivery,
    Enrollment,
    Journey,
    Persona,
    StaffTask,
    Suppression,
)

ACTIVE_CAMPAIGN_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED)


def platform_headline(user, *, since: dt.datetime) -> dict[str, int]:
    """Active campaigns the user can see, and their deliveries created since ``since``."""
    campaigns = Campaign.objects.visible_to(user)
    return {
        "campaigns_active": campaigns.filter(status__in=ACTIVE_CAMPAIGN_STATUSES).count(),
        "deliveries_30d": Delivery.objects.filter(
            campaign__in=campaigns.values("pk"), created_at__gte=since
        ).count(),
    }


def persona_list(user) -> QuerySet[Persona]:
    """Personas the user can see, with owner department and backing segment."""
    return (
        Persona.objects.visible_to(user)
        .select_related("owner_department", "segment")
        .order_by("name")
    )


def journey_list(user) -> QuerySet[Journey]:
    """Journeys the user can see, with their persona and owner department."""
    return (
        Journey.objects.visible_to(user)
        .select_related("owner_department", "persona")
        .order_by("name")
    )


def campaign_list(user) -> QuerySet[Campaign]:
    """Campaigns the user can see, newest first."""
    return (
        Campaign.objects.visible_to(user)
        .select_related("owner_department")
        .order_by("-created_at", "-pk")
    )


# --- Campaign pages ------------------------------------------------------------------------

# Fewer people than this in either group and the lift is shown as "not enough data".
LIFT_MIN_GROUP = 30
# A 95 % two-sided interval under the normal approximation.
Z_95 = 1.959964
# Latency percentiles read at most this many of the latest sends.
LATENCY_SAMPLE = 20_000
# Recurring slots listed per campaign on one calendar page, at most.
CALENDAR_MAX_SLOTS = 200


def campaign_list_filtered(
    user, *, status: str = "", channel: str = "", kind: str = "", department_id: int | None = None
) -> QuerySet[Campaign]:
    """The campaign list page: visible campaigns narrowed by the filters, with the segment."""
    campaigns = campaign_list(user).select_related("segment")
    if status:
        campaigns = campaigns.filter(status=status)
    if channel:
        campaigns = campaigns.filter(channel=channel)
    if kind:
        campaigns = campaigns.filter(kind=kind)
    if department_id:
        campaigns = campaigns.filter(owner_department_id=department_id)
    return campaigns


def approvals_queue(user) -> QuerySet[Campaign]:
    """Drafts waiting for approval in the departments the user manages (all for the admin)."""
    from config.org.models import Role
    from config.org.selectors import departments_where

    return (
        Campaign.objects.visible_to(user)
        .filter(
            status=Campaign.Status.DRAFT,
            approval_requested_at__isnull=False,
            owner_department__in=departments_where(user, Role.MANAGER),
        )
        .select_related("owner_department", "created_by")
        .order_by("approval_requested_at", "pk")
    )


def campaign_steps(campaign: Campaign) -> list:
    """The campaign's steps in order, each with its variants prefetched."""
    return list(campaign.steps.prefetch_related("variants").order_by("position"))


def segment_member_sample(campaign: Campaign, *, limit: int = 20):
    """A few current members of the campaign's segment, to preview a message with."""
    from customers.models import Customer, SegmentMembership

    if campaign.segment_id is None:
        return Customer.objects.none()
    member_ids = SegmentMembership.objects.filter(segment_id=campaign.segment_id).values(
        "customer_id"
    )
    return Customer.objects.filter(pk__in=member_ids, merged_into__isnull=True).order_by("pk")[
        :limit
    ]


@dataclass(frozen=True)
class Lift:
    """Treatment vs holdout conversion; ``enough`` is False below ``LIFT_MIN_GROUP``."""

    treatment_n: int
    treatment_converted: int
    holdout_n: int
    holdout_converted: int
    enough: bool
    treatment_rate: float | None
    holdout_rate: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    relative: float | None

    @property
    def significant(self) -> bool:
        return bool(self.enough and (self.ci_low > 0 or self.ci_high < 0))


def lift_estimate(
    *, treatment_n: int, treatment_converted: int, holdout_n: int, holdout_converted: int
) -> Lift:
    """Difference of two conversion proportions with a 95 % normal-approximation interval.

    ``difference`` = p_treatment − p_holdout (a proportion, 0.012 = 1.2 points); the
    standard error is √(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂). Below ``LIFT_MIN_GROUP`` people in
    either group the approximation is meaningless, so only the counts are returned.
    """
    rate_t = treatment_converted / treatment_n if treatment_n else None
    rate_h = holdout_converted / holdout_n if holdout_n else None
    enough = treatment_n >= LIFT_MIN_GROUP and holdout_n >= LIFT_MIN_GROUP
    difference = ci_low = ci_high = relative = None
    if enough:
        difference = rate_t - rate_h
        se = math.sqrt(rate_t * (1 - rate_t) / treatment_n + rate_h * (1 - rate_h) / holdout_n)
        ci_low, ci_high = difference - Z_95 * se, difference + Z_95 * se
        relative = difference / rate_h if rate_h else None
    return Lift(
        treatment_n=treatment_n,
        treatment_converted=treatment_converted,
        holdout_n=holdout_n,
        holdout_converted=holdout_converted,
        enough=enough,
        treatment_rate=rate_t,
        holdout_rate=rate_h,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        relative=relative,
    )


def _percentile(sorted_values: list[float], share: float) -> float | None:
    """Linear-interpolated percentile of an ascending list (the same as PostgreSQL's
    ``percentile_cont``)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * share
    low = math.floor(position)
    high = math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


FUNNEL_FIELDS = ("sent_at", "delivered_at", "opened_at", "clicked_at", "converted_at")
NOT_SENT_STATUSES = (
    Delivery.Status.SUPPRESSED,
    Delivery.Status.CAPPED,
    Delivery.Status.FAILED,
    Delivery.Status.UNCONFIRMED,
)


def campaign_results(campaign: Campaign) -> dict:
    """The results page's figures, each one set-based aggregate over the campaign's rows.

    - ``funnel``: sends reaching each stage, counted from the Delivery timestamps (a
      clicked message was also opened and delivered, whatever its status says now);
    - ``revenue``: attributed order revenue;
    - ``outcomes``: deliveries not sent (suppressed, capped, failed…) and deferred ones
      (still pending with a reason) per status and reason;
    - ``lift``: enrolments converted (any delivery of the enrolment converted), treatment vs
      holdout, with a 95 % interval (:func:`lift_estimate`);
    - ``latency``: p50/p95 seconds from the trigger (or the due time when later) to the hand
      over to the channel, ``sent_at − greatest(due_at, trigger_received_at)``;
    - ``by_variant``: the funnel per step and variant (A/B).
    """
    deliveries = Delivery.objects.filter(campaign=campaign)
    # The holdout group's orders are tracked for the lift, but were not won by a message.
    contacted = ~Q(status=Delivery.Status.HOLDOUT)
    counts = {
        field: Count("pk", filter=Q(**{f"{field}__isnull": False}) & contacted)
        for field in FUNNEL_FIELDS
    }
    totals = deliveries.aggregate(
        total=Count("pk"),
        holdout=Count("pk", filter=Q(status=Delivery.Status.HOLDOUT)),
        pending=Count(
            "pk", filter=Q(status__in=(Delivery.Status.PENDING, Delivery.Status.SENDING))
        ),
        revenue=Sum("revenue", filter=contacted),
        **counts,
    )
    funnel = [(field.removesuffix("_at"), totals[field]) for field in FUNNEL_FIELDS]

    outcome_rows = (
        deliveries.filter(
            Q(status__in=NOT_SENT_STATUSES) | Q(status=Delivery.Status.PENDING) & ~Q(reason="")
        )
        .values_list("status", "reason")
        .annotate(n=Count("pk"))
        .order_by("status", "reason")
    )
    status_labels = dict(Delivery.Status.choices)
    outcomes = [
        {
            "status": status,
            "label": _("Deferred") if status == Delivery.Status.PENDING else status_labels[status],
            "reason": reason,
            "count": n,
        }
        for status, reason, n in outcome_rows
    ]

    converted = Exists(
        Delivery.objects.filter(enrollment_id=OuterRef("pk"), converted_at__isnull=False)
    )
    groups = Enrollment.objects.filter(campaign=campaign).aggregate(
        treatment_n=Count("pk", filter=Q(is_holdout=False)),
        treatment_converted=Count("pk", filter=Q(converted, is_holdout=False)),
        holdout_n=Count("pk", filter=Q(is_holdout=True)),
        holdout_converted=Count("pk", filter=Q(converted, is_holdout=True)),
    )
    lift = lift_estimate(**groups)

    started = Greatest(
        Coalesce("due_at", "sent_at"),
        Coalesce("enrollment__trigger_received_at", "due_at", "sent_at"),
    )
    latencies = sorted(
        max(value.total_seconds(), 0.0)
        for value in deliveries.filter(sent_at__isnull=False)
        .annotate(latency=ExpressionWrapper(F("sent_at") - started, output_field=DurationField()))
        .order_by("-sent_at")
        .values_list("latency", flat=True)[:LATENCY_SAMPLE]
        if value is not None
    )
    latency = {
        "n": len(latencies),
        "p50": _percentile(latencies, 0.5),
        "p95": _percentile(latencies, 0.95),
    }

    by_variant = list(
        deliveries.values("step_id", "step__position", "step__name", "variant__label")
        .annotate(
            total=Count("pk"),
            holdout=Count("pk", filter=Q(status=Delivery.Status.HOLDOUT)),
            revenue=Sum("revenue"),
            **counts,
        )
        .order_by("step__position", "variant__label")
    )
    for row in by_variant:
        sent = row["sent_at"]
        row["open_rate"] = row["opened_at"] / sent if sent else None
        row["click_rate"] = row["clicked_at"] / sent if sent else None
        row["conversion_rate"] = row["converted_at"] / sent if sent else None

    return {
        "total": totals["total"],
        "holdout": totals["holdout"],
        "pending": totals["pending"],
        "funnel": funnel,
        "revenue": totals["revenue"] or 0,
        "outcomes": outcomes,
        "lift": lift,
        "latency": latency,
        "by_variant": by_variant,
    }


def campaign_runs(campaign: Campaign, *, limit: int = 20) -> QuerySet[CampaignRun]:
    """The latest run slots of a one-off or recurring campaign."""
    return campaign.runs.order_by("-scheduled_for")[:limit]


# --- Calendar ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarItem:
    """One thing on the calendar: a run slot (``at``) or an always-on span (``start``…``end``)."""

    campaign: Campaign
    kind: str  # "run" (happened), "slot" (upcoming), "span" (trigger campaign active)
    at: dt.datetime | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    enrolled: int | None = None


def campaign_calendar(user, start: dt.datetime, end: dt.datetime, *, now=None) -> dict:
    """What the user's visible campaigns do in [start, end).

    ``runs`` — one-off and recurring slots that ran (CampaignRun) plus upcoming ones (a
    scheduled one-off's ``next_run_at``, a recurring campaign's cron slots from
    ``scheduling.next_run_after``); ``spans`` — trigger campaigns running or scheduled in
    the period. Three queries whatever the number of campaigns.
    """
    now = now or timezone.now()
    visible = Campaign.objects.visible_to(user)
    items: list[CalendarItem] = []
    seen: set[tuple[int, dt.datetime]] = set()
    runs = (
        CampaignRun.objects.filter(
            campaign__in=visible.values("pk"), scheduled_for__gte=start, scheduled_for__lt=end
        )
        .select_related("campaign")
        .order_by("scheduled_for")
    )
    for run in runs:
        seen.add((run.campaign_id, run.scheduled_for))
        items.append(
            CalendarItem(
                campaign=run.campaign, kind="run", at=run.scheduled_for, enrolled=run.enrolled
            )
        )

    upcoming = visible.filter(
        kind__in=SLOT_KINDS,
        status__in=(Campaign.Status.SCHEDULED, Campaign.Status.RUNNING),
        next_run_at__isnull=False,
        next_run_at__lt=end,
    )
    for campaign in upcoming:
        slot = campaign.next_run_at
        count = 0
        while slot is not None and slot < end and count < CALENDAR_MAX_SLOTS:
            if slot >= start and (campaign.pk, slot) not in seen:
                seen.add((campaign.pk, slot))
                items.append(CalendarItem(campaign=campaign, kind="slot", at=slot))
            if campaign.kind != Campaign.Kind.RECURRING:
                break
            slot = _next_slot(campaign, slot)
            count += 1
    items.sort(key=lambda item: (item.at, item.campaign.pk))

    spans = [
        CalendarItem(campaign=campaign, kind="span", start=campaign.starts_at, end=campaign.ends_at)
        for campaign in visible.filter(
            kind__in=TRIGGER_KINDS,
            status__in=(Campaign.Status.SCHEDULED, Campaign.Status.RUNNING),
        )
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lt=end))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gte=start))
        .order_by("starts_at", "name")
    ]
    return {"runs": items, "spans": spans}


def _next_slot(campaign: Campaign, after: dt.datetime) -> dt.datetime | None:
    from journeys import scheduling

    return scheduling.next_run_after(campaign, after)


# --- Staff tasks ---------------------------------------------------------------------------


def staff_tasks_for(user, *, scope: str = "mine", status: str = "open") -> QuerySet[StaffTask]:
    """Tasks for the user: ``mine`` — assigned to them, or unassigned in their departments
    (directly or through a store they own); ``department`` — every task of the departments
    they manage. ``status`` "all" or a StaffTask.Status."""
    from config.org.models import Role

    if not user.is_authenticated:
        return StaffTask.objects.none()
    tasks = StaffTask.objects.all()
    if scope == "department":
        if not user.is_superuser:
            managed = user.department_ids_with_role(Role.MANAGER)
            tasks = tasks.filter(
                Q(department_id__in=managed)
                | Q(department__isnull=True, campaign__owner_department_id__in=managed)
            )
    else:
        departments = user.department_ids
        tasks = tasks.filter(
            Q(assignee=user)
            | Q(assignee__isnull=True, department_id__in=departments)
            | Q(assignee__isnull=True, store__owner_department_id__in=departments)
        )
    if status and status != "all":
        tasks = tasks.filter(status=status)
    return tasks.select_related("customer", "campaign", "store", "assignee", "department").order_by(
        F("due_at").asc(nulls_last=True), "pk"
    )


def staff_task_for(user, pk: int) -> StaffTask:
    """One task the user may act on (theirs, or their managed department's), else 404."""
    from django.http import Http404

    task = (
        staff_tasks_for(user, scope="mine", status="all").filter(pk=pk).first()
        or staff_tasks_for(user, scope="department", status="all").filter(pk=pk).first()
    )
    if task is None:
        raise Http404
    return task


# --- Settings ------------------------------------------------------------------------------


def suppression_list(*, q: str = "") -> QuerySet[Suppression]:
    """The global suppression list, newest first; ``q`` finds addresses containing it."""
    suppressions = Suppression.objects.select_related("created_by").order_by("-created_at", "-pk")
    q = q.strip()
    if q:
        suppressions = suppressions.filter(value__icontains=q.lower())
    return suppressions
