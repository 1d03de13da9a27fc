"""Writes of circle ③'s campaigns: create, edit, approve and move through their lifecycle.

Every function checks who is asking and raises ``PermissionDenied``; bad input raises a
``ValidationError`` whose dict names the field (``trigger.event_type``,
``steps[1].variants[0].content.ja.body``…), and nothing is half-written: each call is one
transaction. Sending itself lives in ``journeys.engine``; scheduling in
``journeys.scheduling``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from config.org.models import Department, Role
from config.org.services import audit_record
from customers.models import ImportantDate, LifeEvent, Segment
from customers.segments import SegmentRuleError, validate_rules
from experience.models import EventType, ExperienceValue
from experience.services import experience_values_from
from journeys.models import (
    SLOT_KINDS,
    Campaign,
    CampaignStep,
    ContactPolicy,
    Journey,
    Stage,
    Suppression,
    Variant,
)

CAMPAIGN_ACTIONS = ("request_approval", "approve", "reject", "pause", "resume", "complete")
EDITABLE_STATUSES = (Campaign.Status.DRAFT, Campaign.Status.PAUSED)
SEGMENT_KINDS = (*SLOT_KINDS, Campaign.Kind.SEGMENT_ENTRY)
MAX_DAYS_BEFORE = 365
MAX_CONVERSION_DAYS = 90
MAX_STEPS = 20

_UNSET: Any = object()
_SIMPLE_FIELDS = (
    "name",
    "goal",
    "channel",
    "kind",
    "cron",
    "priority",
    "is_marketing",
    "respect_quiet_hours",
    "holdout_percent",
    "conversion_window_days",
    "webhook_url",
    "task_assignee",
    "task_store",
    "starts_at",
    "ends_at",
    "preset",
)


# --- who may do what --------------------------------------------------------------------


def campaign_can_edit(user, campaign: Campaign) -> bool:
    """Editors of the owner department, or of a department it is shared with to edit."""
    return Campaign.objects.editable_by(user).filter(pk=campaign.pk).exists()


def campaign_can_approve(user, campaign: Campaign) -> bool:
    """Managers of the owner department (and the administrator) approve and stop campaigns."""
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.has_role(campaign.owner_department_id, Role.MANAGER))
    )


def _require_edit(user, campaign: Campaign) -> None:
    if not campaign_can_edit(user, campaign):
        raise PermissionDenied("You need the editor role in a department that owns this campaign.")


def _require_manager(user, campaign: Campaign) -> None:
    if not campaign_can_approve(user, campaign):
        raise PermissionDenied("Only a manager of the owner department may do this.")


# --- validation -------------------------------------------------------------------------


def _choice(errors: dict, field: str, value, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        errors[field] = [f"{value!r} is not one of: {', '.join(choices)}"]


def _int_between(errors: dict, field: str, value, low: int, high: int):
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors[field] = ["must be a whole number"]
        return value
    if not low <= number <= high:
        errors[field] = [f"must be between {low} and {high}"]
    return number


def _event_type_names(errors: dict, field: str, names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list | tuple):
        errors[field] = ["must be a list of event type names"]
        return []
    names = [str(name) for name in names]
    known = set(EventType.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = [name for name in names if name not in known]
    if unknown:
        errors[field] = [f"unknown event type: {', '.join(unknown)}"]
    return names


def _clean_trigger(kind: str, trigger, errors: dict) -> dict:
    """The trigger of a kind, normalised; every key checked against the registries."""
    if trigger in (None, ""):
        trigger = {}
    if not isinstance(trigger, dict):
        errors["trigger"] = ["must be an object"]
        return {}
    clean: dict[str, Any] = {}
    if trigger.get("unless"):
        clean["unless"] = _event_type_names(errors, "trigger.unless", trigger["unless"])
    if kind == Campaign.Kind.EVENT:
        name = trigger.get("event_type")
        if not name:
            errors["trigger.event_type"] = ["required for a campaign triggered by an event"]
        else:
            clean["event_type"] = _event_type_names(errors, "trigger.event_type", [name])[0]
        properties = trigger.get("properties") or {}
        if not isinstance(properties, dict) or any(
            isinstance(value, dict | list) for value in properties.values()
        ):
            errors["trigger.properties"] = ["must map property names to plain values"]
        elif properties:
            clean["properties"] = properties
    elif kind == Campaign.Kind.DATE:
        _choice(errors, "trigger.date_kind", trigger.get("date_kind"), ImportantDate.Kind.values)
        clean["date_kind"] = trigger.get("date_kind")
        clean["days_before"] = _int_between(
            errors, "trigger.days_before", trigger.get("days_before", 0), 0, MAX_DAYS_BEFORE
        )
    elif kind == Campaign.Kind.SITUATION:
        _choice(errors, "trigger.situation", trigger.get("situation"), LifeEvent.Kind.values)
        clean["situation"] = trigger.get("situation")
    for key in ("entered_after",):  # bookkeeping kept by the scheduler
        if key in trigger:
            clean[key] = trigger[key]
    return clean


def _clean_rules(value, field: str, errors: dict, user) -> dict:
    if not value:
        return {}
    try:
        return validate_rules(value, user=user)
    except SegmentRuleError as exc:
        errors[f"{field}.{exc.path}" if exc.path != "rules" else field] = [exc.message]
        return {}


def _validate_campaign(campaign: Campaign, *, by, errors: dict) -> None:
    """Cross-field checks of a campaign about to be saved."""
    _choice(errors, "kind", campaign.kind, Campaign.Kind.values)
    _choice(errors, "channel", campaign.channel, Campaign.Channel.values)
    campaign.name = (campaign.name or "").strip()
    if not campaign.name:
        errors["name"] = ["required"]
    elif len(campaign.name) > 200:
        errors["name"] = ["at most 200 characters"]
    campaign.priority = _int_between(errors, "priority", campaign.priority, 0, 100)
    campaign.holdout_percent = _int_between(
        errors, "holdout_percent", campaign.holdout_percent, 0, 50
    )
    campaign.conversion_window_days = _int_between(
        errors, "conversion_window_days", campaign.conversion_window_days, 1, MAX_CONVERSION_DAYS
    )
    if campaign.kind in SEGMENT_KINDS and campaign.segment_id is None:
        errors["segment"] = ["required for this kind of campaign"]
    if campaign.segment_id is not None and not (
        Segment.objects.visible_to(by).filter(pk=campaign.segment_id).exists()
    ):
        errors["segment"] = ["unknown segment"]
    campaign.cron = (campaign.cron or "").strip()
    if campaign.kind == Campaign.Kind.RECURRING:
        from journeys.scheduling import validate_cron

        try:
            validate_cron(campaign.cron)
        except ValidationError as exc:
            errors["cron"] = exc.messages
    if campaign.channel == Campaign.Channel.WEBHOOK and not campaign.webhook_url:
        errors["webhook_url"] = ["required for the webhook channel"]
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        errors["ends_at"] = ["must be after the start"]
    if (
        campaign.journey_stage_id is not None
        and not Stage.objects.filter(
            pk=campaign.journey_stage_id, journey__in=Journey.objects.visible_to(by)
        ).exists()
    ):
        errors["journey_stage"] = ["unknown journey stage"]


def _experience_values(codes, errors: dict) -> list[ExperienceValue] | None:
    if codes is _UNSET:
        return None
    try:
        return experience_values_from(codes or [])
    except ValidationError as exc:
        errors.update(exc.message_dict)
        return None


def _raise(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)


# --- campaigns --------------------------------------------------------------------------


@transaction.atomic
def campaign_create(
    *,
    by,
    owner_department: Department,
    name: str,
    channel: str,
    kind: str = Campaign.Kind.ONE_OFF,
    segment: Segment | None = None,
    audience_rules: dict | None = None,
    trigger: dict | None = None,
    journey_stage: Stage | None = None,
    experience_values: Iterable[str] = (),
    steps: list[dict] | None = None,
    **fields,
) -> Campaign:
    """Create a draft campaign owned by a department the author edits for.

    Without ``steps`` it gets one immediate step with an empty variant "A" to fill in.
    """
    if not (by.is_superuser or by.has_role(owner_department.pk, Role.EDITOR)):
        raise PermissionDenied("You need the editor role in the owner department.")
    unknown = set(fields) - set(_SIMPLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown campaign fields: {', '.join(sorted(unknown))}")
    policy = ContactPolicy.current()
    fields.setdefault("holdout_percent", policy.default_holdout_percent)
    fields.setdefault("conversion_window_days", policy.default_conversion_days)
    campaign = Campaign(
        owner_department=owner_department,
        name=name,
        channel=channel,
        kind=kind,
        segment=segment,
        journey_stage=journey_stage,
        created_by=by,
        **fields,
    )
    errors: dict[str, list[str]] = {}
    campaign.trigger = _clean_trigger(kind, trigger, errors)
    campaign.audience_rules = _clean_rules(audience_rules, "audience_rules", errors, by)
    _validate_campaign(campaign, by=by, errors=errors)
    values = _experience_values(experience_values, errors)
    _raise(errors)
    campaign.save()
    campaign.experience_values.set(values or [])
    for position, step in enumerate(steps or [{}], start=1):
        _step_write(campaign=campaign, by=by, prefix=f"steps[{position - 1}]", **_step_args(step))
    audit_record(
        actor=by,
        action="campaign.create",
        target=campaign,
        department=owner_department,
        detail={"kind": kind, "channel": channel, "preset": campaign.preset},
    )
    return campaign


def _step_args(step: dict) -> dict:
    args = {"position": step.get("position"), "variants": step.get("variants")}
    for key in ("name", "delay_minutes", "condition"):
        if key in step:
            args[key] = step[key]
    return args


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    by,
    segment: Segment | None = _UNSET,
    audience_rules: dict = _UNSET,
    trigger: dict = _UNSET,
    journey_stage: Stage | None = _UNSET,
    experience_values: Iterable[str] = _UNSET,
    **fields,
) -> Campaign:
    """Change a draft or paused campaign; a change to an approved one needs approval again."""
    campaign = _locked_editable(campaign, by)
    unknown = set(fields) - set(_SIMPLE_FIELDS)
    if unknown:
        raise TypeError(f"unknown campaign fields: {', '.join(sorted(unknown))}")
    errors: dict[str, list[str]] = {}
    for attr, value in fields.items():
        setattr(campaign, attr, value)
    if segment is not _UNSET:
        campaign.segment = segment
    if journey_stage is not _UNSET:
        campaign.journey_stage = journey_stage
    if trigger is not _UNSET or "kind" in fields:
        source = campaign.trigger if trigger is _UNSET else trigger
        campaign.trigger = _clean_trigger(campaign.kind, source, errors)
    if audience_rules is not _UNSET:
        campaign.audience_rules = _clean_rules(audience_rules, "audience_rules", errors, by)
    _validate_campaign(campaign, by=by, errors=errors)
    values = _experience_values(experience_values, errors)
    _raise(errors)
    _back_to_draft(campaign)
    campaign.save()
    if values is not None:
        campaign.experience_values.set(values)
    audit_record(
        actor=by,
        action="campaign.update",
        target=campaign,
        department=campaign.owner_department,
        detail={"fields": sorted([*fields, *(k for k in ("trigger",) if trigger is not _UNSET)])},
    )
    return campaign


def _back_to_draft(campaign: Campaign) -> None:
    """An edited campaign is a draft again: what was approved is no longer what will run."""
    campaign.status = Campaign.Status.DRAFT
    campaign.approved_by = None
    campaign.approved_at = None
    campaign.approval_requested_at = None
    campaign.next_run_at = None


def _locked_editable(campaign: Campaign, by) -> Campaign:
    _require_edit(by, campaign)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in EDITABLE_STATUSES:
        raise ValidationError(
            {"status": [f"a {campaign.get_status_display()} campaign is not edited; pause it"]}
        )
    return campaign


# --- steps and variants -----------------------------------------------------------------


@transaction.atomic
def step_save(
    *,
    campaign: Campaign,
    by,
    position: int,
    name: str = "",
    delay_minutes: int = 0,
    condition: dict | None = None,
    variants: list[dict] | None = None,
) -> CampaignStep:
    """Create or replace step ``position`` (its variants too, when given)."""
    campaign = _locked_editable(campaign, by)
    step = _step_write(
        campaign=campaign,
        by=by,
        prefix="step",
        position=position,
        name=name,
        delay_minutes=delay_minutes,
        condition=condition,
        variants=variants,
    )
    _back_to_draft(campaign)
    campaign.save()
    audit_record(
        actor=by,
        action="campaign.step_save",
        target=campaign,
        department=campaign.owner_department,
        detail={"position": step.position},
    )
    return step


def _step_write(
    *,
    campaign: Campaign,
    by,
    prefix: str,
    position: int | None,
    name: str = "",
    delay_minutes: int = 0,
    condition: dict | None = None,
    variants: list[dict] | None = None,
) -> CampaignStep:
    errors: dict[str, list[str]] = {}
    if position is None:
        position = (
            campaign.steps.order_by("-position").values_list("position", flat=True).first() or 0
        ) + 1
    position = _int_between(errors, f"{prefix}.position", position, 1, MAX_STEPS)
    delay_minutes = _int_between(
        errors, f"{prefix}.delay_minutes", delay_minutes or 0, 0, 366 * 24 * 60
    )
    name = (name or "").strip()
    if len(name) > 100:
        errors[f"{prefix}.name"] = ["at most 100 characters"]
    condition = _clean_rules(condition, f"{prefix}.condition", errors, by)
    clean_variants = _clean_variants(variants, campaign=campaign, prefix=prefix, errors=errors)
    _raise(errors)
    step, _created = CampaignStep.objects.update_or_create(
        campaign=campaign,
        position=position,
        defaults={"name": name, "delay_minutes": delay_minutes, "condition": condition},
    )
    if clean_variants is not None:
        step.variants.exclude(label__in=[v["label"] for v in clean_variants]).delete()
        for variant in clean_variants:
            Variant.objects.update_or_create(
                step=step,
                label=variant["label"],
                defaults={"weight": variant["weight"], "content": variant["content"]},
            )
    elif not step.variants.exists():
        Variant.objects.create(step=step, label="A")
    return step


_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def _clean_variants(variants, *, campaign: Campaign, prefix: str, errors: dict):
    if variants is None:
        return None
    if not isinstance(variants, list) or not variants:
        errors[f"{prefix}.variants"] = ["at least one variant is required"]
        return None
    from journeys.content import validate_content

    clean, seen = [], set()
    for index, variant in enumerate(variants):
        path = f"{prefix}.variants[{index}]"
        label = str(variant.get("label") or "A").strip()
        if not _LABEL.match(label):
            errors[f"{path}.label"] = ["letters, digits, - or _, at most 20"]
        elif label in seen:
            errors[f"{path}.label"] = [f"variant {label} appears twice"]
        seen.add(label)
        weight = _int_between(errors, f"{path}.weight", variant.get("weight", 1), 1, 100)
        content = variant.get("content") or {}
        try:
            validate_content(content, channel=campaign.channel)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors[f"{path}.{field}"] = messages
        clean.append({"label": label, "weight": weight, "content": content})
    return clean


@transaction.atomic
def step_delete(*, step: CampaignStep, by) -> None:
    """Remove a step (not the last one); later steps keep their positions."""
    campaign = _locked_editable(step.campaign, by)
    if campaign.steps.count() <= 1:
        raise ValidationError({"step": ["a campaign keeps at least one step"]})
    position = step.position
    step.delete()
    _back_to_draft(campaign)
    campaign.save()
    audit_record(
        actor=by,
        action="campaign.step_delete",
        target=campaign,
        department=campaign.owner_department,
        detail={"position": position},
    )


# --- lifecycle --------------------------------------------------------------------------


def _check_ready(campaign: Campaign) -> None:
    """What must hold before a campaign can be approved: audience and filled-in content."""
    from journeys.content import validate_content

    errors: dict[str, list[str]] = {}
    if campaign.kind in SEGMENT_KINDS and campaign.segment_id is None:
        errors["segment"] = ["required for this kind of campaign"]
    steps = list(campaign.steps.prefetch_related("variants"))
    if not steps:
        errors["steps"] = ["add at least one step"]
    for index, step in enumerate(steps):
        variants = list(step.variants.all())
        if not variants:
            errors[f"steps[{index}].variants"] = ["at least one variant is required"]
        for v_index, variant in enumerate(variants):
            path = f"steps[{index}].variants[{v_index}]"
            if not variant.content:
                errors[f"{path}.content"] = ["write the message in at least one language"]
                continue
            try:
                validate_content(variant.content, channel=campaign.channel)
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    errors[f"{path}.{field}"] = messages
    _raise(errors)


def _locked_in(campaign: Campaign, statuses, message: str, *, also=None) -> Campaign:
    """The campaign's row, locked, if it is in one of ``statuses`` (and ``also`` holds)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in statuses or (also is not None and not also(campaign)):
        raise ValidationError({"status": [message]})
    return campaign


