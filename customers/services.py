"""Writes of circle ①: profiles, identifiers, consents, important dates, merge and undo.

Every function is keyword-only and atomic; bad input raises ``ValidationError`` naming the
field (or the attribute key) before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable
from decimal import Decimal, InvalidOperation

from django.core import serializers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from config.org.services import audit_record
from customers.identity import IdentifierError, mask_identifier, normalize_identifier
from customers.metrics import metrics_rebuild
from customers.models import (
    AttributeDefinition,
    Channel,
    Consent,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerMetrics,
    Identity,
    ImportantDate,
)
from customers.segments import segment_membership_sync

ID_CHUNK = 5_000


# --- derived data -----------------------------------------------------------------------


def customers_derived_refresh(*, customer_ids: Collection[int], recount: bool = False) -> None:
    """The one call for "these customers' data changed": derived data follows at once.

    Rebuilds their ``CustomerMetrics`` (and lifecycle stage), then applies their entries
    into and exits from every dynamic segment (``segment_membership_sync``), so campaigns
    that trigger on a segment see the change without waiting for a full computation.
    ``recount`` re-reads the member counts of their segments exactly (after a merge undo,
    which restores membership rows behind the counts' back).
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return
    metrics_rebuild(customer_ids=ids)
    segment_membership_sync(customer_ids=ids, recount=recount)


def customers_derived_refresh_on_commit(
    customer_ids: Collection[int], *, recount: bool = False
) -> None:
    """Queue ``customers_derived_refresh`` as a django-q2 task after the transaction commits."""
    from customers.tasks import queue_task

    ids = sorted({int(pk) for pk in customer_ids})
    if ids:
        queue_task("customers.tasks.refresh_customers_derived", ids, recount=recount)


# --- profile change listeners ------------------------------------------------------------

ProfileChangeListener = Callable[..., object]
_PROFILE_CHANGE_LISTENERS: list[ProfileChangeListener] = []


def register_profile_change_listener(listener: ProfileChangeListener) -> None:
    """Call ``listener`` after profile fields change (outer circles react, e.g. moving house).

    It is called once the transaction commits, with keyword arguments ``customer_ids``
    (list of ids), ``changed_fields`` (set of field names changed on any of them) and
    ``previous`` (customer id → {field: value before} of the fields that changed on that
    customer), so this circle never imports the one listening.
    Registered from an ``AppConfig.ready()``; registering the same function twice is a no-op.
    """
    if listener not in _PROFILE_CHANGE_LISTENERS:
        _PROFILE_CHANGE_LISTENERS.append(listener)


def profile_changed_on_commit(
    *, customer_ids: Collection[int], changed_fields: Collection[str], previous: dict
) -> None:
    """Tell the registered listeners about changed profiles once the transaction commits."""
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids or not changed_fields or not _PROFILE_CHANGE_LISTENERS:
        return
    fields = set(changed_fields)

    def notify() -> None:
        for listener in list(_PROFILE_CHANGE_LISTENERS):
            listener(customer_ids=ids, changed_fields=fields, previous=previous)

    transaction.on_commit(notify)


# --- who may do what --------------------------------------------------------------------


def can_edit_customers(user) -> bool:
    """Profiles are company-wide: an editor or manager of any department may change them."""
    return has_role_anywhere(user, Role.EDITOR)


def can_merge_customers(user) -> bool:
    """Merging is an edit: editors and managers of any department, and administrators."""
    return has_role_anywhere(user, Role.EDITOR)


def can_undo_merges(user) -> bool:
    """Undoing a merge splits a person again: managers of any department and administrators."""
    return has_role_anywhere(user, Role.MANAGER)


# --- profile fields ---------------------------------------------------------------------

PROFILE_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "gender",
    "postal_code",
    "prefecture",
    "city",
    "language",
)
_KANA = re.compile(r"^[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\s・ー]*$")
_POSTAL = re.compile(r"^〒?\s*(\d{3})-?(\d{4})$")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _clean_profile(fields: dict, *, instance: Customer) -> dict:
    """Validated, normalised profile values; every problem is reported under its field."""
    unknown = set(fields) - set(PROFILE_FIELDS) - {"attributes"}
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "unknown field"))
    cleaned: dict = {}
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        if name == "attributes":
            continue
        model_field = Customer._meta.get_field(name)
        if value is None and not model_field.null:
            value = ""
        if isinstance(value, str):
            value = (
                unicodedata.normalize("NFKC", value).strip() if name != "city" else value.strip()
            )
        try:
            if name == "postal_code" and value:
                match = _POSTAL.match(value)
                if not match:
                    raise ValidationError("expected a Japanese postal code like 123-4567")
                value = f"{match[1]}-{match[2]}"
            if name in ("family_name_kana", "given_name_kana") and not _KANA.match(value):
                raise ValidationError("must be written in kana")
            value = model_field.clean(value, instance)
            if name == "birth_date" and value is not None:
                if value > timezone.localdate():
                    raise ValidationError("must not be in the future")
                if value.year < 1900:
                    raise ValidationError("must be 1900 or later")
        except ValidationError as exc:
            errors[name] = exc.messages
            continue
        cleaned[name] = value
    if "attributes" in fields:
        try:
            cleaned["attributes"] = _clean_attributes(
                fields["attributes"], current=instance.attributes
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_attributes(values, *, current: dict) -> dict:
    """Merge typed custom attributes into ``current``; ``None`` removes a key."""
    if not isinstance(values, dict):
        raise ValidationError({"attributes": ["expected an object of attribute key → value"]})
    definitions = AttributeDefinition.objects.in_bulk(list(values), field_name="key")
    merged = dict(current or {})
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"attributes.{key}"] = ["no such attribute is defined"]
            continue
        if value is None or value == "":
            merged.pop(key, None)
            continue
        try:
            merged[key] = _coerce_attribute(definition, value)
        except ValidationError as exc:
            errors[f"attributes.{key}"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return merged


def _coerce_attribute(definition: AttributeDefinition, value):
    kind = definition.type
    types = AttributeDefinition.Type
    if kind == types.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError("expected text")
        text = str(value).strip()
        if len(text) > 1000:
            raise ValidationError("is longer than 1000 characters")
        return text
    if kind == types.NUMBER:
        if isinstance(value, bool):
            raise ValidationError("expected a number")
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation as exc:
            raise ValidationError("expected a number") from exc
        if not number.is_finite():
            raise ValidationError("expected a number")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == types.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError("expected yes/no (true or false)")
    if kind == types.DATE:
        if isinstance(value, dt.date):
            return value.isoformat()
        try:
            return dt.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError as exc:
            raise ValidationError("expected a date as YYYY-MM-DD") from exc
    if kind == types.CHOICE:
        allowed = [c[0] if isinstance(c, list | tuple) else c for c in definition.choices]
        if value not in allowed:
            raise ValidationError(f"expected one of: {', '.join(map(str, allowed))}")
        return value
    raise ValidationError(f"attribute type {kind!r} is not supported")  # pragma: no cover


@transaction.atomic
def customer_create(*, by, **fields) -> Customer:
    """A new profile from validated fields; identifiers are added with ``identity_add``."""
    customer = Customer()
    cleaned = _clean_profile(fields, instance=customer)
    for name, value in cleaned.items():
        setattr(customer, name, value)
    customer.save()
    audit_record(
        actor=by, action="customer.create", target=customer, detail={"fields": sorted(cleaned)}
    )
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, by, **fields) -> Customer:
    """Change some fields of a profile; attributes are merged key by key."""
    if customer.merged_into_id:
        raise ValidationError(
            {"customer": [f"profile #{customer.pk} was merged into #{customer.merged_into_id}"]}
        )
    cleaned = _clean_profile(fields, instance=customer)
    changed = [name for name, value in cleaned.items() if getattr(customer, name) != value]
    previous = {name: getattr(customer, name) for name in changed}
    for name in changed:
        setattr(customer, name, cleaned[name])
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=by, action="customer.update", target=customer, detail={"fields": sorted(changed)}
        )
        customers_derived_refresh_on_commit([customer.pk])
        profile_changed_on_commit(
            customer_ids=[customer.pk], changed_fields=changed, previous={customer.pk: previous}
        )
    return customer


