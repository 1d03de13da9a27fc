"""Identity resolution: normalised identifiers, stitching a batch of people onto profiles.

Every way a person reaches us (email, phone, app user, POS member card, web cookie, LINE,
external DMP ID, custom) is an :class:`~customers.models.Identity`, unique per (kind, value)
across the company. That unique constraint is the arbiter between concurrent workers:
:func:`resolve_customers` maps a whole batch with one query per 10k identifiers, links the
items of the batch that share an identifier, creates the people it does not know, attaches
new identifiers to the people it does, and merges profiles that one item proves to be the
same person (oldest profile wins).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Count, Q
from django.utils import timezone

from customers.imports import db_value, insert_returning, insert_rows, model_defaults
from customers.models import Customer, CustomerMerge, Identity

MAX_VALUE_LENGTH = 255
LOOKUP_CHUNK = 10_000
_PHONE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fc\uff70().]")
_DIGITS = re.compile(r"\d+")
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"[a-z0-9-]{2,63}(?<!-)",
    re.ASCII,
)
_E164 = re.compile(r"\+[1-9][0-9]{7,14}", re.ASCII)
KINDS = frozenset(Identity.Kind.values)


class IdentifierError(ValueError):
    """An identifier that cannot be normalised; the message says why."""


def normalize_identifier(kind: str, value: str) -> str:
    """The canonical form of one identifier, as stored in ``Identity.value``.

    Email is trimmed and lower-cased with an IDNA (punycode) domain; phone becomes E.164,
    national numbers assumed Japanese (``090-1234-5678`` → ``+819012345678``); every other
    kind is trimmed only, because app, POS and cookie IDs may be case-sensitive.
    """
    if kind not in KINDS:
        raise IdentifierError(f"unknown identifier kind {kind!r}")
    if value is None:
        raise IdentifierError("is empty")
    value = str(value).strip()
    if not value:
        raise IdentifierError("is empty")
    if kind == Identity.Kind.EMAIL:
        value = _normalize_email(value)
    elif kind == Identity.Kind.PHONE:
        value = _normalize_phone(value)
    if len(value) > MAX_VALUE_LENGTH:
        raise IdentifierError(f"is longer than {MAX_VALUE_LENGTH} characters")
    return value


def _normalize_email(value: str) -> str:
    if value.isascii():
        # Fast path (an import normalises each address up to three times): a plain ASCII
        # address that this strict subset of Django's EmailValidator accepts comes out of
        # the full path below unchanged but lower-cased.
        email = value.lower()
        if len(email) <= MAX_VALUE_LENGTH and _PLAIN_EMAIL.fullmatch(email):
            return email
    # NFKC folds full-width input (ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ), common from Japanese forms.
    value = unicodedata.normalize("NFKC", value).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise IdentifierError("not a valid email address")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise IdentifierError("not a valid email address (bad domain)") from exc
    email = f"{local}@{domain}".lower()
    if len(email) > MAX_VALUE_LENGTH:
        raise IdentifierError(f"is longer than {MAX_VALUE_LENGTH} characters")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise IdentifierError("not a valid email address") from exc
    return email


def _normalize_phone(value: str) -> str:
    if _E164.fullmatch(value):  # already normalised: the result of the full path below
        return value
    value = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    international = value.startswith("+")
    digits = value[1:] if international else value
    if not digits.isascii() or not digits.isdigit():
        raise IdentifierError("not a valid phone number (only digits, spaces, - and + allowed)")
    if international:
        if digits.startswith("0") or not 8 <= len(digits) <= 15:
            raise IdentifierError("not a valid international phone number")
        return f"+{digits}"
    if digits.startswith("0") and len(digits) in (10, 11) and digits[1] != "0":
        return f"+81{digits[1:]}"
    raise IdentifierError(
        "not a valid phone number (expected a Japanese number like 090-1234-5678 "
        "or an international one starting with +)"
    )


def mask_identifier(kind: str, value: str) -> str:
    """Mask an identifier for staff without ``view_pii``; an email keeps its domain."""
    if kind == Identity.Kind.EMAIL and "@" in value:
        local, _at, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:1]}***" if value else ""


# --- resolution -------------------------------------------------------------------------

Key = tuple[str, str]


def _normalize_people(people: Sequence[Mapping[str, str]]) -> list[list[Key]]:
    """Every item's identifiers, normalised; the first bad one stops the batch."""
    items: list[list[Key]] = []
    for index, person in enumerate(people):
        keys: list[Key] = []
        for kind, raw in person.items():
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                keys.append((kind, normalize_identifier(kind, raw)))
            except IdentifierError as exc:
                raise IdentifierError(f"people[{index}].{kind}: {exc}") from exc
        if not keys:
            raise IdentifierError(f"people[{index}]: no identifier given")
        items.append(keys)
    return items


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, node):
        parent = self.parent.setdefault(node, node)
        while parent != node:
            grand = self.parent[parent]
            self.parent[node] = grand
            node, parent = parent, grand
        return node

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class _Known:
    identity_id: int
    customer_id: int