def _audit(campaign: Campaign, by, action: str, **detail) -> None:
    audit_record(
        actor=by,
        action=f"campaign.{action}",
        target=campaign,
        department=campaign.owner_department,
        detail=detail or None,
    )


@transaction.atomic
def campaign_request_approval(*, campaign: Campaign, by) -> Campaign:
    """An editor asks the owner department's managers to approve a complete draft."""
    campaign = _locked_editable(campaign, by)
    if campaign.status != Campaign.Status.DRAFT:
        raise ValidationError({"status": ["only a draft is sent for approval"]})
    _check_ready(campaign)
    campaign.approval_requested_at = timezone.now()
    campaign.save(update_fields=["approval_requested_at", "updated_at"])
    _audit(campaign, by, "request_approval")
    return campaign


@transaction.atomic
def campaign_approve(*, campaign: Campaign, by) -> Campaign:
    """A manager approves a draft: it is scheduled (sends) or starts running (triggers)."""
    _require_manager(by, campaign)
    campaign = _locked_in(campaign, (Campaign.Status.DRAFT,), "only a draft is approved")
    _check_ready(campaign)
    now = timezone.now()
    campaign.approved_by, campaign.approved_at = by, now
    _start(campaign, now=now)
    campaign.save()
    _audit(campaign, by, "approve", status=campaign.status)
    _tick_on_commit()
    return campaign