# --- identifiers ------------------------------------------------------------------------


@transaction.atomic
def identity_add(*, customer: Customer, kind: str, value: str, source: str, by) -> Identity:
    """Attach one identifier; one that already belongs to someone else is refused.

    Stitching two known people together is a merge, which is done on purpose
    (``customers_merge``) rather than as a side effect of editing.
    """
    try:
        value = normalize_identifier(kind, value)
    except IdentifierError as exc:
        field = "kind" if kind not in Identity.Kind.values else "value"
        raise ValidationError({field: [str(exc)]}) from exc
    existing = Identity.objects.filter(kind=kind, value=value).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        raise ValidationError(
            {"value": [f"this {kind} already belongs to customer #{existing.customer_id}"]}
        )
    identity = Identity.objects.create(
        customer=customer, kind=kind, value=value, source=source[:50], last_seen_at=timezone.now()
    )
    if customer.is_anonymous and kind != Identity.Kind.COOKIE:
        Customer.objects.filter(pk=customer.pk).update(is_anonymous=False)
        customer.is_anonymous = False
    audit_record(
        actor=by,
        action="customer.identity_add",
        target=customer,
        detail={"kind": kind, "value": mask_identifier(kind, value)},
    )
    customers_derived_refresh_on_commit([customer.pk])
    return identity


