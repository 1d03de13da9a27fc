"""The campaign engine: enrol people, walk them through the steps, send each message once.

Exactly once lives in the data, not in the queue (django-q2 delivers a task at least once):

1. **Enrol** — one ``Enrollment`` per (campaign, customer, occurrence), written set-based
   with ``INSERT … SELECT … ON CONFLICT DO NOTHING``; ``bucket`` (0–99, deterministic per
   campaign and person) decides the holdout group and the A/B variant.
2. **Advance** — due enrolments get their step's ``Delivery`` row (``pending``, or
   ``holdout`` for the control group) through another ``INSERT … SELECT … ON CONFLICT DO
   NOTHING``; the unique constraint on (campaign, step, customer, occurrence) forbids a
   second row whatever runs twice. Then the enrolment moves to its next step or completes.
3. **Dispatch** — workers claim due pending rows in batches (``UPDATE … SET status =
   'sending', claim = <token> WHERE pk IN (…) AND status = 'pending'``; on PostgreSQL the
   candidates are read with ``FOR UPDATE SKIP LOCKED``), lock the batch's customers, check
   consent, the suppression list, the address, quiet hours and the company-wide contact
   budget, and hand the allowed rows to the channel adapter. Atomic adapters (staff tasks,
   direct mail) send inside the claim transaction; the others send after it commits and are
   marked ``sent``/``failed`` per small chunk, so a crash leaves at most a chunk ``sending``.
4. **Reconcile** — rows left ``sending`` by a crash: channels whose receiver deduplicates on
   the idempotency key (``delivery-<id>``) are sent again with the same key; e-mail becomes
   ``unconfirmed`` (a blind re-send could reach the person twice).

Consent rule: e-mail, SMS, LINE, push and direct mail need a granted ``Consent`` for their
channel when the campaign is a marketing contact. Staff tasks (a salesperson's visit or call
is arranged by people who see the profile) and the generic webhook (an integration that
applies its own rules) need none; the suppression list and the contact budget still apply.
Quiet hours apply to every channel that reaches the person at once: not to staff tasks or
direct mail, which only create work for people.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Mod
from django.utils import timezone

from customers.models import Channel as ConsentChannel
from customers.models import Consent, Customer
from customers.privacy import erased_digests
from journeys.models import (
    Campaign,
    CampaignStep,
    ContactPolicy,
    Delivery,
    Enrollment,
    Suppression,
    Variant,
)

logger = logging.getLogger(__name__)

BUCKET_CUSTOMER_FACTOR = 2654435761
BUCKET_CAMPAIGN_FACTOR = 40503

CONSENT_CHANNELS = {
    Campaign.Channel.EMAIL: ConsentChannel.EMAIL,
    Campaign.Channel.SMS: ConsentChannel.SMS,
    Campaign.Channel.LINE: ConsentChannel.LINE,
    Campaign.Channel.PUSH: ConsentChannel.PUSH,
    Campaign.Channel.DIRECT_MAIL: ConsentChannel.DIRECT_MAIL,
}
"""Campaign channel → the consent a marketing message on it needs (others need none)."""

ADDRESSLESS_CHANNELS = frozenset({Campaign.Channel.STAFF_TASK})
"""Channels that reach the person through staff, so an empty address is fine."""

NO_QUIET_HOURS_CHANNELS = frozenset({Campaign.Channel.STAFF_TASK, Campaign.Channel.DIRECT_MAIL})
"""Channels that never reach the person at the moment of sending."""

SEND_CHUNK = 250
"""Messages handed to an adapter at once, and marked sent or failed together (half a
claimed batch: the per-chunk statements, events and follow-up task are amortised over 250
messages, while a crash still leaves at most this many e-mails ``unconfirmed``)."""

MAX_ATTEMPTS = 5
"""A retryable failure is tried again (with backoff) until this many attempts, then failed."""

RETRY_BACKOFF = dt.timedelta(minutes=1)
"""The first retry waits this long; every further one twice as long as the previous."""

ADVANCE_CHUNK = 5_000
"""Enrolments advanced per statement pair (one INSERT … SELECT, one UPDATE)."""

# Reasons written to ``Delivery.reason`` (stable codes; the UI translates them).
REASON_NO_CONSENT = "no_consent"
REASON_SUPPRESSED = "suppressed"
REASON_NO_ADDRESS = "no_address"
REASON_QUIET_HOURS = "quiet_hours"
REASON_BUDGET = "contact_budget"
REASON_NO_CONTENT = "no_content"
REASON_RENDER = "render_error"
EXIT_CAMPAIGN_COMPLETED = "campaign completed"
EXIT_MERGED = "profile merged"


# --------------------------------------------------------------------------------------------
# Buckets, holdout and variants
# --------------------------------------------------------------------------------------------


def bucket_of(campaign_id: int, customer_id: int) -> int:
    """The person's bucket 0–99 in this campaign: holdout below ``holdout_percent``."""
    return (customer_id * BUCKET_CUSTOMER_FACTOR + campaign_id * BUCKET_CAMPAIGN_FACTOR) % 100