def _start(campaign: Campaign, *, now) -> None:
    """Status and next run of an approved campaign that is (re)started at ``now``."""
    if campaign.kind in SLOT_KINDS:
        from journeys.scheduling import next_run_after

        campaign.next_run_at = next_run_after(campaign, now)
        campaign.status = (
            Campaign.Status.SCHEDULED if campaign.next_run_at else Campaign.Status.RUNNING
        )
    elif campaign.starts_at and campaign.starts_at > now:
        campaign.status = Campaign.Status.SCHEDULED
    else:
        campaign.status = Campaign.Status.RUNNING


def _tick_on_commit() -> None:
    """Run the scheduler soon after a change, rather than at the next minute."""
    from customers.tasks import queue_task

    queue_task("journeys.tasks.campaigns_tick")


@transaction.atomic
def campaign_reject(*, campaign: Campaign, by, note: str = "") -> Campaign:
    """A manager sends a draft back to its authors, with a note."""
    _require_manager(by, campaign)
    campaign = _locked_in(
        campaign,
        (Campaign.Status.DRAFT,),
        "only a draft waiting for approval is rejected",
        also=lambda locked: locked.approval_requested_at is not None,
    )
    campaign.approval_requested_at = None
    campaign.save(update_fields=["approval_requested_at", "updated_at"])
    _audit(campaign, by, "reject", note=(note or "")[:500])
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, by) -> Campaign:
    """Stop sending: nothing new goes out; enrolments wait where they are."""
    _require_edit(by, campaign)
    campaign = _locked_in(
        campaign,
        (Campaign.Status.SCHEDULED, Campaign.Status.RUNNING),
        "only a scheduled or running campaign is paused",
    )
    campaign.status = Campaign.Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, by, "pause")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, by) -> Campaign:
    """Send again after a pause; an edited campaign needs approval instead."""
    _require_manager(by, campaign)
    campaign = _locked_in(
        campaign,
        (Campaign.Status.PAUSED,),
        "only a paused, approved campaign is resumed",
        also=lambda locked: locked.approved_at is not None,
    )
    now = timezone.now()
    if campaign.kind in SLOT_KINDS and campaign.runs.exists():
        from journeys.scheduling import next_run_after

        campaign.next_run_at = next_run_after(campaign, now)
        campaign.status = Campaign.Status.RUNNING
    else:
        _start(campaign, now=now)
    campaign.save()
    _audit(campaign, by, "resume", status=campaign.status)
    _tick_on_commit()
    return campaign