@transaction.atomic
def identity_remove(*, identity: Identity, by) -> None:
    """Detach one identifier from its profile."""
    customer = identity.customer
    identity.delete()
    audit_record(
        actor=by,
        action="customer.identity_remove",
        target=customer,
        detail={"kind": identity.kind, "value": mask_identifier(identity.kind, identity.value)},
    )
    customers_derived_refresh_on_commit([customer.pk])


# --- consent and dates ------------------------------------------------------------------


@transaction.atomic
def consent_set(
    *,
    customer: Customer,
    channel: str,
    status: str,
    source: str,
    by=None,
    at: dt.datetime | None = None,
) -> Consent:
    """Record a person's consent for one channel, with who, when and through which source.

    Setting the status it already has changes nothing, so re-importing a file adds no
    history.
    """
    errors = {}
    if channel not in Channel.values:
        errors["channel"] = [f"unknown channel {channel!r}"]
    if status not in Consent.Status.values:
        errors["status"] = [f"expected one of: {', '.join(Consent.Status.values)}"]
    source = (source or "").strip()
    if not source or len(source) > 50:
        errors["source"] = ["required, at most 50 characters"]
    if customer.merged_into_id:
        errors["customer"] = [f"profile #{customer.pk} was merged into #{customer.merged_into_id}"]
    if errors:
        raise ValidationError(errors)
    at = at or timezone.now()
    consent = Consent.objects.select_for_update().filter(customer=customer, channel=channel).first()
    if consent is not None and consent.status == status:
        return consent
    if consent is None:
        consent = Consent.objects.create(
            customer=customer, channel=channel, status=status, source=source, updated_at=at
        )
    else:
        consent.status, consent.source, consent.updated_at = status, source, at
        consent.save(update_fields=["status", "source", "updated_at"])
    ConsentChange.objects.create(
        consent=consent,
        status=status,
        source=source,
        changed_by=by if getattr(by, "is_authenticated", False) else None,
        changed_at=at,
    )
    audit_record(
        actor=by,
        action="consent.set",
        target=customer,
        detail={"channel": channel, "status": status, "source": source},
    )
    customers_derived_refresh_on_commit([customer.pk])
    return consent


_DAYS_IN_MONTH = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}


