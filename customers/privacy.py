"""Data-subject requests (APPI, GDPR) and retention of custom attributes.

A person may ask for everything we hold about them (``subject_export``) and to be
forgotten (``subject_erase``). Erasure blanks what identifies the person and keeps the
aggregates reports need (orders' amounts, events' types and times, metrics); each of their
identifiers survives only as a keyed hash in ``ErasedIdentifier``, so an address of an
erased person that comes back through an import is still never contacted.

Circle ① cannot import the outer circles, yet their rows (events, orders, deliveries,
staff tasks…) are about the person too: each outer app registers a *subject section* from
its ``AppConfig.ready`` with :func:`register_subject_section`, saying how to export and how
to erase its part.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Func, JSONField, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce, Greatest
from django.utils import timezone

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from config.org.services import audit_record
from customers.identity import normalize_identifier
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerMetrics,
    ErasedIdentifier,
    Identity,
    ImportantDate,
    LifeEvent,
    SegmentMembership,
)
from customers.services import PROFILE_FIELDS as EDITABLE_PROFILE_FIELDS

EXPORT_FORMAT = "customer-circle/subject-export/1"
ERASURE_SOURCE = "erasure"
# Keys of a life situation's ``detail`` that describe the detecting rule, not the person.
LIFE_EVENT_KEPT_DETAIL = ("rule_id", "rule_name", "event_type")
RETENTION_BATCH = 1_000

# The editable profile fields, and what the system keeps about the person beside them.
PROFILE_FIELDS = (*EDITABLE_PROFILE_FIELDS, "time_zone", "lifecycle_stage", "is_anonymous")
# What erasure blanks on the profile row (language and lifecycle stage are aggregates).
ERASED_FIELDS = {
    "family_name": "",
    "given_name": "",
    "family_name_kana": "",
    "given_name_kana": "",
    "birth_date": None,
    "gender": "",
    "postal_code": "",
    "prefecture": "",
    "city": "",
    "time_zone": "",
}


# --- who may --------------------------------------------------------------------------------


def can_handle_subject_requests(user) -> bool:
    """A manager of any department who may also read personal data, or the administrator."""
    if not (user and user.is_authenticated):
        return False
    if user.is_superuser:
        return True
    return has_role_anywhere(user, Role.MANAGER) and user.has_perm("customers.view_pii")


# --- keyed hashes of identifiers ------------------------------------------------------------


def _digest(normalised: str) -> str:
    key = (getattr(settings, "PII_HASH_KEY", "") or settings.SECRET_KEY).encode()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def identifier_digest(kind: str, value: str) -> str:
    """HMAC-SHA256 (hex, ``settings.PII_HASH_KEY``) of the identifier normalised as ``kind``.

    Raises ``customers.identity.IdentifierError`` when ``value`` is not a valid identifier.
    """
    return _digest(normalize_identifier(kind, value))


def erased_digests(kind: str, values: Iterable[str]) -> set[str]:
    """The ``values`` (already normalised as ``kind``) that belong to an erased person.

    One query whatever the number of values; none when there are none.
    """
    by_digest = {_digest(value): value for value in values if value}
    if not by_digest:
        return set()
    found = ErasedIdentifier.objects.filter(kind=kind, digest__in=list(by_digest)).values_list(
        "digest", flat=True
    )
    return {by_digest[digest] for digest in found}


# --- the registry of outer circles' sections ------------------------------------------------

SectionExport = Callable[[Customer], list[dict]]
SectionErase = Callable[[Customer], None]


@dataclass(frozen=True)
class SubjectSection:
    """An outer circle's part of a person: how to export it and how to erase it."""

    name: str
    export: SectionExport
    erase: SectionErase | None = None


_SECTIONS: dict[str, SubjectSection] = {}


def register_subject_section(
    name: str, export: SectionExport, erase: SectionErase | None = None
) -> SubjectSection:
    """Add (or replace, by name) a section of the subject export and erasure.

    ``export(customer)`` returns JSON-ready rows about that one profile; ``erase(customer)``
    removes its personal data and keeps its aggregates. Both are called once per profile of
    the person (the profile asked for and every profile merged into it), inside the erasure's
    transaction. Registered from an ``AppConfig.ready()``.
    """
    section = SubjectSection(name=name, export=export, erase=erase)
    _SECTIONS[name] = section
    return section