@transaction.atomic
def campaign_complete(*, campaign: Campaign, by) -> Campaign:
    """End a campaign for good: no new enrolments, nothing more is sent."""
    _require_manager(by, campaign)
    campaign = _locked_in(
        campaign,
        [status for status in Campaign.Status if status != Campaign.Status.COMPLETED],
        "already completed",
    )
    campaign.status = Campaign.Status.COMPLETED
    campaign.next_run_at = None
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    _audit(campaign, by, "complete")
    return campaign


def campaign_transition(*, campaign: Campaign, action: str, by, note: str = "") -> Campaign:
    """One entry point for the API: ``action`` is one of ``CAMPAIGN_ACTIONS``."""
    if action not in CAMPAIGN_ACTIONS:
        raise ValidationError({"action": [f"expected one of: {', '.join(CAMPAIGN_ACTIONS)}"]})
    if action == "reject":
        return campaign_reject(campaign=campaign, by=by, note=note)
    handler = {
        "request_approval": campaign_request_approval,
        "approve": campaign_approve,
        "pause": campaign_pause,
        "resume": campaign_resume,
        "complete": campaign_complete,
    }[action]
    return handler(campaign=campaign, by=by)


# --- suppression list and contact policy -------------------------------------------------


def normalise_address(channel: str, value: str) -> str:
    """The form addresses are compared in: lower-case email, digits-only phone numbers."""
    value = (value or "").strip()
    if channel == Campaign.Channel.EMAIL or "@" in value:
        return value.lower()
    if channel == Campaign.Channel.SMS:
        return re.sub(r"\D", "", value)
    return value