@transaction.atomic
def important_date_set(
    *,
    customer: Customer,
    kind: str,
    month: int,
    day: int,
    year: int | None = None,
    label: str = "",
    self_declared: bool = False,
    by=None,
) -> ImportantDate:
    """Set one important date; birthdays and anniversaries are one per person, others by label."""
    errors: dict[str, list[str]] = {}
    if kind not in ImportantDate.Kind.values:
        errors["kind"] = [f"unknown kind {kind!r}"]
    label = (label or "").strip()
    if len(label) > 100:
        errors["label"] = ["at most 100 characters"]
    if kind == ImportantDate.Kind.CUSTOM and not label:
        errors["label"] = ["required for another kind of date"]
    try:
        month, day = int(month), int(day)
        year = int(year) if year not in (None, "") else None
    except (TypeError, ValueError):
        errors["day"] = ["month, day and year must be whole numbers"]
    else:
        if not 1 <= month <= 12:
            errors["month"] = ["must be between 1 and 12"]
        elif not 1 <= day <= _DAYS_IN_MONTH.get(month, 31):
            errors["day"] = [f"month {month} has no day {day}"]
        elif year is not None:
            try:
                dt.date(year, month, day)
            except ValueError:
                errors["day"] = [f"{year}-{month:02d}-{day:02d} is not a date"]
            if year < 1900 or year > timezone.localdate().year + 1:
                errors["year"] = ["out of range"]
    if errors:
        raise ValidationError(errors)
    lookup = {"customer": customer, "kind": kind}
    if kind in (ImportantDate.Kind.CUSTOM, ImportantDate.Kind.CHILD_BIRTHDAY):
        lookup["label"] = label
    important, _created = ImportantDate.objects.update_or_create(
        **lookup,
        defaults={
            "label": label,
            "month": month,
            "day": day,
            "year": year,
            "self_declared": self_declared,
        },
    )
    if by is not None:
        audit_record(actor=by, action="customer.important_date_set", target=customer)
    customers_derived_refresh_on_commit([customer.pk])
    return important


# --- merge and undo ---------------------------------------------------------------------

_FILLABLE = (*PROFILE_FIELDS,)


def _customer_references() -> list[models.ForeignKey]:
    """Every foreign key to Customer from any installed app, hidden ones included.

    ``_meta.related_objects`` leaves out relations named ``"+"`` (segment memberships,
    say), so the hidden reverse relations are asked for explicitly. The merge records
    themselves, the ``merged_into`` self-reference and the derived metrics row are not
    moved.
    """
    fields = []
    for rel in Customer._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue
        model = rel.related_model
        if model in (CustomerMerge, Customer, CustomerMetrics):
            continue
        fields.append(rel.field)
    return sorted(fields, key=lambda f: (f.model._meta.label_lower, f.name))


def _unique_sets(field: models.ForeignKey) -> list[tuple[str, ...]]:
    """Other fields that, with ``field``, must be unique: where a moved row may collide."""
    model = field.model
    sets = []
    if field.unique:
        sets.append(())
    for constraint in model._meta.constraints:
        if (
            isinstance(constraint, models.UniqueConstraint)
            and constraint.fields
            and field.name in constraint.fields
            and constraint.condition is None
        ):
            sets.append(tuple(name for name in constraint.fields if name != field.name))
    for together in model._meta.unique_together:
        if field.name in together:
            sets.append(tuple(name for name in together if name != field.name))
    return sets