def register_model_section(
    name: str,
    model,
    *,
    fields: Iterable[str],
    customer_field: str = "customer",
    erase: dict[str, Any] | None = None,
) -> SubjectSection:
    """Register the usual section: one model's rows of the person, ``fields`` exported
    (``values()`` lookups, so ``campaign__name`` works), and on erasure one ``UPDATE``
    setting ``erase`` (field → blank value) on them; no ``erase`` keeps the rows as they are.
    """
    fields = tuple(fields)

    def rows(customer: Customer) -> QuerySet:
        return model._default_manager.filter(**{customer_field: customer})

    def export_rows(customer: Customer) -> list[dict]:
        return list(rows(customer).order_by("pk").values(*fields))

    def erase_rows(customer: Customer) -> None:
        rows(customer).update(**erase)

    return register_subject_section(name, export_rows, erase_rows if erase else None)


def subject_sections() -> list[SubjectSection]:
    return [_SECTIONS[name] for name in sorted(_SECTIONS)]


# --- export ---------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Dates as ISO 8601, yen amounts as integers, UUIDs as text: ready for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def person_profiles(customer: Customer) -> list[Customer]:
    """The profile and every profile merged into it (through chains of merges), oldest first."""
    found = {customer.pk: customer}
    frontier = [customer.pk]
    while frontier:
        merged = [
            c for c in Customer.objects.filter(merged_into_id__in=frontier) if c.pk not in found
        ]
        found.update((c.pk, c) for c in merged)
        frontier = [c.pk for c in merged]
    return [found[pk] for pk in sorted(found)]


def _profile(customer: Customer) -> dict:
    return {
        "id": customer.pk,
        "uuid": str(customer.uuid),
        **{name: getattr(customer, name) for name in PROFILE_FIELDS},
        "merged_into": customer.merged_into_id,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "erased_at": customer.erased_at,
    }


def _attributes(profiles: list[Customer]) -> list[dict]:
    definitions = AttributeDefinition.objects.in_bulk(
        {key for customer in profiles for key in customer.attributes}, field_name="key"
    )
    rows = []
    for customer in profiles:
        for key, value in sorted(customer.attributes.items()):
            definition = definitions.get(key)
            rows.append(
                {
                    "customer_id": customer.pk,
                    "key": key,
                    "value": value,
                    "label": definition.label if definition else "",
                    "purpose": definition.purpose if definition else "",
                    "retention_days": definition.retention_days if definition else None,
                }
            )
    return rows


def _consents(ids: list[int]) -> list[dict]:
    consents = (
        Consent.objects.filter(customer_id__in=ids)
        .order_by("customer_id", "channel")
        .prefetch_related("changes__changed_by")
    )
    return [
        {
            "customer_id": consent.customer_id,
            "channel": consent.channel,
            "status": consent.status,
            "source": consent.source,
            "updated_at": consent.updated_at,
            "history": [
                {
                    "status": change.status,
                    "source": change.source,
                    "changed_at": change.changed_at,
                    "changed_by": change.changed_by.get_username() if change.changed_by else None,
                }
                for change in sorted(consent.changes.all(), key=lambda c: (c.changed_at, c.pk))
            ],
        }
        for consent in consents
    ]


def _metrics(ids: list[int]) -> list[dict]:
    fields = [
        f.attname for f in CustomerMetrics._meta.concrete_fields if f.attname != "customer_id"
    ]
    return list(
        CustomerMetrics.objects.filter(customer_id__in=ids)
        .order_by("customer_id")
        .values("customer_id", *fields)
    )


def _values(queryset: QuerySet, *fields: str) -> list[dict]:
    return list(queryset.order_by("pk").values(*fields))


