"""When campaigns run: run slots, start and end times, dates, segment entries — the tick.

django-q2 calls :func:`tick` every minute (``journeys.tasks.campaigns_tick``). Every part
of it is idempotent, so a tick that runs twice, or two workers ticking at once, enrol
nobody twice:

* **Run slots** of one-off and recurring campaigns: the due campaign's row is locked
  (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), one
  ``CampaignRun`` is created per slot (unique on the occurrence ``r<UTC YYYYmmddHHMM>``),
  the audience is enrolled set-based, and ``next_run_at`` moves to the first slot *after
  now*: slots missed while the system was down fire once, counted in ``missed_slots``.
* **Start and end**: scheduled trigger campaigns start at ``starts_at``; campaigns past
  ``ends_at`` complete; a one-off completes once nothing of it is left to send.
* **Date triggers** (``trigger = {"date_kind": "spouse_birthday", "days_before": 7}``):
  people whose important date falls N days after *their* local today enrol once per year
  (occurrence ``d<year of the date>``); 29 February fires on 28 February in common years.
  One indexed query per target (month, day), never a scan of the customers.
* **Segment entries**: memberships added after the campaign started (occurrence
  ``s<added_at>``), so someone enrols once per entry.
* **Product changes** become ``product_restocked`` / ``price_dropped`` /
  ``product_low_stock`` events for the fans of the product (event triggers take it from
  there), and **lead scores** of prospects are recomputed once a day so they decay.
* Finally the engine advances due enrolments and the dispatcher sends, bounded in time.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _t

from customers.models import Customer, ImportantDate, Segment, SegmentMembership
from journeys.models import (
    SLOT_KINDS,
    TRIGGER_KINDS,
    Campaign,
    CampaignRun,
    Delivery,
    Enrollment,
)

logger = logging.getLogger(__name__)

LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING)
MAX_MISSED_COUNT = 100_000
"""Slots counted at most when reporting a long downtime (counting is a loop)."""
SEGMENT_ENTRY_OVERLAP = dt.timedelta(minutes=10)
"""Memberships this much older than the last processed mark are looked at again: a sync
transaction that committed late is not missed (enrolment is idempotent anyway)."""
SEGMENT_ENTRY_GROUPS = 500
"""Distinct entry times handled per campaign per tick (each is one set-based insert)."""
DISPATCH_SECONDS = 40
"""How long one tick may spend handing deliveries to channels (the tick runs every minute)."""


# --------------------------------------------------------------------------- cron


def validate_cron(expr: str) -> str:
    """The cleaned cron expression (five fields), or ``ValidationError`` naming ``cron``."""
    from croniter import croniter

    cleaned = " ".join(str(expr or "").split())
    if not cleaned:
        raise ValidationError({"cron": _t("A recurring campaign needs a cron expression.")})
    fields = cleaned.split(" ")
    if len(fields) != 5 or not croniter.is_valid(cleaned):
        raise ValidationError(
            {
                "cron": _t(
                    "“%(expr)s” is not a cron expression: give five fields, minute hour "
                    "day-of-month month weekday, e.g. “0 10 * * 5” (Fridays at 10:00)."
                )
                % {"expr": cleaned[:100]}
            }
        )
    return cleaned


def _company_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _next_cron_slot(expr: str, after: dt.datetime) -> dt.datetime:
    """The first slot of ``expr`` (company time zone) strictly after ``after``, in UTC."""
    from croniter import croniter

    local = after.astimezone(_company_zone())
    return croniter(expr, local).get_next(dt.datetime).astimezone(dt.UTC)


def next_run_after(campaign: Campaign, after: dt.datetime) -> dt.datetime | None:
    """When the campaign should next run, given that ``after`` has been reached.

    One-off: ``starts_at`` (or ``after`` itself when it is unset or has passed), unless
    it already ran. Recurring: the first cron slot strictly after ``after`` and not before
    ``starts_at``. ``None`` when nothing is left before ``ends_at``. Trigger kinds have no
    slots: their ``starts_at`` while it lies ahead, else ``None``.
    """
    if campaign.kind == Campaign.Kind.ONE_OFF:
        if campaign.pk and CampaignRun.objects.filter(campaign_id=campaign.pk).exists():
            return None
        slot = max(campaign.starts_at, after) if campaign.starts_at else after
    elif campaign.kind == Campaign.Kind.RECURRING:
        if not campaign.cron:
            return None
        base = after
        if campaign.starts_at and campaign.starts_at > after:
            base = campaign.starts_at - dt.timedelta(seconds=1)
        slot = _next_cron_slot(campaign.cron, base)
    else:
        return campaign.starts_at if campaign.starts_at and campaign.starts_at > after else None
    if campaign.ends_at and slot > campaign.ends_at:
        return None
    return slot


def _missed_slots(expr: str, slot: dt.datetime, now: dt.datetime) -> tuple[int, dt.datetime]:
    """(slots after ``slot`` up to ``now`` that will not fire, the first slot after now)."""
    missed = 0
    following = _next_cron_slot(expr, slot)
    while following <= now and missed < MAX_MISSED_COUNT:
        missed += 1
        following = _next_cron_slot(expr, following)
    if following <= now:  # gave up counting: jump straight past now
        following = _next_cron_slot(expr, now)
    return missed, following


def occurrence_of_slot(slot: dt.datetime) -> str:
    return "r" + slot.astimezone(dt.UTC).strftime("%Y%m%d%H%M")


# --------------------------------------------------------------------------- the report


@dataclass
class TickReport:
    """What one tick did, in counts (logged by the task, shown nowhere else)."""

    runs: int = 0
    missed_slots: int = 0
    enrolled: int = 0
    started: int = 0
    completed: int = 0
    date_enrolled: int = 0
    segment_enrolled: int = 0
    product_events: int = 0
    rescored: int = 0
    advanced: int = 0
    dispatched: dict = field(default_factory=dict)
    errors: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- tick


def tick(*, now: dt.datetime | None = None, dispatch_seconds: float | None = None) -> TickReport:
    """Run everything that is due at ``now``; see the module docstring. Idempotent."""
    from journeys import engine

    now = now or timezone.now()
    report = TickReport()
    report.started += campaigns_start(now=now)
    for campaign_id in _due_slot_campaign_ids(now):
        try:
            run = run_slot(campaign_id=campaign_id, now=now)
        except Exception:  # one broken campaign must not stop the others
            logger.exception("campaign #%s: run slot failed", campaign_id)
            report.errors += 1
            continue
        if run is not None:
            report.runs += 1
            report.missed_slots += run.missed_slots
            report.enrolled += run.enrolled
    for step, counter in (
        (date_triggers_enroll, "date_enrolled"),
        (segment_entries_enroll, "segment_enrolled"),
    ):
        try:
            setattr(report, counter, step(now=now))
        except Exception:
            logger.exception("tick: %s failed", step.__name__)
            report.errors += 1
    try:
        from experience.commerce import product_change_events_emit

        report.product_events = product_change_events_emit(now=now)
    except Exception:
        logger.exception("tick: product change events failed")
        report.errors += 1
    try:
        from journeys.scoring import lead_scores_decay

        report.rescored = lead_scores_decay(now=now)
    except Exception:
        logger.exception("tick: lead score decay failed")
        report.errors += 1
    report.advanced = engine.enrollments_advance(now=now)
    stats = engine.deliveries_dispatch(
        now=now, max_seconds=DISPATCH_SECONDS if dispatch_seconds is None else dispatch_seconds
    )
    report.dispatched = _as_counts(stats)
    report.completed += campaigns_complete(now=now)
    return report


def _as_counts(stats) -> dict:
    if stats is None:
        return {}
    if isinstance(stats, dict):
        return dict(stats)
    try:
        return asdict(stats)
    except TypeError:
        return dict(vars(stats))


def campaigns_start(*, now: dt.datetime) -> int:
    """Scheduled trigger campaigns whose start time has come begin to listen."""
    return (
        Campaign.objects.filter(kind__in=TRIGGER_KINDS, status=Campaign.Status.SCHEDULED)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .update(status=Campaign.Status.RUNNING, updated_at=now)
    )


def campaigns_complete(*, now: dt.datetime) -> int:
    """Complete the campaigns that are over.

    Past ``ends_at`` (any kind, scheduled or running); a one-off that ran and has neither
    active enrolments nor deliveries waiting to be sent; a recurring campaign with no slot
    left. People already enrolled keep their remaining steps until then.
    """
    done = Campaign.objects.filter(status__in=LIVE, ends_at__lte=now).update(
        status=Campaign.Status.COMPLETED, next_run_at=None, updated_at=now
    )
    active = Enrollment.objects.filter(campaign_id=OuterRef("pk"), status=Enrollment.Status.ACTIVE)
    waiting = Delivery.objects.filter(
        campaign_id=OuterRef("pk"),
        status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING],
    )
    ran = CampaignRun.objects.filter(campaign_id=OuterRef("pk"))
    done += (
        Campaign.objects.filter(
            kind__in=SLOT_KINDS, status=Campaign.Status.RUNNING, next_run_at__isnull=True
        )
        .filter(Exists(ran))
        .exclude(Exists(active))
        .exclude(Exists(waiting))
        .update(status=Campaign.Status.COMPLETED, updated_at=now)
    )
    return done


def _due_slot_campaign_ids(now: dt.datetime) -> list[int]:
    return list(
        Campaign.objects.filter(kind__in=SLOT_KINDS, status__in=LIVE, next_run_at__lte=now)
        .order_by("next_run_at", "pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def run_slot(*, campaign_id: int, now: dt.datetime) -> CampaignRun | None:
    """Fire the due slot of one campaign: its run, its enrolments, its next slot.

    ``None`` when another worker holds the campaign, or it is no longer due. The run is
    unique per (campaign, occurrence), so a slot never fires twice.
    """
    from journeys import engine

    campaign = (
        Campaign.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=campaign_id, kind__in=SLOT_KINDS, status__in=LIVE, next_run_at__lte=now)
        .select_related("segment")
        .first()
    )
    if campaign is None:
        return None
    slot = campaign.next_run_at
    if campaign.ends_at and slot > campaign.ends_at:
        campaign.status = Campaign.Status.COMPLETED
        campaign.next_run_at = None
        campaign.save(update_fields=["status", "next_run_at", "updated_at"])
        return None
    missed = 0
    following: dt.datetime | None = None
    if campaign.kind == Campaign.Kind.RECURRING and campaign.cron:
        missed, following = _missed_slots(campaign.cron, slot, now)
        if campaign.ends_at and following > campaign.ends_at:
            following = None
    occurrence = occurrence_of_slot(slot)
    run, created = CampaignRun.objects.get_or_create(
        campaign=campaign,
        occurrence=occurrence,
        defaults={"scheduled_for": slot, "missed_slots": missed},
    )
    if created:
        run.enrolled = engine.enroll_audience(
            campaign=campaign,
            customers=campaign_audience(campaign, now=now),
            occurrence=occurrence,
            entered_at=slot,
        )
        run.save(update_fields=["enrolled"])
    campaign.next_run_at = following
    campaign.status = Campaign.Status.RUNNING
    campaign.save(update_fields=["next_run_at", "status", "updated_at"])
    return run if created else None


def campaign_audience(campaign: Campaign, *, now: dt.datetime) -> QuerySet[Customer]:
    """Everyone a slot addresses: the segment as it is now (all customers without one).

    Entry conditions (``audience_rules``), merged-away profiles, consent and the rest are
    the engine's and dispatcher's business.
    """
    from customers.segments import segment_queryset

    segment = campaign.segment
    if segment is None:
        return Customer.objects.filter(merged_into__isnull=True)
    if segment.kind == Segment.Kind.STATIC:
        return Customer.objects.filter(
            pk__in=SegmentMembership.objects.filter(segment_id=segment.pk).values("customer_id")
        )
    return segment_queryset(segment.rules or {}, now=now)


# --------------------------------------------------------------------------- date triggers


def _started_at(campaign: Campaign) -> dt.datetime:
    """When the campaign began listening: the later of its approval and its start."""
    moments = [m for m in (campaign.approved_at, campaign.starts_at) if m is not None]
    return max(moments) if moments else campaign.created_at


def date_targets(today: dt.date, days_before: int) -> tuple[dt.date, list[tuple[int, int]]]:
    """The date that is ``days_before`` days after ``today`` and the (month, day) pairs
    that fall on it: 29 February is celebrated on 28 February in common years."""
    target = today + dt.timedelta(days=days_before)
    pairs = [(target.month, target.day)]
    if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
        pairs.append((2, 29))
    return target, pairs


def _zone(name: str, default: zoneinfo.ZoneInfo) -> zoneinfo.ZoneInfo:
    if not name:
        return default
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return default


def date_triggers_enroll(*, now: dt.datetime) -> int:
    """Enrol the people whose important date is N days after their local today.

    Local today lies within a day of today in UTC for every time zone on Earth, so the
    candidates are the dates N−1…N+1 days after the UTC date: one query per candidate
    (month, day) over the (month, day, kind) index, then each candidate's own time zone
    decides. Occurrence ``d<year of the date>``: once a year, whatever the ticks.
    """
    from journeys import engine

    campaigns = list(
        Campaign.objects.filter(kind=Campaign.Kind.DATE, status=Campaign.Status.RUNNING)
    )
    if not campaigns:
        return 0
    default_zone = _company_zone()
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    utc_today = now.astimezone(dt.UTC).date()
    total = 0
    for campaign in campaigns:
        trigger = campaign.trigger or {}
        kind = trigger.get("date_kind")
        try:
            days_before = int(trigger.get("days_before") or 0)
        except (TypeError, ValueError):
            logger.warning("campaign #%s: days_before is not a number", campaign.pk)
            continue
        if not kind or days_before < 0:
            continue
        seeds = []
        for shift in (-1, 0, 1):
            target, pairs = date_targets(utc_today + dt.timedelta(days=shift), days_before)
            pair_q = Q()
            for month, day in pairs:
                pair_q |= Q(month=month, day=day)
            occurrence = f"d{target.year}"
            already = Enrollment.objects.filter(
                campaign_id=campaign.pk, customer_id=OuterRef("customer_id"), occurrence=occurrence
            )
            rows = (
                ImportantDate.objects.filter(pair_q, kind=kind)
                .filter(customer__merged_into__isnull=True)
                .exclude(Exists(already))
                .values_list("customer_id", "customer__time_zone")
                .order_by()
            )
            for customer_id, zone_name in rows:
                zone = zones.setdefault(zone_name, _zone(zone_name, default_zone))
                local_today = now.astimezone(zone).date()
                if local_today + dt.timedelta(days=days_before) != target:
                    continue
                seeds.append(
                    engine.EnrollmentSeed(
                        customer_id=customer_id,
                        occurrence=occurrence,
                        entered_at=now,
                        trigger_received_at=now,
                        context={
                            "date_kind": kind,
                            "date": target.isoformat(),
                            "days_before": days_before,
                        },
                    )
                )
        if seeds:
            total += engine.enroll_customers(campaign=campaign, seeds=_unique(seeds))
    return total


def _unique(seeds: Iterable) -> list:
    seen: set[tuple[int, str]] = set()
    kept = []
    for seed in seeds:
        key = (seed.customer_id, seed.occurrence)
        if key not in seen:
            seen.add(key)
            kept.append(seed)
    return kept


# --------------------------------------------------------------------------- segment entry

ENTERED_AFTER = "entered_after"


def segment_entries_enroll(*, now: dt.datetime) -> int:
    """Enrol people who entered a segment-entry campaign's segment since it started.

    The memberships added after the later of the campaign's start and its last processed
    mark (``trigger["entered_after"]``, moved on each tick) are grouped by their
    ``added_at`` — one set-based enrolment per entry moment, occurrence
    ``s<added_at as YYYYmmddHHMMSS>``, so someone who leaves and comes back enrols again,
    but one entry enrols once.
    """
    from journeys import engine

    total = 0
    campaigns = Campaign.objects.filter(
        kind=Campaign.Kind.SEGMENT_ENTRY,
        status=Campaign.Status.RUNNING,
        segment__isnull=False,
    )
    for campaign in campaigns:
        floor = _started_at(campaign)
        mark = _parse_mark((campaign.trigger or {}).get(ENTERED_AFTER))
        memberships = SegmentMembership.objects.filter(
            segment_id=campaign.segment_id, added_at__gt=floor, added_at__lte=now
        )
        if mark is not None:
            memberships = memberships.filter(added_at__gt=mark - SEGMENT_ENTRY_OVERLAP)
        moments = list(
            memberships.order_by("added_at")
            .values_list("added_at", flat=True)
            .distinct()[:SEGMENT_ENTRY_GROUPS]
        )
        for added_at in moments:
            occurrence = "s" + added_at.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
            total += engine.enroll_audience(
                campaign=campaign,
                customers=Customer.objects.filter(
                    pk__in=SegmentMembership.objects.filter(
                        segment_id=campaign.segment_id, added_at=added_at
                    ).values("customer_id")
                ),
                occurrence=occurrence,
                entered_at=added_at,
                trigger_received_at=added_at,
            )
        if moments and (mark is None or moments[-1] > mark):
            trigger = dict(campaign.trigger or {})
            trigger[ENTERED_AFTER] = moments[-1].astimezone(dt.UTC).isoformat()
            Campaign.objects.filter(pk=campaign.pk).update(trigger=trigger)
    return total


def _parse_mark(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