def _chunks(ids: list, size: int = ID_CHUNK) -> Iterable[list]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@transaction.atomic
def customers_merge(
    *, winner: Customer, loser: Customer, by, reason: str, refresh_metrics: bool = True
) -> CustomerMerge:
    """Fold ``loser`` into ``winner``: every row pointing at the loser moves, undoably.

    Rows are found through every foreign key to Customer, so events, orders, deliveries
    and staff tasks of the outer circles move without this app importing them. A moved
    row that would break a unique constraint (the same segment, favourite or delivery on
    both) is not moved: the winner's row stays and the loser's copy is deleted and kept in
    the merge record. For consent the newest decision per channel wins and the loser's
    history joins the winner's. Blank profile fields of the winner are filled from the
    loser. ``moved`` records everything so :func:`customer_merge_undo` can put it back.

    Derived data (metrics, live segment membership) of both profiles is refreshed in the
    same transaction through :func:`customers_derived_refresh`; a caller merging many
    profiles in one batch passes ``refresh_metrics=False`` and refreshes the winners and
    losers once itself.
    """
    if winner.pk == loser.pk:
        raise ValidationError("a profile cannot be merged into itself")
    locked = Customer.objects.select_for_update().in_bulk([winner.pk, loser.pk])
    winner, loser = locked[winner.pk], locked[loser.pk]
    for customer in (winner, loser):
        if customer.merged_into_id:
            raise ValidationError(
                f"profile #{customer.pk} was already merged into #{customer.merged_into_id}"
            )
    moved: dict = {"rows": {}, "deleted": [], "consents": [], "winner_fields": {}}

    _merge_consents(winner, loser, moved)
    for field in _customer_references():
        model = field.model
        if model is Consent:
            continue
        manager = model._base_manager
        loser_rows = manager.filter(**{field.attname: loser.pk})
        duplicates = manager.none()
        for others in _unique_sets(field):
            clash = manager.filter(
                **{field.attname: winner.pk}, **{name: OuterRef(name) for name in others}
            )
            duplicates = duplicates | loser_rows.filter(Exists(clash))
        duplicate_rows = list(duplicates.distinct())
        if duplicate_rows:
            moved["deleted"].append(serializers.serialize("json", duplicate_rows))
            manager.filter(pk__in=[row.pk for row in duplicate_rows]).delete()
        ids = list(loser_rows.values_list("pk", flat=True))
        for chunk in _chunks(ids):
            manager.filter(pk__in=chunk).update(**{field.attname: winner.pk})
        if ids:
            moved["rows"][f"{model._meta.label_lower}.{field.attname}"] = ids

    filled = []
    for name in _FILLABLE:
        if getattr(winner, name) in ("", None) and getattr(loser, name) not in ("", None):
            moved["winner_fields"][name] = getattr(winner, name)
            setattr(winner, name, getattr(loser, name))
            filled.append(name)
    extra = {k: v for k, v in loser.attributes.items() if k not in winner.attributes}
    if extra:
        moved["winner_fields"]["attributes"] = winner.attributes
        winner.attributes = {**extra, **winner.attributes}
        filled.append("attributes")
    if winner.is_anonymous and not loser.is_anonymous:
        moved["winner_fields"]["is_anonymous"] = True
        winner.is_anonymous = False
        filled.append("is_anonymous")
    if filled:
        moved["winner_fields"] = _jsonable(moved["winner_fields"])
        winner.save(update_fields=[*filled, "updated_at"])

    loser.merged_into = winner
    loser.save(update_fields=["merged_into", "updated_at"])
    merge = CustomerMerge.objects.create(
        winner=winner, loser=loser, reason=reason[:200], moved=moved, merged_by=_user(by)
    )
    audit_record(
        actor=by,
        action="customer.merge",
        target=winner,
        detail={
            "merge": merge.pk,
            "loser": loser.pk,
            "reason": merge.reason,
            "moved": {key: len(ids) for key, ids in moved["rows"].items()},
        },
    )
    CustomerMetrics.objects.filter(customer=loser).delete()
    if refresh_metrics:
        # In the merge's transaction, so the winner's 360 and segments are right at once;
        # the merged-away loser leaves every dynamic segment.
        customers_derived_refresh(customer_ids=[winner.pk, loser.pk])
    return merge


SELF_SERVICE_CONSENT_SOURCES = frozenset({"preference_centre"})
"""Sources of consent the person gave themselves (their own preference centre)."""


def _merged_consent_wins(candidate: Consent, kept: Consent) -> bool:
    """Whether the merged-away profile's consent replaces the kept one for its channel.

    The newer decision wins, except that a withdrawal is never undone by a grant the person
    did not give themselves (a file, an integration, staff on another profile): merging
    must not re-subscribe someone who opted out, just as an import never does.
    """
    candidate_newer = candidate.updated_at > kept.updated_at
    newer, older = (candidate, kept) if candidate_newer else (kept, candidate)
    if (
        newer.status == Consent.Status.GRANTED
        and older.status == Consent.Status.WITHDRAWN
        and newer.source not in SELF_SERVICE_CONSENT_SOURCES
    ):
        return older is candidate
    return newer is candidate