def _lookup(keys: set[Key]) -> dict[Key, _Known]:
    """Existing identities of the batch: one query per ``LOOKUP_CHUNK`` identifiers.

    Raw SQL: Django's compilation of ``value IN (…)`` with 10k parameters cost more than
    running the query.
    """
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    found: dict[Key, _Known] = {}
    pending = list(by_kind.items())
    connection = connections[router.db_for_read(Identity)]
    quote = connection.ops.quote_name
    identity = quote(Identity._meta.db_table)
    customer = quote(Customer._meta.db_table)
    select = (
        f"SELECT i.{quote('id')}, i.{quote('kind')}, i.{quote('value')}, "
        f"i.{quote('customer_id')}, c.{quote('merged_into_id')} "
        f"FROM {identity} i INNER JOIN {customer} c ON c.{quote('id')} = i.{quote('customer_id')} "
        "WHERE "
    )
    while pending:
        conditions: list[str] = []
        params: list[str] = []
        budget = LOOKUP_CHUNK
        while pending and budget:
            kind, values = pending.pop()
            take, rest = values[:budget], values[budget:]
            if rest:
                pending.append((kind, rest))
            conditions.append(
                f"(i.{quote('kind')} = %s AND i.{quote('value')} IN "
                f"({', '.join(['%s'] * len(take))}))"
            )
            params += [kind, *take]
            budget -= len(take)
        with connection.cursor() as cursor:
            cursor.execute(select + " OR ".join(conditions), params)
            rows = cursor.fetchall()
        for pk, kind, value, customer_id, merged_into_id in rows:
            # Identities move with a merge, so a merged owner only shows up mid-undo.
            found[(kind, value)] = _Known(pk, merged_into_id or customer_id)
    return found