def bucket_expression(campaign_id: int, customer_field: str = "pk"):
    """:func:`bucket_of` as an ORM expression over ``customer_field``, for set-based SQL.

    Reduced modulo 100 before multiplying (``(a·b + c·d) mod 100`` equals
    ``((a mod 100)(b mod 100) + (c mod 100)(d mod 100)) mod 100``), so it never overflows a
    64-bit integer and SQLite never falls back to floating point, whatever the ids.
    """
    campaign_term = (campaign_id % 100) * (BUCKET_CAMPAIGN_FACTOR % 100)
    return Mod(
        Mod(F(customer_field), 100) * (BUCKET_CUSTOMER_FACTOR % 100) + campaign_term,
        100,
        output_field=IntegerField(),
    )


def variant_ranges(
    variants: Sequence[tuple[int, int]], holdout_percent: int
) -> list[tuple[int, int]]:
    """``(variant_id, first bucket past its share)`` for weighted ``(id, weight)`` pairs.

    The non-holdout buckets (``holdout_percent``…99) are shared out in order of the given
    variants, in proportion to their weights; zero-weight variants get nothing.
    """
    live = [(vid, weight) for vid, weight in variants if weight > 0]
    if not live:
        return []
    total = sum(weight for _vid, weight in live)
    span = 100 - holdout_percent
    ranges, cumulative = [], 0
    for vid, weight in live:
        cumulative += weight
        ranges.append((vid, holdout_percent + (span * cumulative + total - 1) // total))
    return ranges


def variant_for_bucket(
    variants: Sequence[tuple[int, int]], bucket: int, holdout_percent: int
) -> int | None:
    """The variant id a non-holdout person in ``bucket`` gets (deterministic)."""
    ranges = variant_ranges(variants, holdout_percent)
    for vid, upper in ranges:
        if bucket < upper:
            return vid
    return ranges[-1][0] if ranges else None


def _step_variants(step: CampaignStep) -> list[tuple[int, int]]:
    return list(step.variants.order_by("label", "pk").values_list("pk", "weight"))


# --------------------------------------------------------------------------------------------
# Enrolment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentSeed:
    """One person to enrol from a trigger: which occurrence, since when, with what context."""

    customer_id: int
    occurrence: str
    entered_at: dt.datetime
    trigger_received_at: dt.datetime | None = None
    context: dict = field(default_factory=dict)


def _first_step(campaign: Campaign) -> CampaignStep | None:
    return campaign.steps.order_by("position").first()


def _audience(campaign: Campaign, customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """``customers`` narrowed to unmerged profiles matching the campaign's entry conditions."""
    from customers.segments import segment_queryset

    customers = customers.filter(merged_into__isnull=True)
    if campaign.audience_rules:
        customers = customers.filter(pk__in=segment_queryset(campaign.audience_rules).values("pk"))
    return customers


def _json_placeholder() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def enroll_audience(
    *,
    campaign: Campaign,
    customers: QuerySet[Customer],
    occurrence: str,
    entered_at: dt.datetime,
    trigger_received_at: dt.datetime | None = None,
) -> int:
    """Enrol everyone in ``customers`` who may enter, in ONE ``INSERT … SELECT``; idempotent.

    Returns how many enrolments were created (people already enrolled for this occurrence
    are skipped by the unique constraint).
    """
    step = _first_step(campaign)
    if step is None:
        logger.warning("campaign #%s has no steps: nobody enrolled", campaign.pk)
        return 0
    source = (
        _audience(campaign, customers)
        .order_by()
        .values(member_id=F("pk"), member_bucket=bucket_expression(campaign.pk))
    )
    select_sql, select_params = source.query.get_compiler(connection=connection).as_sql()
    table = connection.ops.quote_name(Enrollment._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    now = timezone.now()
    sql = (
        f"INSERT INTO {table} (campaign_id, customer_id, occurrence, entered_at, "
        "trigger_received_at, context, is_holdout, bucket, status, next_position, "
        "next_due_at, exit_reason, updated_at) "
        f"SELECT %s, src.member_id, %s, %s, %s, {_json_placeholder()}, "
        "CASE WHEN src.member_bucket < %s THEN %s ELSE %s END, src.member_bucket, %s, %s, %s, "
        f"'', %s FROM ({select_sql}) src WHERE 1 = 1 "
        "ON CONFLICT (campaign_id, customer_id, occurrence) DO NOTHING"
    )
    params = [
        campaign.pk,
        occurrence[:40],
        adapt(entered_at),
        adapt(trigger_received_at) if trigger_received_at else None,
        "{}",
        campaign.holdout_percent,
        True,
        False,
        Enrollment.Status.ACTIVE,
        step.position,
        adapt(entered_at + dt.timedelta(minutes=step.delay_minutes)),
        adapt(now),
        *select_params,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def enroll_customers(*, campaign: Campaign, seeds: Iterable[EnrollmentSeed]) -> int:
    """Enrol triggered people (one seed each), under the same rules as :func:`enroll_audience`.

    Seeds of merged-away profiles or people outside ``audience_rules`` are dropped; a seed
    already enrolled for its occurrence is skipped. Returns how many enrolments were created.
    """
    seeds = list(seeds)
    step = _first_step(campaign)
    if not seeds or step is None:
        return 0
    allowed = set(
        _audience(
            campaign, Customer.objects.filter(pk__in={seed.customer_id for seed in seeds})
        ).values_list("pk", flat=True)
    )
    delay = dt.timedelta(minutes=step.delay_minutes)
    rows = []
    seen: set[tuple[int, str]] = set()
    for seed in seeds:
        key = (seed.customer_id, seed.occurrence[:40])
        if seed.customer_id not in allowed or key in seen:
            continue
        seen.add(key)
        bucket = bucket_of(campaign.pk, seed.customer_id)
        rows.append(
            Enrollment(
                campaign=campaign,
                customer_id=seed.customer_id,
                occurrence=seed.occurrence[:40],
                entered_at=seed.entered_at,
                trigger_received_at=seed.trigger_received_at,
                context=seed.context or {},
                bucket=bucket,
                is_holdout=bucket < campaign.holdout_percent,
                next_position=step.position,
                next_due_at=seed.entered_at + delay,
            )
        )
    if not rows:
        return 0
    with transaction.atomic():
        before = Enrollment.objects.filter(campaign=campaign).count()
        Enrollment.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        return Enrollment.objects.filter(campaign=campaign).count() - before


# --------------------------------------------------------------------------------------------
# Advancing enrolments
# --------------------------------------------------------------------------------------------


def _due_enrollments(now: dt.datetime, campaign_ids: Iterable[int] | None) -> QuerySet:
    due = Enrollment.objects.filter(status=Enrollment.Status.ACTIVE, next_due_at__lte=now)
    if campaign_ids is not None:
        due = due.filter(campaign_id__in=list(campaign_ids))
    return due


def _exit_finished_and_left(now: dt.datetime, campaign_ids) -> int:
    """Exit enrolments of completed campaigns, of merged profiles and those whose
    ``unless`` event happened; returns how many exited."""
    exited = 0
    active = Enrollment.objects.filter(status=Enrollment.Status.ACTIVE)
    if campaign_ids is not None:
        active = active.filter(campaign_id__in=list(campaign_ids))
    gone = {"status": Enrollment.Status.EXITED, "next_position": None, "next_due_at": None}
    exited += active.filter(campaign__status=Campaign.Status.COMPLETED).update(
        exit_reason=EXIT_CAMPAIGN_COMPLETED, **gone
    )
    due = _due_enrollments(now, campaign_ids).filter(campaign__status=Campaign.Status.RUNNING)
    exited += due.filter(customer__merged_into__isnull=False).update(
        exit_reason=EXIT_MERGED, **gone
    )
    with_unless = Campaign.objects.filter(
        pk__in=due.values("campaign_id"), status=Campaign.Status.RUNNING
    ).values_list("pk", "trigger")
    for campaign_id, trigger in with_unless:
        names = [name for name in (trigger or {}).get("unless", []) if name]
        if names:
            exited += enrollments_exit_on_events(
                due.filter(campaign_id=campaign_id), event_types=names
            )
    return exited


def enrollments_exit_on_events(enrollments: QuerySet, *, event_types: Collection[str]) -> int:
    """Exit those of ``enrollments`` to whom one of ``event_types`` happened after they entered.

    The rule behind a campaign's ``unless``: the purchase that enrolled someone into the F2
    steps does not end them, a later one does. The exit reason names the first such event.
    """
    from experience.models import Event

    happened = Event.objects.filter(
        customer_id=OuterRef("customer_id"),
        event_type__name__in=list(event_types),
        occurred_at__gt=OuterRef("entered_at"),
    )
    return (
        enrollments.filter(status=Enrollment.Status.ACTIVE)
        .filter(Exists(happened))
        .update(
            status=Enrollment.Status.EXITED,
            next_position=None,
            next_due_at=None,
            exit_reason=Subquery(happened.order_by("occurred_at").values("event_type__name")[:1]),
            updated_at=timezone.now(),
        )
    )


def _insert_deliveries_sql(
    *,
    campaign: Campaign,
    step: CampaignStep,
    chunk: QuerySet,
    condition: dict,
    now: dt.datetime,
) -> tuple[str, list]:
    from customers.segments import segment_queryset

    if condition:
        chunk = chunk.filter(customer_id__in=segment_queryset(condition, now=now).values("pk"))
    ranges = variant_ranges(_step_variants(step), campaign.holdout_percent)
    whens = [When(is_holdout=True, then=Value(None))]
    whens += [When(bucket__lt=upper, then=Value(vid)) for vid, upper in ranges[:-1]]
    variant = Case(
        *whens,
        default=Value(ranges[-1][0] if ranges else None),
        output_field=BigIntegerField(),
    )
    source = chunk.order_by().values(
        e_id=F("pk"),
        e_customer=F("customer_id"),
        e_occurrence=F("occurrence"),
        e_holdout=F("is_holdout"),
        e_due=F("next_due_at"),
        e_variant=variant,
    )
    select_sql, select_params = source.query.get_compiler(connection=connection).as_sql()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"INSERT INTO {table} (campaign_id, step_id, customer_id, occurrence, enrollment_id, "
        "variant_id, status, reason, address, due_at, claim, attempts, created_at, error) "
        "SELECT %s, %s, src.e_customer, src.e_occurrence, src.e_id, src.e_variant, "
        "CASE WHEN src.e_holdout THEN %s ELSE %s END, '', '', src.e_due, '', 0, %s, '' "
        f"FROM ({select_sql}) src WHERE 1 = 1 "
        "ON CONFLICT (campaign_id, step_id, customer_id, occurrence) DO NOTHING"
    )
    params = [
        campaign.pk,
        step.pk,
        Delivery.Status.HOLDOUT,
        Delivery.Status.PENDING,
        connection.ops.adapt_datetimefield_value(now),
        *select_params,
    ]
    return sql, params


def _advance_group(
    *, campaign: Campaign, position: int, lo: int, hi: int, now: dt.datetime, limit: int
) -> int:
    """Create the deliveries of step ``position`` for the due enrolments with pk in
    [lo, hi] and move them on; returns how many enrolments moved."""
    steps = list(campaign.steps.order_by("position"))
    step = next((s for s in steps if s.position == position), None)
    later = [s for s in steps if s.position > position]
    group = Enrollment.objects.filter(
        campaign_id=campaign.pk,
        status=Enrollment.Status.ACTIVE,
        next_position=position,
        next_due_at__lte=now,
    )
    moved = 0
    start = lo
    while start <= hi and moved < limit:
        ids = list(
            group.filter(pk__gte=start, pk__lte=hi)
            .order_by("pk")
            .values_list("pk", flat=True)[min(ADVANCE_CHUNK, limit - moved) - 1 :][:1]
        )
        end = ids[0] if ids else hi
        chunk = group.filter(pk__gte=start, pk__lte=end)
        with transaction.atomic():
            if step is not None:
                sql, params = _insert_deliveries_sql(
                    campaign=campaign, step=step, chunk=chunk, condition=step.condition, now=now
                )
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
            if later:
                nxt = later[0]
                moved += chunk.update(
                    next_position=nxt.position,
                    next_due_at=F("entered_at") + dt.timedelta(minutes=nxt.delay_minutes),
                    updated_at=now,
                )
            else:
                moved += chunk.update(
                    status=Enrollment.Status.COMPLETED,
                    next_position=None,
                    next_due_at=None,
                    updated_at=now,
                )
        start = end + 1
    return moved


def enrollments_advance(
    *,
    now: dt.datetime | None = None,
    campaign_ids: Iterable[int] | None = None,
    limit: int = 200_000,
) -> int:
    """Walk due enrolments of running campaigns one step; returns how many moved or exited.

    Paused (and scheduled) campaigns' enrolments wait; completed campaigns' enrolments exit.
    A step whose ``condition`` the person no longer matches is skipped. Steps that are due at
    once (delays in the past) are walked in further passes, up to ``limit`` enrolments.
    Safe to run twice at the same time: the delivery insert ignores existing rows and each
    enrolment update only matches rows still at the step it read.
    """
    now = now or timezone.now()
    campaign_ids = list(campaign_ids) if campaign_ids is not None else None
    total = _exit_finished_and_left(now, campaign_ids)
    while total < limit:
        groups = list(
            _due_enrollments(now, campaign_ids)
            .filter(campaign__status=Campaign.Status.RUNNING, next_position__isnull=False)
            .values("campaign_id", "next_position")
            .annotate(n=Count("pk"), lo=Min("pk"), hi=Max("pk"))
            .order_by("campaign_id", "next_position")
        )
        if not groups:
            break
        campaigns = Campaign.objects.in_bulk({g["campaign_id"] for g in groups})
        moved = 0
        for group in groups:
            moved += _advance_group(
                campaign=campaigns[group["campaign_id"]],
                position=group["next_position"],
                lo=group["lo"],
                hi=group["hi"],
                now=now,
                limit=limit - total - moved,
            )
            if total + moved >= limit:
                break
        total += moved
        if not moved:
            break
    return total


# --------------------------------------------------------------------------------------------
# Contact budget and quiet hours
# --------------------------------------------------------------------------------------------


def _counted_contacts(
    customer_ids: Iterable[int], *, now: dt.datetime, policy: ContactPolicy, exclude_claim=""
) -> dict[int, list[dt.datetime]]:
    """When each person's counted marketing contacts happened (oldest first).

    Counted: deliveries of marketing campaigns on any channel (staff-task visits included)
    sent within the policy window, and those being sent right now (at their claim time).
    """
    since = now - dt.timedelta(days=policy.window_days)
    contacts: dict[int, list[dt.datetime]] = defaultdict(list)
    ids = list(customer_ids)
    for start in range(0, len(ids), 5_000):
        rows = Delivery.objects.filter(
            customer_id__in=ids[start : start + 5_000], campaign__is_marketing=True
        ).filter(Q(sent_at__gt=since) | Q(status=Delivery.Status.SENDING))
        if exclude_claim:
            rows = rows.exclude(claim=exclude_claim)
        for customer_id, sent_at, claimed_at in rows.values_list(
            "customer_id", "sent_at", "claimed_at"
        ):
            contacts[customer_id].append(sent_at or claimed_at or now)
    for times in contacts.values():
        times.sort()
    return contacts


def contact_budget_used(customer_ids: Iterable[int], *, now: dt.datetime) -> dict[int, int]:
    """Marketing contacts each person has had in the policy window (0 for nobody counted)."""
    ids = list(customer_ids)
    contacts = _counted_contacts(ids, now=now, policy=ContactPolicy.current())
    return {pk: len(contacts.get(pk, ())) for pk in ids}


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def quiet_hours_end(now: dt.datetime, zone: dt.tzinfo, policy: ContactPolicy) -> dt.datetime | None:
    """When quiet hours end for a person in ``zone``, or None when it is not quiet there."""
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return None
    local = now.astimezone(zone)
    moment = local.time()
    if start > end:  # across midnight, e.g. 21:00–09:00
        if moment >= start:
            day = local.date() + dt.timedelta(days=1)
        elif moment < end:
            day = local.date()
        else:
            return None
    elif start <= moment < end:
        day = local.date()
    else:
        return None
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


@dataclass
class DispatchStats:
    """What a dispatch run did, per outcome."""

    batches: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0
    capped: int = 0
    deferred: int = 0
    timed_out: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Claimed:
    pk: int
    campaign_id: int
    step_id: int
    customer_id: int
    variant_id: int | None
    enrollment_id: int | None
    created_at: dt.datetime
    due_at: dt.datetime | None
    attempts: int
    channel: str = ""
    priority: int = 0
    is_marketing: bool = True
    quiet: bool = True
    address: str = ""


def _running_campaigns(campaign_ids) -> list[tuple[int, int]]:
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING)
    if campaign_ids is not None:
        running = running.filter(pk__in=list(campaign_ids))
    return list(running.order_by("-priority", "pk").values_list("pk", "priority"))


def _candidate_ids(now: dt.datetime, campaign_ids, batch_size: int) -> list[int]:
    """Due pending deliveries, higher-priority campaigns first, then by due time.

    Read priority level by priority level, so the (status, due_at) index serves each read;
    on PostgreSQL the rows are locked with SKIP LOCKED, so parallel workers take others.
    """
    by_priority: dict[int, list[int]] = defaultdict(list)
    for pk, priority in _running_campaigns(campaign_ids):
        by_priority[priority].append(pk)
    ids: list[int] = []
    for priority in sorted(by_priority, reverse=True):
        wanted = batch_size - len(ids)
        if wanted <= 0:
            break
        rows = Delivery.objects.filter(
            status=Delivery.Status.PENDING,
            due_at__lte=now,
            campaign_id__in=by_priority[priority],
        ).order_by("due_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        ids += list(rows.values_list("pk", flat=True)[:wanted])
    return ids


def _lock_customers(customer_ids: set[int]) -> None:
    """Serialise budget decisions per person across workers (PostgreSQL row locks;
    SQLite's write transactions are serial already)."""
    if connection.features.has_select_for_update and customer_ids:
        list(
            Customer.objects.filter(pk__in=customer_ids)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )


def _normalise(channel: str, value: str) -> str:
    from journeys.services import normalise_address

    return normalise_address(channel, value)


def _get_adapter(channel: str):
    from journeys import channels

    return channels.get_adapter(channel)


def _decide(
    rows: list[_Claimed], *, now: dt.datetime, token: str, policy: ContactPolicy
) -> tuple[list[_Claimed], dict[str, list[int]], list[tuple[int, dt.datetime, str]], list[int]]:
    """Split a claimed batch into (allowed, suppressed by reason, deferred, capped)."""
    customer_ids = {row.customer_id for row in rows}
    addresses: dict[str, dict[int, str]] = {}
    for channel in {row.channel for row in rows}:
        ids = [row.customer_id for row in rows if row.channel == channel]
        addresses[channel] = _get_adapter(channel).addresses(ids) or {}
    consent_needed = {
        CONSENT_CHANNELS[row.channel]
        for row in rows
        if row.is_marketing and row.channel in CONSENT_CHANNELS
    }
    granted = set(
        Consent.objects.filter(
            customer_id__in=customer_ids,
            channel__in=consent_needed,
            status=Consent.Status.GRANTED,
        ).values_list("customer_id", "channel")
        if consent_needed
        else ()
    )
    normalised = {
        (row.channel, row.customer_id): _normalise(
            row.channel, addresses[row.channel].get(row.customer_id, "")
        )
        for row in rows
    }
    values = {value for value in normalised.values() if value}
    blocked = set(
        Suppression.objects.filter(value__in=values).values_list("channel", "value")
        if values
        else ()
    )
    # An erased person's identifiers survive only as keyed hashes; an address that comes
    # back (a re-import, a new sign-up) is theirs and stays suppressed.
    erased: set[tuple[str, str]] = set()
    for channel, found in addresses.items():
        kind = _get_adapter(channel).identity_kind
        raws = {raw for raw in found.values() if raw}
        if kind and raws:
            erased.update((channel, raw) for raw in erased_digests(kind, raws))
    zones = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "time_zone"))
    contacts = _counted_contacts(
        customer_ids if any(row.is_marketing for row in rows) else (),
        now=now,
        policy=policy,
        exclude_claim=token,
    )
    window = dt.timedelta(days=policy.window_days)
    max_defer = dt.timedelta(hours=policy.max_defer_hours)

    allowed: list[_Claimed] = []
    suppressed: dict[str, list[int]] = defaultdict(list)
    deferred: list[tuple[int, dt.datetime, str]] = []
    capped: list[int] = []
    rows = sorted(rows, key=lambda r: (-r.priority, r.due_at or now, r.pk))
    for row in rows:
        needs = CONSENT_CHANNELS.get(row.channel) if row.is_marketing else None
        if needs and (row.customer_id, needs) not in granted:
            suppressed[REASON_NO_CONSENT].append(row.pk)
            continue
        raw = addresses[row.channel].get(row.customer_id, "")
        address = normalised[(row.channel, row.customer_id)]
        if not raw and row.channel not in ADDRESSLESS_CHANNELS:
            suppressed[REASON_NO_ADDRESS].append(row.pk)
            continue
        if address and ((row.channel, address) in blocked or ("", address) in blocked):
            suppressed[REASON_SUPPRESSED].append(row.pk)
            continue
        if (row.channel, raw) in erased:
            suppressed[REASON_SUPPRESSED].append(row.pk)
            continue
        if row.quiet and row.channel not in NO_QUIET_HOURS_CHANNELS:
            until = quiet_hours_end(now, _zone(zones.get(row.customer_id, "")), policy)
            if until is not None:
                deferred.append((row.pk, until, REASON_QUIET_HOURS))
                continue
        if row.is_marketing:
            times = contacts.setdefault(row.customer_id, [])
            if len(times) >= policy.max_contacts:
                # The slot frees when the contact that put it over leaves the window; never
                # "now", so this run does not claim the row again.
                free_at = max(
                    times[len(times) - policy.max_contacts] + window, now + dt.timedelta(seconds=1)
                )
                if free_at > row.created_at + max_defer:
                    capped.append(row.pk)
                else:
                    deferred.append((row.pk, free_at, REASON_BUDGET))
                continue
            times.append(now)
            times.sort()
        row.address = raw
        allowed.append(row)
    return allowed, suppressed, deferred, capped


def _apply_decisions(
    *,
    token: str,
    allowed: list[_Claimed],
    suppressed: dict[str, list[int]],
    deferred: list[tuple[int, dt.datetime, str]],
    capped: list[int],
) -> None:
    claimed = Delivery.objects.filter(claim=token, status=Delivery.Status.SENDING)
    for reason, ids in suppressed.items():
        claimed.filter(pk__in=ids).update(status=Delivery.Status.SUPPRESSED, reason=reason)
    if capped:
        claimed.filter(pk__in=capped).update(status=Delivery.Status.CAPPED, reason=REASON_BUDGET)
    if deferred:
        Delivery.objects.bulk_update(
            [
                Delivery(
                    pk=pk,
                    status=Delivery.Status.PENDING,
                    due_at=until,
                    reason=reason,
                    claim="",
                    claimed_at=None,
                )
                for pk, until, reason in deferred
            ],
            ["status", "due_at", "reason", "claim", "claimed_at"],
            batch_size=500,
        )
    if allowed:
        _write_addresses([(row.pk, row.address[:255]) for row in allowed])


def _write_addresses(pairs: list[tuple[int, str]]) -> None:
    """Each row's own address in one statement per 400 rows (``bulk_update``'s CASE per
    row costs more to build than to run): ``WITH v(id, address) AS (VALUES …) UPDATE``."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    for start in range(0, len(pairs), 400):
        chunk = pairs[start : start + 400]
        values = ", ".join(["(%s, %s)"] * len(chunk))
        cast = "::bigint" if connection.vendor == "postgresql" else ""
        sql = (
            f"WITH v(id, address) AS (VALUES {values}) "
            f"UPDATE {table} SET address = (SELECT v.address FROM v WHERE v.id{cast} = {table}.id) "
            f"WHERE id IN (SELECT v.id{cast} FROM v)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for pair in chunk for value in pair])


def _render_and_send(
    adapter, chunk: list[_Claimed], *, customers: dict, variants: dict
) -> tuple[list, list]:
    """Render a chunk through journeys.content and hand it to the adapter.

    Returns (rendering failures, adapter results).
    """
    from journeys import channels, content

    # Rendering reads only the delivery's id (tracking links, unsubscribe URL; the context
    # is passed alongside): a plain stand-in spares a query and a model instance per message.
    deliveries = {
        row.pk: SimpleNamespace(pk=row.pk, enrollment_id=row.enrollment_id) for row in chunk
    }
    contexts = dict(
        Enrollment.objects.filter(
            pk__in={row.enrollment_id for row in chunk if row.enrollment_id}
        ).values_list("pk", "context")
    )
    messages, broken = [], []
    for row in chunk:
        variant = variants.get(row.variant_id)
        if variant is None:
            broken.append(channels.SendResult(row.pk, False, error=REASON_NO_CONTENT))
            continue
        try:
            rendered = content.render_message(
                variant=variant,
                customer=customers[row.customer_id],
                context=contexts.get(row.enrollment_id) or {},
                delivery=deliveries[row.pk],
            )
        except Exception as exc:  # a template error must not stop the batch
            broken.append(channels.SendResult(row.pk, False, error=f"{REASON_RENDER}: {exc}"))
            continue
        messages.append(
            channels.OutgoingMessage(
                delivery_id=row.pk,
                campaign_id=row.campaign_id,
                step_id=row.step_id,
                customer_id=row.customer_id,
                address=row.address,
                language=rendered.language,
                subject=rendered.subject,
                body_text=rendered.body_text,
                body_html=rendered.body_html,
                headers={},
            )
        )
    results = list(adapter.send(messages)) if messages else []
    return broken, results


def _record_results(
    results: list,
    *,
    token: str,
    rows: dict[int, _Claimed],
    now: dt.datetime,
    stats: DispatchStats,
) -> None:
    """Mark a sent chunk: ``sent`` + ``message_sent`` events, or failed / back to pending."""
    from journeys.feedback import deliveries_sent_record

    ok = [r.delivery_id for r in results if r.ok]
    mine = Delivery.objects.filter(claim=token, status=Delivery.Status.SENDING)
    with transaction.atomic():
        if ok:
            sent = mine.filter(pk__in=ok).update(
                status=Delivery.Status.SENT, sent_at=now, reason="", attempts=F("attempts") + 1
            )
            stats.sent += sent
            deliveries_sent_record(delivery_ids=ok)
        retry, failed = [], []
        for result in results:
            if result.ok:
                continue
            row = rows[result.delivery_id]
            if result.retryable and row.attempts + 1 < MAX_ATTEMPTS:
                retry.append(
                    Delivery(
                        pk=row.pk,
                        status=Delivery.Status.PENDING,
                        due_at=now + RETRY_BACKOFF * (2**row.attempts),
                        claim="",
                        claimed_at=None,
                        attempts=row.attempts + 1,
                        error=str(result.error)[:2000],
                    )
                )
            else:
                failed.append(
                    Delivery(
                        pk=row.pk,
                        status=Delivery.Status.FAILED,
                        attempts=row.attempts + 1,
                        error=str(result.error)[:2000],
                        reason=str(result.error)[:40] if not result.retryable else "",
                    )
                )
        # Only rows still claimed by this run are touched (reconcile may have taken them).
        still_mine = set(
            mine.filter(pk__in=[d.pk for d in retry + failed]).values_list("pk", flat=True)
        )
        retry = [d for d in retry if d.pk in still_mine]
        failed = [d for d in failed if d.pk in still_mine]
        if retry:
            Delivery.objects.bulk_update(
                retry, ["status", "due_at", "claim", "claimed_at", "attempts", "error"]
            )
        if failed:
            Delivery.objects.bulk_update(failed, ["status", "attempts", "error", "reason"])
        stats.retried += len(retry)
        stats.failed += len(failed)


def _claim_batch(
    *, now: dt.datetime, campaign_ids, batch_size: int, stats: DispatchStats, clock
) -> tuple[str, int, list[_Claimed]]:
    """Claim one batch and decide it; atomic channels are sent inside the same transaction.

    Returns the claim token, how many rows were claimed and the allowed rows of non-atomic
    channels, still ``sending``.
    """
    policy = ContactPolicy.current()
    token = uuid.uuid4().hex
    with transaction.atomic():
        ids = _candidate_ids(now, campaign_ids, batch_size)
        if not ids:
            return token, 0, []
        claimed_at = timezone.now()
        count = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.SENDING, claim=token, claimed_at=claimed_at
        )
        if not count:
            return token, 0, []
        stats.batches += 1
        stats.claimed += count
        rows = [
            _Claimed(*values)
            for values in Delivery.objects.filter(pk__in=ids, claim=token).values_list(
                "pk",
                "campaign_id",
                "step_id",
                "customer_id",
                "variant_id",
                "enrollment_id",
                "created_at",
                "due_at",
                "attempts",
            )
        ]
        campaigns = {
            pk: (channel, priority, marketing, quiet)
            for pk, channel, priority, marketing, quiet in Campaign.objects.filter(
                pk__in={row.campaign_id for row in rows}
            ).values_list("pk", "channel", "priority", "is_marketing", "respect_quiet_hours")
        }
        for row in rows:
            row.channel, row.priority, row.is_marketing, row.quiet = campaigns[row.campaign_id]
        _lock_customers({row.customer_id for row in rows})
        allowed, suppressed, deferred, capped = _decide(rows, now=now, token=token, policy=policy)
        _apply_decisions(
            token=token, allowed=allowed, suppressed=suppressed, deferred=deferred, capped=capped
        )
        stats.suppressed += sum(len(ids) for ids in suppressed.values())
        stats.capped += len(capped)
        stats.deferred += len(deferred)
        later: list[_Claimed] = []
        atomic_rows: list[_Claimed] = []
        for row in allowed:
            (atomic_rows if _get_adapter(row.channel).atomic else later).append(row)
        if atomic_rows:
            _send_rows(atomic_rows, token=token, stats=stats, clock=clock)
    return token, count, later


def _send_rows(rows: list[_Claimed], *, token: str, stats: DispatchStats, clock) -> None:
    """Render, send and mark claimed rows chunk by chunk, per channel."""
    customers = Customer.objects.in_bulk({row.customer_id for row in rows})
    variants = Variant.objects.select_related("step__campaign").in_bulk(
        {row.variant_id for row in rows if row.variant_id}
    )
    by_channel: dict[str, list[_Claimed]] = defaultdict(list)
    for row in rows:
        by_channel[row.channel].append(row)
    for channel, channel_rows in by_channel.items():
        adapter = _get_adapter(channel)
        for start in range(0, len(channel_rows), SEND_CHUNK):
            chunk = channel_rows[start : start + SEND_CHUNK]
            try:
                # Atomic adapters write inside the claim transaction: a savepoint keeps a
                # failing chunk from breaking the rest of the batch.
                with transaction.atomic() if adapter.atomic else contextlib.nullcontext():
                    broken, results = _render_and_send(
                        adapter, chunk, customers=customers, variants=variants
                    )
            except Exception as exc:
                # A transport that raises fails the whole chunk: retried later where a
                # re-send is harmless (an atomic write rolled back, or an idempotency key).
                logger.exception("channel %s raised while sending", channel)
                from journeys.channels import SendResult

                retryable = adapter.atomic or adapter.idempotent
                broken = []
                results = [
                    SendResult(row.pk, False, error=str(exc)[:200], retryable=retryable)
                    for row in chunk
                ]
            _record_results(
                [*broken, *results],
                token=token,
                rows={row.pk: row for row in chunk},
                now=clock(),
                stats=stats,
            )


def deliveries_dispatch(
    *,
    now: dt.datetime | None = None,
    campaign_ids: Iterable[int] | None = None,
    batch_size: int = 500,
    max_seconds: float | None = None,
) -> DispatchStats:
    """Send due pending deliveries of running campaigns, batch by batch, until none is due.

    ``now`` fixes the clock (tests); otherwise each batch reads the time afresh. Consent,
    suppression, quiet hours and the budget are checked per batch, so an opt-out committed
    between batches stops the rest. Stops after ``max_seconds`` (``timed_out`` set).
    """
    fixed_now = now
    campaign_ids = list(campaign_ids) if campaign_ids is not None else None
    stats = DispatchStats()
    started = time.monotonic()
    while True:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            stats.timed_out = True
            break
        clock = (lambda: fixed_now) if fixed_now else timezone.now
        token, claimed, later = _claim_batch(
            now=clock(), campaign_ids=campaign_ids, batch_size=batch_size, stats=stats, clock=clock
        )
        if not claimed:
            break
        if later:
            _send_rows(later, token=token, stats=stats, clock=clock)
    return stats


# --------------------------------------------------------------------------------------------
# Reconcile after a crash
# --------------------------------------------------------------------------------------------


def default_stuck_after() -> dt.timedelta:
    """A claim older than the q2 task timeout (plus a margin) has no live worker left."""
    return dt.timedelta(seconds=int(settings.Q_CLUSTER.get("timeout", 300)) + 60)


def deliveries_reconcile(
    *, older_than: dt.timedelta | None = None, now: dt.datetime | None = None
) -> int:
    """Settle deliveries left ``sending`` by a crashed worker; returns how many.

    Channels with an idempotent receiver go back to ``pending`` (due now) and are dispatched
    again at once: the normal checks run again (an opt-out since then wins) and the message
    carries the same idempotency key, so the receiver drops a copy it already has. E-mail
    cannot be taken back or deduplicated: it becomes ``unconfirmed``. Atomic channels are
    sent inside the claim transaction, so they are never found here.
    """
    fixed_now, now = now, now or timezone.now()
    older_than = default_stuck_after() if older_than is None else older_than
    stuck = Delivery.objects.filter(
        status=Delivery.Status.SENDING, claimed_at__lte=now - older_than
    )
    by_channel = dict(
        Campaign.objects.filter(pk__in=stuck.values("campaign_id")).values_list("pk", "channel")
    )
    resend_campaigns = []
    unconfirmed_campaigns = []
    for campaign_id, channel in by_channel.items():
        adapter = _get_adapter(channel)
        # Decided by the channel itself, even when a fake transport stands in for it.
        if getattr(adapter, "real", adapter).idempotent:
            resend_campaigns.append(campaign_id)
        else:
            unconfirmed_campaigns.append(campaign_id)
    settled = 0
    with transaction.atomic():
        if unconfirmed_campaigns:
            settled += stuck.filter(campaign_id__in=unconfirmed_campaigns).update(
                status=Delivery.Status.UNCONFIRMED,
                reason="crashed_mid_send",
            )
        if resend_campaigns:
            settled += stuck.filter(campaign_id__in=resend_campaigns).update(
                status=Delivery.Status.PENDING, due_at=now, claim="", claimed_at=None
            )
    if resend_campaigns:
        deliveries_dispatch(now=fixed_now, campaign_ids=resend_campaigns)
    if settled:
        logger.warning("reconciled %s deliveries stuck in sending", settled)
    return settled
