"""Situation detection: rules that turn events and signals into life situations.

A :class:`~experience.models.SituationRule` says "at least N events of this type within
D days whose property passes this test mean this life situation". :func:`situations_detect`
evaluates every active rule for a batch of customers with ONE grouped query per rule and
chunk of customers, skips customers already detected with the same kind within the rule's
cooldown (``NOT EXISTS``), stores the new :class:`~customers.models.LifeEvent` rows in bulk
and emits one ``situation_detected`` event per detection, so campaigns can trigger on it.

Running it twice detects nothing new (the cooldown), and the emitted events carry
``event_id = life-event-<id>`` under the source ``detection``, so a replay stores nothing
twice. Detection runs in the after-ingest pipeline (``experience.pipeline``), which then
refreshes the metrics and segments of everyone touched; a detection made elsewhere
(:func:`life_event_record`: staff, the address-change listener) queues that follow-up itself.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Case, Count, Exists, Max, OuterRef, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from config.org.models import Department, Role
from config.org.services import audit_record
from customers.models import Customer, LifeEvent
from experience.event_types import event_type_ensure
from experience.ingest import events_record
from experience.models import Event, EventType, SituationRule

SITUATION_EVENT = "situation_detected"
SITUATION_EVENT_SCHEMA = {"kind": "string", "confidence": "number", "rule_id": "integer"}
DETECTION_SOURCE = "detection"
RULE_SOURCE_PREFIX = "rule:"
CHUNK = 5_000
"""Up to this many customers a rule's query names them (``IN``); beyond, it scans the window."""
DEFAULT_RECORD_COOLDOWN_DAYS = 30
"""A single recorded situation (staff, address change) is not repeated within this many days."""
_NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def rule_source(rule_id: int) -> str:
    """``LifeEvent.source`` of detections by a rule: what the pages group and scope by."""
    return f"{RULE_SOURCE_PREFIX}{rule_id}"


def dmp_signal_event_type() -> EventType:
    """The ``dmp_signal`` event type, registered on first use."""
    return event_type_ensure(
        DMP_SIGNAL_EVENT,
        description="A life-style or interest signal from the external DMP.",
        schema=DMP_SIGNAL_SCHEMA,
    )


def situation_event_type() -> EventType:
    """The ``situation_detected`` event type, registered on first use."""
    return event_type_ensure(
        SITUATION_EVENT,
        description="A life situation was detected on the profile.",
        schema=SITUATION_EVENT_SCHEMA,
    )


# --- matching ---------------------------------------------------------------------------


def rule_events(rule: SituationRule, *, now: dt.datetime | None = None) -> models.QuerySet:
    """Events that count towards ``rule``: its type, in its window, passing its property test.

    The property is read with a JSON key transform (``properties ->> key``) cast to text, so
    the same query runs on SQLite and PostgreSQL. Text tests are case-insensitive; "at least"
    compares numbers only where the value looks like one (a stray text value never breaks the
    cast on PostgreSQL, it just does not match).
    """
    now = now or timezone.now()
    events = Event.objects.filter(
        event_type_id=rule.event_type_id,
        occurred_at__gte=now - dt.timedelta(days=rule.window_days),
    )
    if not rule.property:
        return events
    text = Cast(KT(f"properties__{rule.property}"), models.TextField())
    events = events.annotate(_prop=text)
    operator = rule.operator
    ops = SituationRule.Operator
    if operator == ops.EQUALS:
        return events.filter(_prop__iexact=rule.value)
    if operator == ops.CONTAINS:
        return events.filter(_prop__icontains=rule.value)
    if operator == ops.STARTS_WITH:
        return events.filter(_prop__istartswith=rule.value)
    if operator == ops.AT_LEAST:
        number = Case(
            When(_prop__regex=_NUMBER, then=Cast("_prop", models.FloatField())),
            default=None,
            output_field=models.FloatField(),
        )
        return events.annotate(_number=number).filter(_number__gte=float(rule.value))
    raise ValueError(f"unknown operator {operator!r}")  # pragma: no cover