def resolve_customers(
    *,
    people: Sequence[Mapping[str, str]],
    source: str,
    by=None,
    gained: set[int] | None = None,
) -> list[int]:
    """The customer id of each item (kind → raw value of one person), in order.

    Unknown people become new profiles (anonymous when known by a cookie only), new
    identifiers are attached, and an item linking two or more profiles merges them into
    the oldest. Invalid identifiers raise :class:`IdentifierError` naming the item and
    kind before anything is written. A concurrent worker creating the same identifier
    makes the unique constraint fail; the batch is then re-read and retried once.

    ``gained``, when given, receives the ids of profiles that existed before the call and
    were given a new identifier by it (their ``identity_count`` changed); profiles created
    by the call are not in it.
    """
    items = _normalize_people(people)
    if not items:
        return []
    for attempt in (1, 2):
        try:
            found: set[int] = set()
            with transaction.atomic():
                ids = _resolve(items, source=source[:50], by=by, gained=found)
            if gained is not None:
                gained |= found
            return ids
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _resolve(items: list[list[Key]], *, source: str, by, gained: set[int]) -> list[int]:
    from customers.services import customers_derived_refresh, customers_merge

    known = _lookup({key for keys in items for key in keys})
    links = _UnionFind()
    for index, keys in enumerate(items):
        links.find(("item", index))
        for key in keys:
            links.union(("item", index), ("key", key))
            if key in known:
                links.union(("item", index), ("customer", known[key].customer_id))

    components: dict[object, list[int]] = {}
    for index in range(len(items)):
        components.setdefault(links.find(("item", index)), []).append(index)

    winner_of: dict[object, int] = {}
    new_components: list[object] = []
    merged: set[int] = set()  # winners and losers: their metrics and segments change
    for root, indexes in components.items():
        # Which existing profiles this group of items touches, and through which identifier.
        touched: dict[int, tuple[Key, _Known]] = {}
        for index in indexes:
            for key in items[index]:
                if key in known:
                    touched.setdefault(known[key].customer_id, (key, known[key]))
        if not touched:
            new_components.append(root)
            continue
        created = {}
        if len(touched) > 1:  # a merge: the oldest profile wins
            created = dict(Customer.objects.filter(pk__in=touched).values_list("pk", "created_at"))
        ordered = sorted(touched.items(), key=lambda kv: (created.get(kv[0], 0), kv[0]))
        winner_id, (winner_key, _w) = ordered[0]
        winner_of[root] = winner_id
        if len(ordered) > 1:
            winner = Customer.objects.get(pk=winner_id)
            for loser_id, (loser_key, _l) in ordered[1:]:
                reason = (
                    f"{source}: one record holds {winner_key[0]} "
                    f"{mask_identifier(*winner_key)} of #{winner_id} and {loser_key[0]} "
                    f"{mask_identifier(*loser_key)} of #{loser_id}"
                )
                customers_merge(
                    winner=winner,
                    loser=Customer.objects.get(pk=loser_id),
                    by=by,
                    reason=reason[:200],
                    refresh_metrics=False,
                )
                merged.add(loser_id)
            merged.add(winner_id)

    if new_components:
        flags = [
            all(
                kind == Identity.Kind.COOKIE
                for index in components[root]
                for kind, _value in items[index]
            )
            for root in new_components
        ]
        for root, customer_id in zip(new_components, _create_customers(flags), strict=True):
            winner_of[root] = customer_id

    now = timezone.now()
    new_roots = set(new_components)
    new_identities: dict[Key, int] = {}
    newly_known_people: set[int] = set()
    for root, indexes in components.items():
        customer_id = winner_of[root]
        for index in indexes:
            for key in items[index]:
                if key not in known and key not in new_identities:
                    new_identities[key] = customer_id
                    if root not in new_roots:
                        gained.add(customer_id)
                    if key[0] != Identity.Kind.COOKIE and root not in new_roots:
                        newly_known_people.add(customer_id)
    stamp = db_value(Identity, "last_seen_at", now)
    insert_rows(
        Identity,
        ["customer", "kind", "value"],
        [(customer_id, kind, value) for (kind, value), customer_id in new_identities.items()],
        constants={"source": source, "first_seen_at": stamp, "last_seen_at": stamp},
    )
    seen = [entry.identity_id for entry in known.values()]
    for start in range(0, len(seen), LOOKUP_CHUNK):
        Identity.objects.filter(pk__in=seen[start : start + LOOKUP_CHUNK]).update(last_seen_at=now)
    if newly_known_people:
        # A cookie-only profile that now has an email or phone is no longer anonymous.
        ids = list(newly_known_people)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            Customer.objects.filter(
                pk__in=ids[start : start + LOOKUP_CHUNK], is_anonymous=True
            ).update(is_anonymous=False)
    if merged:
        # Losers included: leaving their segments is what triggers the exact recount.
        customers_derived_refresh(customer_ids=merged)
    return [winner_of[links.find(("item", index))] for index in range(len(items))]


def _create_customers(anonymous: list[bool]) -> list[int]:
    """Insert one default profile per flag (``is_anonymous``); their ids, in order.

    Raw multi-row inserts (see ``customers.imports.insert_returning``) instead of
    ``bulk_create``, whose per-object Python work cost more than the database at 10k rows.
    Every column gets its model default; each row a fresh ``uuid``, by which ids are matched.
    """
    constants = model_defaults(Customer, exclude={"uuid", "is_anonymous"}, now=timezone.now())
    native_uuid = connections[router.db_for_write(Customer)].features.has_native_uuid_field
    uuids = [uuid.uuid4() if native_uuid else uuid.uuid4().hex for _flag in anonymous]
    returned = {
        key: pk
        for pk, key in insert_returning(
            Customer,
            ["uuid", "is_anonymous"],
            list(zip(uuids, anonymous, strict=True)),
            returning=["id", "uuid"],
            constants=constants,
        )
    }
    return [returned[key] for key in uuids]


