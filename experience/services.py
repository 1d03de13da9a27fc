"""Writes of circle ②: the touchpoint catalogue and staff-recorded activities."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.org.models import Department, Role
from config.org.selectors import departments_where, has_role_anywhere
from config.org.services import audit_record
from customers.models import Customer
from experience.event_types import event_type_ensure
from experience.ingest import events_record
from experience.models import Event, EventType, ExperienceValue, Touchpoint

TOUCHPOINT_FIELDS = frozenset(
    {
        "code",
        "name",
        "channel",
        "kind",
        "description",
        "experience_values",
        "owner_department",
        "is_active",
    }
)

# What staff record on a profile: event type → (description, the registry's property that
# carries the gist of it). Created on first use when the registry lacks them.
ACTIVITY_KINDS = {
    "store_visit": ("A member card was scanned in a store.", "store"),
    "call": ("A call with the customer centre.", "reason"),
    "meeting": ("A corporate sales meeting.", "purpose"),
}
ACTIVITY_SOURCE = "staff"
NOTE_MAX = 1000
OUTCOME_MAX = 200
GIST_MAX = 200
CLOCK_SKEW = dt.timedelta(minutes=1)


def experience_values_from(values: Iterable) -> list[ExperienceValue]:
    """Experience values from codes or instances; unknown codes name the field."""
    codes = [value.code if isinstance(value, ExperienceValue) else str(value) for value in values]
    unknown = sorted(set(codes) - set(ExperienceValue.Code.values))
    if unknown:
        raise ValidationError(
            {
                "experience_values": _("Unknown experience value: %(codes)s.")
                % {"codes": ", ".join(unknown)}
            }
        )
    return list(ExperienceValue.objects.filter(code__in=codes))


def _check_owner(department, by) -> None:
    if not isinstance(department, Department):
        raise ValidationError({"owner_department": _("Choose the owner department.")})
    if not departments_where(by, Role.EDITOR).filter(pk=department.pk).exists():
        raise ValidationError(
            {
                "owner_department": _(
                    "You can only give touchpoints to departments where you are an editor."
                )
            }
        )


def _apply(touchpoint: Touchpoint, fields: dict, by) -> list[ExperienceValue] | None:
    """Set plain fields, validate the whole row; returns the values to set, if given."""
    unknown = sorted(set(fields) - TOUCHPOINT_FIELDS)
    if unknown:
        raise ValidationError({name: _("Not a touchpoint field.") for name in unknown})
    values = None
    if "experience_values" in fields:
        values = experience_values_from(fields["experience_values"] or [])
    if "owner_department" in fields:
        _check_owner(fields["owner_department"], by)
    for name, value in fields.items():
        if name != "experience_values":
            setattr(touchpoint, name, value)
    touchpoint.full_clean()
    return values


def _audit_detail(touchpoint: Touchpoint, fields: dict) -> dict:
    detail = {}
    for name, value in fields.items():
        if name == "experience_values":
            detail[name] = sorted(
                v.code if isinstance(v, ExperienceValue) else str(v) for v in value or []
            )
        elif name == "owner_department":
            detail[name] = touchpoint.owner_department_id
        else:
            detail[name] = value
    return detail


@transaction.atomic
def touchpoint_create(*, by, **fields) -> Touchpoint:
    """Add a touchpoint to the catalogue for a department where ``by`` is an editor.

    ``fields``: code, name, channel, kind, description, experience_values (codes or
    instances), owner_department, is_active. Raises ``ValidationError`` naming the field.
    """
    if "owner_department" not in fields:
        raise ValidationError({"owner_department": _("Choose the owner department.")})
    touchpoint = Touchpoint()
    values = _apply(touchpoint, fields, by)
    touchpoint.save()
    if values is not None:
        touchpoint.experience_values.set(values)
    audit_record(
        actor=by,
        action="touchpoint.create",
        target=touchpoint,
        department=touchpoint.owner_department,
        detail=_audit_detail(touchpoint, fields),
    )
    return touchpoint


@transaction.atomic
def touchpoint_update(*, touchpoint: Touchpoint, by, **fields) -> Touchpoint:
    """Change a touchpoint ``by`` may edit (editor of the owner or of an edit-share).

    Moving it to another owner needs editor rights there too. Raises ``PermissionDenied``
    when ``by`` may not edit it and ``ValidationError`` naming the field on bad input.
    """
    if not Touchpoint.objects.editable_by(by).filter(pk=touchpoint.pk).exists():
        raise PermissionDenied
    if fields.get("owner_department") == touchpoint.owner_department:
        fields = {k: v for k, v in fields.items() if k != "owner_department"}
    values = _apply(touchpoint, fields, by)
    touchpoint.save()
    if values is not None:
        touchpoint.experience_values.set(values)
    audit_record(
        actor=by,
        action="touchpoint.update",
        target=touchpoint,
        department=touchpoint.owner_department,
        detail=_audit_detail(touchpoint, fields),
    )
    return touchpoint


def activity_event_type(kind: str) -> EventType:
    """The registry entry of a staff activity, created with its schema when missing."""
    description, prop = ACTIVITY_KINDS[kind]
    return event_type_ensure(
        kind,
        description=description,
        schema={prop: "string", "note": "string", "outcome": "string", "recorded_by": "integer"},
    )


@transaction.atomic
def activity_record(
    *,
    customer: Customer,
    kind: str,
    touchpoint: Touchpoint | None,
    occurred_at: dt.datetime,
    note: str,
    outcome: str = "",
    values: Iterable[str] = (),
    by,
) -> Event:
    """Record a visit, call or meeting a staff member had with a customer, as an event.

    Written directly (source ``staff``, a fresh ``event_id``): the customer is already
    known, so there is no identifier to resolve. Then the usual follow-up is queued through
    ``experience.pipeline.events_stored``. ``values`` are the experience value codes the
    encounter delivered. Raises ``PermissionDenied`` unless ``by`` edits in some department,
    and ``ValidationError`` naming the field on bad input.
    """

    if not has_role_anywhere(by, Role.EDITOR):
        raise PermissionDenied
    errors: dict[str, str] = {}
    if kind not in ACTIVITY_KINDS:
        errors["kind"] = _("Choose a visit, a call or a meeting.")
    if occurred_at is None or timezone.is_naive(occurred_at):
        errors["occurred_at"] = _("Give the date and time with its time zone.")
    elif occurred_at > timezone.now() + CLOCK_SKEW:
        errors["occurred_at"] = _("The time cannot be in the future.")
    note = (note or "").strip()
    outcome = (outcome or "").strip()
    if not note:
        errors["note"] = _("Write what happened.")
    elif len(note) > NOTE_MAX:
        errors["note"] = _("At most %(max)s characters.") % {"max": NOTE_MAX}
    if len(outcome) > OUTCOME_MAX:
        errors["outcome"] = _("At most %(max)s characters.") % {"max": OUTCOME_MAX}
    if touchpoint is not None and not (
        Touchpoint.objects.visible_to(by).filter(pk=touchpoint.pk, is_active=True).exists()
    ):
        errors["touchpoint"] = _("Choose an active touchpoint you can see.")
    codes = list(values or [])
    unknown = sorted(set(codes) - set(ExperienceValue.Code.values))
    if unknown:
        errors["values"] = _("Unknown experience value: %(codes)s.") % {"codes": ", ".join(unknown)}
    if customer.merged_into_id is not None:
        errors["customer"] = _("This profile was merged into another one; record it there.")
    if errors:
        raise ValidationError(errors)

    _description, prop = ACTIVITY_KINDS[kind]
    properties: dict = {"note": note, "recorded_by": by.pk}
    if outcome:
        properties["outcome"] = outcome
    gist = (touchpoint.code if touchpoint else "") if prop == "store" else note.splitlines()[0]
    if gist:
        properties[prop] = gist[:GIST_MAX]
    [event] = events_record(
        events=[
            Event(
                customer=customer,
                event_type=activity_event_type(kind),
                touchpoint=touchpoint,
                occurred_at=occurred_at,
                source=ACTIVITY_SOURCE,
                event_id=f"{ACTIVITY_SOURCE}-{uuid.uuid4()}",
                properties=properties,
                value_bits=ExperienceValue.bits_for(codes),
            )
        ]
    )
    return event