def _require_suppression_manager(by) -> None:
    from config.org.selectors import has_role_anywhere

    if not (by.is_superuser or has_role_anywhere(by, Role.MANAGER)):
        raise PermissionDenied("Only managers change the suppression list.")


@transaction.atomic
def suppression_add(*, channel: str, value: str, reason: str, note: str = "", by) -> Suppression:
    """Never contact this address again (on one channel, or on all when ``channel`` is blank)."""
    _require_suppression_manager(by)
    errors: dict[str, list[str]] = {}
    if channel:
        _choice(errors, "channel", channel, Campaign.Channel.values)
    _choice(errors, "reason", reason, Suppression.Reason.values)
    address = normalise_address(channel, value)
    if not address:
        errors["value"] = ["required"]
    elif len(address) > 255:
        errors["value"] = ["at most 255 characters"]
    if len(note or "") > 200:
        errors["note"] = ["at most 200 characters"]
    _raise(errors)
    suppression, created = Suppression.objects.get_or_create(
        channel=channel or "",
        value=address,
        defaults={"reason": reason, "note": note or "", "created_by": by},
    )
    if created:
        audit_record(
            actor=by,
            action="suppression.add",
            target=suppression,
            detail={"channel": channel, "reason": reason},
        )
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, by) -> None:
    """Lift a suppression (audited: contacting the address again is a deliberate act)."""
    _require_suppression_manager(by)
    audit_record(
        actor=by,
        action="suppression.remove",
        target=suppression,
        detail={"channel": suppression.channel, "value": suppression.value},
    )
    suppression.delete()


POLICY_FIELDS = (
    "max_contacts",
    "window_days",
    "max_defer_hours",
    "quiet_start",
    "quiet_end",
    "default_holdout_percent",
    "default_conversion_days",
)


@transaction.atomic
def contact_policy_update(*, by, **fields) -> ContactPolicy:
    """Change the company-wide contact budget and quiet hours (the administrator only).

    One department's manager must not be able to raise the budget every department shares.
    """
    if not by.is_superuser:
        raise PermissionDenied("Only the administrator changes the company's contact policy.")
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    policy = ContactPolicy.current()
    errors: dict[str, list[str]] = {}
    limits = {
        "max_contacts": (1, 50),
        "window_days": (1, 90),
        "max_defer_hours": (0, 24 * 14),
        "default_holdout_percent": (0, 50),
        "default_conversion_days": (1, MAX_CONVERSION_DAYS),
    }
    for field, value in fields.items():
        if field in limits:
            value = _int_between(errors, field, value, *limits[field])
        setattr(policy, field, value)
    _raise(errors)
    policy.updated_by = by
    policy.save()
    audit_record(
        actor=by,
        action="contact_policy.update",
        target=policy,
        detail={field: str(value) for field, value in fields.items()},
    )
    return policy