# --- merge candidates -------------------------------------------------------------------


@dataclass(frozen=True)
class MergeCandidate:
    """Two unmerged profiles that look like one person; ``first`` is the older one."""

    first: Customer
    second: Customer
    reason: str
    kind: str  # "phone" or "name_birth_date"


def merge_candidates(*, limit: int = 50) -> list[MergeCandidate]:
    """Pairs of unmerged profiles for human review, oldest pairs first.

    Two signals: a phone number stored under another kind (a POS member number or custom
    ID that normalises to the same E.164 phone as another profile's phone identity), and
    the same family name, given name and birth date. Pairs whose merge a manager undid are
    left out: someone already decided they are two people.
    """
    pairs: dict[tuple[int, int], tuple[str, str]] = {}
    _phone_pairs(pairs, limit)
    if len(pairs) < limit:
        _name_birth_pairs(pairs, limit)
    undone = set(
        CustomerMerge.objects.filter(undone_at__isnull=False).values_list("winner_id", "loser_id")
    )
    keep = [(a, b) for a, b in pairs if (a, b) not in undone and (b, a) not in undone][:limit]
    customers = Customer.objects.in_bulk({pk for pair in keep for pk in pair})
    result = []
    for a, b in keep:
        reason, kind = pairs[(a, b)]
        first, second = sorted((customers[a], customers[b]), key=lambda c: (c.created_at, c.pk))
        result.append(MergeCandidate(first=first, second=second, reason=reason, kind=kind))
    return result


def _phone_pairs(pairs: dict, limit: int) -> None:
    phone_like = (
        Identity.objects.exclude(kind=Identity.Kind.PHONE)
        .filter(Q(value__startswith="0") | Q(value__startswith="+"))
        .filter(customer__merged_into__isnull=True)
        .values_list("customer_id", "kind", "value")[: limit * 20]
    )
    by_phone: dict[str, list[tuple[int, str]]] = {}
    for customer_id, kind, value in phone_like:
        try:
            phone = normalize_identifier(Identity.Kind.PHONE, value)
        except IdentifierError:
            continue
        by_phone.setdefault(phone, []).append((customer_id, kind))
    if not by_phone:
        return
    owners = Identity.objects.filter(
        kind=Identity.Kind.PHONE, value__in=list(by_phone), customer__merged_into__isnull=True
    ).values_list("value", "customer_id")
    for phone, owner_id in owners:
        for customer_id, kind in by_phone[phone]:
            if customer_id != owner_id:
                pair = tuple(sorted((customer_id, owner_id)))
                pairs.setdefault(pair, (f"same phone (as {kind} and phone)", "phone"))
                if len(pairs) >= limit:
                    return


def _name_birth_pairs(pairs: dict, limit: int) -> None:
    unmerged = Customer.objects.filter(merged_into__isnull=True, birth_date__isnull=False).exclude(
        Q(family_name="") | Q(given_name="")
    )
    groups = (
        unmerged.order_by()
        .values("family_name", "given_name", "birth_date")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)[:limit]
    )
    condition = Q()
    for group in groups:
        condition |= Q(
            family_name=group["family_name"],
            given_name=group["given_name"],
            birth_date=group["birth_date"],
        )
    if not condition:
        return
    members: dict[tuple, list[int]] = {}
    for pk, family, given, birth in (
        unmerged.filter(condition)
        .order_by("pk")
        .values_list("pk", "family_name", "given_name", "birth_date")
    ):
        members.setdefault((family, given, birth), []).append(pk)
    for ids in members.values():
        for other in ids[1:]:
            pairs.setdefault((ids[0], other), ("same name and birth date", "name_birth_date"))
            if len(pairs) >= limit:
                return