def subject_export(*, customer: Customer, by) -> dict:
    """Everything held about the person, as JSON-ready data, for a data-subject request.

    Covers the profile and every profile merged into it: identifiers, consents with their
    full history, important dates, custom attributes (with each definition's label,
    purpose and retention), life situations, metrics, segment memberships, and every
    registered outer-circle section (events, orders, surveys, deliveries…). Audited as
    ``customer.subject_export``.
    """
    profiles = person_profiles(customer)
    ids = [p.pk for p in profiles]
    data = {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now(),
        "customer": _profile(customer),
        "merged_profiles": [_profile(p) for p in profiles if p.pk != customer.pk],
        "identities": _values(
            Identity.objects.filter(customer_id__in=ids),
            "customer_id",
            "kind",
            "value",
            "source",
            "first_seen_at",
            "last_seen_at",
        ),
        "consents": _consents(ids),
        "important_dates": _values(
            ImportantDate.objects.filter(customer_id__in=ids),
            "customer_id",
            "kind",
            "label",
            "year",
            "month",
            "day",
            "self_declared",
        ),
        "attributes": _attributes(profiles),
        "life_events": _values(
            LifeEvent.objects.filter(customer_id__in=ids),
            "customer_id",
            "kind",
            "detected_at",
            "source",
            "confidence",
            "detail",
            "handled_at",
        ),
        "metrics": _metrics(ids),
        "segments": _values(
            SegmentMembership.objects.filter(customer_id__in=ids),
            "customer_id",
            "segment_id",
            "segment__name",
            "segment__owner_department__name",
            "added_at",
        ),
        "sections": {
            section.name: [row for p in profiles for row in section.export(p)]
            for section in subject_sections()
        },
    }
    for row in data["segments"]:
        row["segment"] = row.pop("segment__name")
        row["department"] = row.pop("segment__owner_department__name")
    audit_record(
        actor=by,
        action="customer.subject_export",
        target=customer,
        detail={"profiles": ids, "sections": sorted(data["sections"])},
    )
    return jsonable(data)


# --- erasure --------------------------------------------------------------------------------


def _scrub_life_events(ids: list[int]) -> None:
    changed = []
    for life_event in LifeEvent.objects.filter(customer_id__in=ids).exclude(detail={}):
        kept = {k: v for k, v in life_event.detail.items() if k in LIFE_EVENT_KEPT_DETAIL}
        if kept != life_event.detail:
            life_event.detail = kept
            changed.append(life_event)
    LifeEvent.objects.bulk_update(changed, ["detail"], batch_size=500)


def _scrub_merges(ids: list[int]) -> None:
    """Merge records keep what they moved for an undo: field values and copies of rows."""
    merges = CustomerMerge.objects.filter(winner_id__in=ids) | CustomerMerge.objects.filter(
        loser_id__in=ids
    )
    changed = []
    for merge in merges.distinct():
        moved = dict(merge.moved or {})
        if moved.get("winner_fields") or moved.get("deleted"):
            moved["winner_fields"], moved["deleted"] = {}, []
            merge.moved = moved
            changed.append(merge)
    CustomerMerge.objects.bulk_update(changed, ["moved"], batch_size=100)


def _withdraw_consents(ids: list[int], *, by, at: dt.datetime) -> int:
    granted = list(
        Consent.objects.filter(customer_id__in=ids).exclude(status=Consent.Status.WITHDRAWN)
    )
    if not granted:
        return 0
    Consent.objects.filter(pk__in=[c.pk for c in granted]).update(
        status=Consent.Status.WITHDRAWN, source=ERASURE_SOURCE, updated_at=at
    )
    ConsentChange.objects.bulk_create(
        ConsentChange(
            consent=consent,
            status=Consent.Status.WITHDRAWN,
            source=ERASURE_SOURCE,
            changed_by=by if getattr(by, "is_authenticated", False) else None,
            changed_at=at,
        )
        for consent in granted
    )
    return len(granted)


def _erase_identities(ids: list[int]) -> int:
    identities = list(
        Identity.objects.filter(customer_id__in=ids).values_list("pk", "kind", "value")
    )
    if not identities:
        return 0
    ErasedIdentifier.objects.bulk_create(
        [ErasedIdentifier(kind=kind, digest=_digest(value)) for _pk, kind, value in identities],
        ignore_conflicts=True,
    )
    Identity.objects.filter(pk__in=[pk for pk, _kind, _value in identities]).delete()
    return len(identities)