def _merge_consents(winner: Customer, loser: Customer, moved: dict) -> None:
    """Per channel the newest consent wins (see :func:`_merged_consent_wins`); the loser's
    history moves to the kept row."""
    theirs = {c.channel: c for c in Consent.objects.filter(customer=winner)}
    move_ids = []
    for consent in Consent.objects.filter(customer=loser):
        kept = theirs.get(consent.channel)
        if kept is None:
            move_ids.append(consent.pk)
            continue
        change_ids = list(consent.changes.values_list("pk", flat=True))
        record = {
            "deleted": serializers.serialize("json", [consent]),
            "kept": kept.pk,
            "changes": change_ids,
            "kept_before": None,
        }
        ConsentChange.objects.filter(pk__in=change_ids).update(consent=kept)
        if _merged_consent_wins(consent, kept):
            record["kept_before"] = {
                "status": kept.status,
                "source": kept.source,
                "updated_at": kept.updated_at.isoformat(),
            }
            kept.status, kept.source, kept.updated_at = (
                consent.status,
                consent.source,
                consent.updated_at,
            )
            kept.save(update_fields=["status", "source", "updated_at"])
        consent.delete()
        moved["consents"].append(record)
    if move_ids:
        Consent.objects.filter(pk__in=move_ids).update(customer=winner)
        moved["rows"]["customers.consent.customer_id"] = move_ids


def _jsonable(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


def _user(by):
    return by if getattr(by, "is_authenticated", False) else None


@transaction.atomic
def customer_merge_undo(*, merge: CustomerMerge, by) -> CustomerMerge:
    """Split a merge again: moved rows go back, deleted duplicates return with their ids.

    Only a manager (of any department) or the administrator may undo; rows created on the
    winner after the merge stay where they are.
    """
    if not can_undo_merges(by):
        raise PermissionDenied("Only a manager may undo a merge.")
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise ValidationError(f"merge #{merge.pk} was already undone")
    winner = Customer.objects.select_for_update().get(pk=merge.winner_id)
    loser = Customer.objects.select_for_update().get(pk=merge.loser_id)
    if winner.merged_into_id:
        raise ValidationError(
            f"profile #{winner.pk} has since been merged into #{winner.merged_into_id}: "
            "undo that merge first"
        )
    moved = merge.moved or {}
    models_by_label = {
        f"{f.model._meta.label_lower}.{f.attname}": f for f in _customer_references()
    }
    for key, ids in moved.get("rows", {}).items():
        field = models_by_label.get(key)
        if field is None:
            continue
        for chunk in _chunks(ids):
            field.model._base_manager.filter(pk__in=chunk, **{field.attname: winner.pk}).update(
                **{field.attname: loser.pk}
            )
    for dump in moved.get("deleted", []):
        for obj in serializers.deserialize("json", dump):
            obj.save()
    for record in moved.get("consents", []):
        for obj in serializers.deserialize("json", record["deleted"]):
            obj.save()
            restored_id = obj.object.pk
        ConsentChange.objects.filter(pk__in=record["changes"]).update(consent_id=restored_id)
        if record.get("kept_before"):
            before = record["kept_before"]
            Consent.objects.filter(pk=record["kept"]).update(
                status=before["status"],
                source=before["source"],
                updated_at=dt.datetime.fromisoformat(before["updated_at"]),
            )
    restore = moved.get("winner_fields") or {}
    if restore:
        for name, value in restore.items():
            if name == "birth_date" and value:
                value = dt.date.fromisoformat(value)
            setattr(winner, name, value)
        winner.save(update_fields=[*restore, "updated_at"])
    loser.merged_into = None
    loser.save(update_fields=["merged_into", "updated_at"])
    merge.undone_by = _user(by)
    merge.undone_at = timezone.now()
    merge.save(update_fields=["undone_by", "undone_at"])
    audit_record(
        actor=by,
        action="customer.merge_undo",
        target=winner,
        detail={"merge": merge.pk, "loser": loser.pk},
    )
    customers_derived_refresh(customer_ids=[winner.pk, loser.pk], recount=True)
    return merge


@transaction.atomic
def important_date_remove(*, important_date: ImportantDate, by=None) -> None:
    """Delete one important date (``by`` None: the person, from the preference centre)."""
    audit_record(
        actor=by,
        action="important_date.remove",
        target=important_date.customer,
        detail={"kind": important_date.kind, "self_declared": important_date.self_declared},
    )
    important_date.delete()
    customers_derived_refresh_on_commit([important_date.customer_id])