def _matches(rule: SituationRule, *, customer_ids: list[int] | None, now: dt.datetime):
    """(customer id, matched events, latest match) of customers the rule fires for now."""
    events = rule_events(rule, now=now)
    if customer_ids is not None:
        events = events.filter(customer_id__in=customer_ids)
    recent = LifeEvent.objects.filter(
        customer_id=OuterRef("customer_id"),
        kind=rule.kind,
        detected_at__gte=now - dt.timedelta(days=rule.cooldown_days),
    )
    return (
        events.filter(~Exists(recent))
        .values("customer_id")
        .annotate(matched=Count("pk"), latest=Max("occurred_at"))
        .filter(matched__gte=rule.min_count)
        .values_list("customer_id", "matched", "latest")
        .order_by()
    )


def situation_rule_preview(rule: SituationRule) -> int:
    """How many customers the rule would detect now (cooldown applied), in one count query."""
    return _matches(rule, customer_ids=None, now=timezone.now()).count()


@transaction.atomic
def situations_detect(
    *, customer_ids: Collection[int], event_types: Collection[str] | None = None
) -> list[LifeEvent]:
    """Evaluate the active rules for these customers; store and announce new detections.

    ``event_types`` (names) restricts the run to rules on those types: the pipeline passes
    the types just stored, so a batch of page views does not re-run DMP rules. Rules on
    ``situation_detected`` itself are never run (a detection must not feed detection).
    Rules run strongest first, each seeing the detections of the ones before, so one
    situation is detected once even when several rules fire for it.
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return []
    rules = (
        SituationRule.objects.filter(is_active=True)
        .exclude(event_type__name=SITUATION_EVENT)
        .select_related("event_type")
        .order_by("-confidence", "pk")
    )
    if event_types is not None:
        rules = rules.filter(event_type__name__in=list(event_types))
    now = timezone.now()
    detected: list[LifeEvent] = []
    # A big set (a nightly run over everyone) is cheaper as one scan per rule than as
    # many chunks of ``IN (…)``; the matches are then narrowed to the asked customers.
    wanted = set(ids) if len(ids) > CHUNK else None
    chunks = [None] if wanted is not None else [ids]
    for rule in rules:
        new: list[LifeEvent] = []
        for chunk in chunks:
            for customer_id, matched, latest in _matches(rule, customer_ids=chunk, now=now):
                if wanted is not None and customer_id not in wanted:
                    continue
                new.append(
                    LifeEvent(
                        customer_id=customer_id,
                        kind=rule.kind,
                        detected_at=now,
                        source=rule_source(rule.pk),
                        confidence=rule.confidence,
                        department_id=rule.owner_department_id,
                        detail={
                            "rule_id": rule.pk,
                            "rule_name": rule.name,
                            "event_type": rule.event_type.name,
                            "matched": matched,
                            "last_event_at": latest.isoformat() if latest else None,
                        },
                    )
                )
        if new:
            detected.extend(_store(new))
    if detected:
        _emit(detected)
    return detected


def _store(life_events: list[LifeEvent]) -> list[LifeEvent]:
    """Insert in bulk; the ids come back (RETURNING on PostgreSQL and SQLite ≥ 3.35)."""
    stored = LifeEvent.objects.bulk_create(life_events, batch_size=1000)
    if any(event.pk is None for event in stored):  # pragma: no cover - very old SQLite
        raise RuntimeError("the database did not return the ids of new life events")
    return stored


def _emit(life_events: list[LifeEvent]) -> None:
    """One ``situation_detected`` event per detection, idempotent on ``life-event-<id>``."""
    event_type = situation_event_type()
    events_record(
        events=[
            Event(
                customer_id=life_event.customer_id,
                event_type=event_type,
                occurred_at=life_event.detected_at,
                source=DETECTION_SOURCE,
                event_id=f"life-event-{life_event.pk}",
                properties={
                    "kind": life_event.kind,
                    "confidence": life_event.confidence,
                    "rule_id": (life_event.detail or {}).get("rule_id"),
                },
            )
            for life_event in life_events
        ]
    )


# --- single detections and handling -----------------------------------------------------


@transaction.atomic
def life_event_record(
    *,
    customer: Customer,
    kind: str,
    source: str,
    confidence: float,
    detail: Mapping[str, Any] | None = None,
    department: Department | None = None,
    at: dt.datetime | None = None,
    cooldown_days: int = DEFAULT_RECORD_COOLDOWN_DAYS,
) -> LifeEvent | None:
    """Record one detected situation (staff entry, address change…) and announce it.

    Returns ``None`` and records nothing when the customer already has a situation of the
    same kind detected within ``cooldown_days`` (so a repeated signal is not a new moment).
    Metrics, segments and event-triggered campaigns follow through the pipeline.
    """
    errors: dict[str, list[str]] = {}
    if kind not in LifeEvent.Kind.values:
        errors["kind"] = [f"unknown situation {kind!r}"]
    source = (source or "").strip()
    if not source or len(source) > 50:
        errors["source"] = ["required, at most 50 characters"]
    try:
        confidence = float(confidence)
    except (TypeError, ValueError):
        errors["confidence"] = ["expected a number between 0 and 1"]
    else:
        if not (0 <= confidence <= 1) or math.isnan(confidence):
            errors["confidence"] = ["expected a number between 0 and 1"]
    if customer.merged_into_id:
        errors["customer"] = [f"profile #{customer.pk} was merged into #{customer.merged_into_id}"]
    if errors:
        raise ValidationError(errors)
    at = at or timezone.now()
    if LifeEvent.objects.filter(
        customer=customer, kind=kind, detected_at__gte=at - dt.timedelta(days=cooldown_days)
    ).exists():
        return None
    life_event = LifeEvent.objects.create(
        customer=customer,
        kind=kind,
        detected_at=at,
        source=source,
        confidence=confidence,
        detail=dict(detail or {}),
        department=department,
    )
    _emit([life_event])
    return life_event


def can_handle_life_event(user, life_event: LifeEvent) -> bool:
    """Editors of the detecting department; for a detection without one, editors anywhere."""
    if not (user and user.is_authenticated):
        return False
    if user.is_superuser:
        return True
    if life_event.department_id is not None:
        return user.has_role(life_event.department_id, Role.EDITOR)
    return bool(user.department_ids_with_role(Role.EDITOR))


@transaction.atomic
def life_event_handle(*, life_event: LifeEvent, by) -> LifeEvent:
    """Mark a detection as acted on, so it leaves the list of new situations; audited."""
    if not can_handle_life_event(by, life_event):
        raise PermissionDenied("Only an editor of the detecting department may mark this handled.")
    locked = LifeEvent.objects.select_for_update().get(pk=life_event.pk)
    if locked.handled_at is None:
        locked.handled_at = timezone.now()
        locked.handled_by = by
        locked.save(update_fields=["handled_at", "handled_by"])
        audit_record(
            actor=by,
            action="life_event.handle",
            target=locked.customer,
            department=locked.department,
            detail={"life_event": locked.pk, "kind": locked.kind},
        )
    life_event.handled_at, life_event.handled_by_id = locked.handled_at, locked.handled_by_id
    return life_event


# --- rules ------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "kind",
    "event_type",
    "property",
    "operator",
    "value",
    "min_count",
    "window_days",
    "cooldown_days",
    "confidence",
    "is_active",
    "owner_department",
)


def _editor_of(user, department_id: int) -> bool:
    return bool(user.is_superuser or user.has_role(department_id, Role.EDITOR))


def _clean_rule(rule: SituationRule) -> None:
    """Every problem of a rule under its field name; nothing is saved when any is found."""
    errors: dict[str, list[str]] = {}
    try:
        rule.full_clean(exclude=["owner_department", "event_type"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if rule.event_type_id is None:
        errors["event_type"] = ["choose an event type"]
    elif rule.event_type.name == SITUATION_EVENT:
        errors["event_type"] = ["detections cannot be detected from detections"]
    if rule.owner_department_id is None:
        errors["owner_department"] = ["choose the owning department"]
    if rule.property and not rule.value.strip():
        errors.setdefault("value", []).append("required when a property is tested")
    if rule.value and not rule.property:
        errors.setdefault("property", []).append("required when a value is given")
    if rule.property and not all(part.isidentifier() for part in rule.property.split("__")):
        errors.setdefault("property", []).append(
            "letters, digits and underscores only, e.g. path or signal"
        )
    if rule.property and rule.operator == SituationRule.Operator.AT_LEAST:
        try:
            number = float(rule.value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            errors.setdefault("value", []).append("“at least” needs a number")
    if not 0 <= (rule.confidence if rule.confidence is not None else -1) <= 1:
        errors.setdefault("confidence", []).append("between 0 and 1")
    if rule.min_count is not None and rule.min_count < 1:
        errors.setdefault("min_count", []).append("at least 1")
    if rule.window_days is not None and rule.window_days < 1:
        errors.setdefault("window_days", []).append("at least 1 day")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def situation_rule_create(*, by, **fields) -> SituationRule:
    """A new rule owned by a department the user edits for."""
    rule = SituationRule(**{k: v for k, v in fields.items() if k in RULE_FIELDS})
    _clean_rule(rule)
    if not _editor_of(by, rule.owner_department_id):
        raise PermissionDenied("Only an editor of the owning department may create its rules.")
    rule.save()
    audit_record(
        actor=by, action="situation_rule.create", target=rule, department=rule.owner_department
    )
    return rule


@transaction.atomic
def situation_rule_update(*, rule: SituationRule, by, **fields) -> SituationRule:
    """Change a rule the user may edit (owner editors, edit-shares); the owner stays."""
    if not SituationRule.objects.editable_by(by).filter(pk=rule.pk).exists():
        raise PermissionDenied("Only an editor of the owning department may change this rule.")
    fields.pop("owner_department", None)
    for name, value in fields.items():
        if name in RULE_FIELDS:
            setattr(rule, name, value)
    _clean_rule(rule)
    rule.save()
    audit_record(
        actor=by,
        action="situation_rule.update",
        target=rule,
        department=rule.owner_department,
        detail={"fields": sorted(k for k in fields if k in RULE_FIELDS)},
    )
    return rule


# --- built-in rules ---------------------------------------------------------------------

DMP_SIGNAL_EVENT = "dmp_signal"
DMP_SIGNAL_SCHEMA = {"signal": "string", "score": "number"}


def default_situation_rules(department: Department) -> list[SituationRule]:
    """The shipped rules, owned by ``department``; created once (matched by name).

    Page views and ad clicks must exist as event types for their rules; the ``dmp_signal``
    type is registered here. Used by the demo seed and by a fresh installation.
    """
    dmp = dmp_signal_event_type()
    page_view, _created = EventType.objects.get_or_create(
        name="page_view", defaults={"property_schema": {"path": "string"}}
    )
    ad_click, _created = EventType.objects.get_or_create(
        name="ad_click", defaults={"property_schema": {"medium": "string", "campaign": "string"}}
    )
    kinds = LifeEvent.Kind
    ops = SituationRule.Operator
    specs = [
        (
            "Wedding pages viewed",
            kinds.MARRIAGE,
            page_view,
            "path",
            ops.CONTAINS,
            "wedding",
            2,
            0.6,
        ),
        ("DMP: wedding", kinds.MARRIAGE, dmp, "signal", ops.EQUALS, "wedding", 1, 0.8),
        ("DMP: moving", kinds.MOVING, dmp, "signal", ops.EQUALS, "moving", 1, 0.8),
        ("DMP: job change", kinds.JOB_CHANGE, dmp, "signal", ops.EQUALS, "job_change", 1, 0.7),
        ("DMP: childbirth", kinds.CHILDBIRTH, dmp, "signal", ops.EQUALS, "childbirth", 1, 0.8),
        ("Baby pages viewed", kinds.CHILDBIRTH, page_view, "path", ops.CONTAINS, "baby", 3, 0.5),
        (
            "DMP: competitor interest",
            kinds.COMPETITOR_INTEREST,
            dmp,
            "signal",
            ops.STARTS_WITH,
            "competitor:",
            1,
            0.6,
        ),
        (
            "Competitor ad clicked",
            kinds.COMPETITOR_INTEREST,
            ad_click,
            "medium",
            ops.EQUALS,
            "competitor",
            1,
            0.5,
        ),
        (
            "DMP: substitute interest",
            kinds.SUBSTITUTE_INTEREST,
            dmp,
            "signal",
            ops.STARTS_WITH,
            "substitute:",
            1,
            0.6,
        ),
    ]
    existing = set(
        SituationRule.objects.filter(owner_department=department).values_list("name", flat=True)
    )
    new = [
        SituationRule(
            owner_department=department,
            name=name,
            kind=kind,
            event_type=event_type,
            property=prop,
            operator=operator,
            value=value,
            min_count=min_count,
            window_days=30,
            cooldown_days=180,
            confidence=confidence,
        )
        for name, kind, event_type, prop, operator, value, min_count, confidence in specs
        if name not in existing
    ]
    SituationRule.objects.bulk_create(new)
    return list(SituationRule.objects.filter(owner_department=department).order_by("name"))


# --- moving house from an address change ------------------------------------------------

ADDRESS_FIELDS = frozenset({"postal_code", "prefecture", "city"})
MOVING_CONFIDENCE = 0.9


def moving_from_address_change(
    *,
    customer_ids: list[int],
    changed_fields: set[str],
    previous: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[LifeEvent]:
    """Profile-change listener: a changed address on a profile that had one is a move.

    A customer moved when an address field (postal code, prefecture, city) changed FROM a
    value: the first address entered on a profile, or a postal code added to a known city,
    is not a move.
    """
    if not (set(changed_fields) & ADDRESS_FIELDS):
        return []
    previous = previous or {}
    movers = [
        pk
        for pk in customer_ids
        if any((previous.get(pk) or {}).get(name) for name in ADDRESS_FIELDS)
    ]
    if not movers:
        return []
    return _record_many(
        customer_ids=movers,
        kind=LifeEvent.Kind.MOVING,
        source="address_change",
        confidence=MOVING_CONFIDENCE,
        detail={"fields": sorted(changed_fields & ADDRESS_FIELDS)},
    )


@transaction.atomic
def _record_many(
    *, customer_ids: list[int], kind: str, source: str, confidence: float, detail: dict
) -> list[LifeEvent]:
    """The bulk form of :func:`life_event_record` for listeners fed whole import chunks."""
    now = timezone.now()
    recent = LifeEvent.objects.filter(
        customer_id=OuterRef("pk"),
        kind=kind,
        detected_at__gte=now - dt.timedelta(days=DEFAULT_RECORD_COOLDOWN_DAYS),
    )
    ids = list(
        Customer.objects.filter(pk__in=customer_ids, merged_into__isnull=True)
        .filter(~Exists(recent))
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    stored = _store(
        [
            LifeEvent(
                customer_id=pk,
                kind=kind,
                detected_at=now,
                source=source,
                confidence=confidence,
                detail=detail,
            )
            for pk in ids
        ]
    )
    _emit(stored)
    return stored


# --- reads ------------------------------------------------------------------------------


def life_events_visible_to(user) -> models.QuerySet[LifeEvent]:
    """Detections a user's departments act on.

    A department sees what its own rules detected (``department`` is the rule's owner),
    what rules shared with it detected (matched by ``source = rule:<id>`` against
    ``SituationRule.objects.visible_to``), and every detection with no department
    (external signals recorded without a rule, address changes, staff entries), which
    belong to the whole company like the profile itself. Another department's rule-based
    detections stay hidden. The administrator sees everything.
    """
    if not user.is_authenticated:
        return LifeEvent.objects.none()
    if user.is_superuser:
        return LifeEvent.objects.all()
    rule_sources = [
        rule_source(pk)
        for pk in SituationRule.objects.visible_to(user).values_list("pk", flat=True)
    ]
    return LifeEvent.objects.filter(
        models.Q(department__isnull=True)
        | models.Q(department_id__in=user.department_ids)
        | models.Q(source__in=rule_sources)
    )


def rule_detection_counts(*, since: dt.datetime) -> dict[int, int]:
    """Rule id → detections since then, in one grouped query over ``source``."""
    counts: dict[int, int] = {}
    rows = (
        LifeEvent.objects.filter(source__startswith=RULE_SOURCE_PREFIX, detected_at__gte=since)
        .values("source")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        suffix = row["source"][len(RULE_SOURCE_PREFIX) :]
        if suffix.isdigit():
            counts[int(suffix)] = row["n"]
    return counts