@transaction.atomic
def subject_erase(*, customer: Customer, by, reason: str = "") -> None:
    """Forget the person on request; idempotent.

    For the profile and every profile merged into it: names, kana, birth date, gender,
    address and time zone are blanked; custom attributes and important dates removed;
    each identifier replaced by its keyed hash in ``ErasedIdentifier`` and deleted;
    consents withdrawn (source ``erasure``); free text of life situations and of merge
    records removed; each registered outer-circle section erases its part (event
    properties, survey comments, delivery addresses, staff-task notes). Aggregates stay:
    orders' amounts, events' types and times, metrics, segment counts. ``erased_at`` keeps
    the time of the first erasure. Audited as ``customer.erase`` with the reason and counts
    only, never the erased values.
    """
    now = timezone.now()
    profiles = person_profiles(customer)
    ids = [p.pk for p in profiles]
    list(Customer.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
    already = all(p.erased_at is not None for p in profiles)

    identifiers = _erase_identities(ids)
    withdrawn = _withdraw_consents(ids, by=by, at=now)
    dates, _ = ImportantDate.objects.filter(customer_id__in=ids).delete()
    _scrub_life_events(ids)
    _scrub_merges(ids)
    Customer.objects.filter(pk__in=ids).update(**ERASED_FIELDS, attributes={}, updated_at=now)
    Customer.objects.filter(pk__in=ids, erased_at__isnull=True).update(erased_at=now)
    for profile in profiles:
        for section in subject_sections():
            if section.erase is not None:
                section.erase(profile)

    audit_record(
        actor=by,
        action="customer.erase",
        target=customer,
        detail={
            "reason": (reason or "").strip()[:200],
            "profiles": ids,
            "identifiers": identifiers,
            "consents_withdrawn": withdrawn,
            "important_dates": dates,
            "repeated": already,
        },
    )
    from customers.services import customers_derived_refresh_on_commit

    customers_derived_refresh_on_commit(ids)
    customer.refresh_from_db()


# --- retention of custom attributes -----------------------------------------------------------


def _without_key(key: str) -> Func:
    """``attributes`` with one top-level key removed, in the database's own JSON functions."""
    if connection.vendor == "postgresql":
        return Func(
            F("attributes"),
            Cast(Value(key), TextField()),
            template="(%(expressions)s)",
            arg_joiner=" - ",
            output_field=JSONField(),
        )
    return Func(
        F("attributes"),
        Value(f'$."{key}"'),  # keys are slugs: no quote to escape
        function="json_remove",
        output_field=JSONField(),
    )


def last_activity():
    """The latest of the person's last event and last order, else when the profile was made.

    Each side of ``GREATEST`` is coalesced, because SQLite's answers NULL if any argument is.
    """
    event, order, created = "metrics__last_event_at", "metrics__last_order_at", "created_at"
    return Greatest(Coalesce(event, order, created), Coalesce(order, event, created))


def attribute_retention_apply(*, now: dt.datetime | None = None) -> int:
    """Remove each value of an attribute with ``retention_days`` once the person's last
    activity (see :func:`last_activity`) is older than that; returns the values removed.

    Set-based: per definition, the ids of up to ``RETENTION_BATCH`` expired holders are
    read and the key removed from all of them in one ``UPDATE`` (``jsonb - key`` on
    PostgreSQL, ``json_remove`` on SQLite), until none are left.
    """
    now = now or timezone.now()
    removed = 0
    definitions = AttributeDefinition.objects.filter(retention_days__isnull=False).order_by("key")
    for definition in definitions:
        cutoff = now - dt.timedelta(days=definition.retention_days)
        expired = (
            Customer.objects.filter(attributes__has_key=definition.key)
            .alias(active=last_activity())
            .filter(active__lt=cutoff)
            .order_by()
        )
        done: set[int] = set()
        while True:
            ids = list(expired.values_list("pk", flat=True)[:RETENTION_BATCH])
            if not ids or done.issuperset(ids):  # nothing left (or a key it cannot remove)
                break
            done.update(ids)
            with transaction.atomic():
                removed += Customer.objects.filter(pk__in=ids).update(
                    attributes=_without_key(definition.key)
                )
    return removed
