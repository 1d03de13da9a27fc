"""Reads of circle ①: headline figures, search, the customer 360 page and the preference centre.

Customer profiles are company-wide (the customer is the centre), so these reads take no
department scope; who may see personal data unmasked is decided by ``can_view_pii``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from dataclasses import dataclass

from django.core import signing
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext as _

from customers.identity import IdentifierError, mask_identifier, normalize_identifier
from customers.models import (
    Channel,
    Customer,
    CustomerMerge,
    CustomerMetrics,
    Identity,
    ImportantDate,
    LifeEvent,
    Segment,
)


def customer_headline() -> dict[str, int | float | None]:
    """Customers (profiles merged into others excluded) and the % known by 2+ identifiers.

    One aggregate query: the identifier count is grouped once over the identity index and
    used as an ``IN`` set, so no per-customer work happens in Python.
    """
    known_twice = (
        Identity.objects.order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values("customer_id")
    )
    totals = Customer.objects.filter(merged_into__isnull=True).aggregate(
        total=Count("pk"), multi=Count("pk", filter=Q(pk__in=known_twice))
    )
    total = totals["total"]
    return {
        "customers_total": total,
        "customers_multi_identifier_pct": (
            round(totals["multi"] * 100 / total, 1) if total else None
        ),
    }


def can_view_pii(user) -> bool:
    """Personal data (names, identifiers, dates) is shown unmasked only with ``view_pii``.

    One rule for pages, API and exports; administrators hold every permission.
    """
    return bool(user.is_authenticated and user.has_perm("customers.view_pii"))


# --- Masking: one helper for pages, API and exports ------------------------------------

MASK = "***"


def mask_text(value: str) -> str:
    """Keep the first character so staff can tell records apart; hide the rest."""
    return f"{value[:1]}{MASK}" if value else ""


# --- Search ---------------------------------------------------------------------------

SEARCH_MAX_LENGTH = 100
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}


def identifier_search_q(q: str) -> Q | None:
    """``Identity`` rows whose (kind, value) equals ``q`` normalised as that kind.

    One OR of exact (kind, value) pairs, each answered by the unique index; ``None`` when
    ``q`` cannot be an identifier of any kind.
    """
    pairs: dict[tuple[str, str], None] = {}
    for kind in Identity.Kind.values:
        try:
            pairs[(kind, normalize_identifier(kind, q))] = None
        except IdentifierError:
            continue
    if not pairs:
        return None
    condition = Q()
    for kind, value in pairs:
        condition |= Q(kind=kind, value=value)
    return condition


def _katakana(text: str) -> str:
    return text.translate(_HIRAGANA_TO_KATAKANA)


def _prefix_q(field: str, prefix: str) -> Q:
    """``field`` starts with ``prefix`` (case-sensitive), written as an index range.

    ``field >= prefix AND field < prefix with its last character bumped`` is answered by a
    plain btree index on SQLite and PostgreSQL alike (``LIKE`` is not, for non-ASCII text on
    SQLite or for a non-C collation on PostgreSQL). In code-point order (SQLite's BINARY,
    PostgreSQL's C collation) the range is exactly the prefix; the ``startswith`` kept
    beside it only rechecks the rows the range found, for databases sorted otherwise.
    """
    last = ord(prefix[-1])
    upper = prefix[:-1] + chr(last + 1) if last < 0x10FFFF else prefix + chr(0x10FFFF)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": upper, f"{field}__startswith": prefix})


def _letter_cases(word: str) -> list[str]:
    """The spellings a name typed as ``word`` is stored in: as typed, Capitalised, UPPER, lower."""
    return list(dict.fromkeys((word, word.capitalize(), word.upper(), word.lower())))


def name_search_q(q: str) -> Q:
    """Every word of ``q`` starts the family or given name, in kanji, kana or latin letters.

    Words match in either order; hiragana finds katakana readings; a word typed without a
    space ("山田花子") also matches family name + given name. Latin names match as typed,
    Capitalised, UPPER or lower case ("brown" finds "Brown"; "McDonald" needs its capital
    D). Every term is a prefix range or an equality on one name column, so the OR becomes
    one index probe per term (SQLite MULTI-INDEX OR, PostgreSQL BitmapOr), never a scan.
    """
    condition = Q()
    for word in q.split():
        kana = _katakana(word)
        word_q = Q()
        for spelling in _letter_cases(word):
            word_q |= _prefix_q("family_name", spelling) | _prefix_q("given_name", spelling)
        word_q |= _prefix_q("family_name_kana", kana) | _prefix_q("given_name_kana", kana)
        if not word.isascii() and 2 <= len(word) <= 12:
            for split in range(1, len(word)):
                word_q |= Q(family_name=word[:split], given_name__startswith=word[split:])
                word_q |= Q(family_name_kana=kana[:split], given_name_kana__startswith=kana[split:])
        condition &= word_q
    return condition


def looks_like_a_name(q: str) -> bool:
    """Names carry no digits and no "@": such a search is an identifier only (and fast)."""
    return "@" not in q and not any(character.isdigit() for character in q)


def normalize_search(q: str) -> str:
    """Full-width letters and digits, half-width kana and ideographic spaces made uniform."""
    return unicodedata.normalize("NFKC", q).strip()[:SEARCH_MAX_LENGTH]


def customer_list(*, q: str = "", stage: str = "", search_names: bool = True) -> QuerySet[Customer]:
    """Unmerged customers, newest first, with their identifier count.

    ``q`` finds any identifier exactly (email, phone, member ID… normalised per kind) and,
    with ``search_names``, names (see ``name_search_q``). Identifier search reveals nothing
    the searcher did not already know, so it is open to everyone; name search is for staff
    who may read names. ``stage`` narrows to one lifecycle stage. The identifier count is a
    correlated sub-query, so a page of 50 costs 50 index probes, not a grouped scan.
    """
    identity_count = (
        Identity.objects.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    customers = Customer.objects.filter(merged_into__isnull=True).annotate(
        identity_count=Coalesce(Subquery(identity_count, output_field=IntegerField()), 0)
    )
    if stage:
        customers = customers.filter(lifecycle_stage=stage)
    q = normalize_search(q)
    if q:
        identifiers = identifier_search_q(q)
        matches = [
            Identity.objects.filter(identifiers).order_by().values("customer_id")
            if identifiers is not None
            else None,
            # Its own sub-query, so the ANDed words cannot turn the outer OR into a scan.
            Customer.objects.filter(name_search_q(q)).order_by().values("pk")
            if search_names and looks_like_a_name(q)
            else None,
        ]
        matches = [match for match in matches if match is not None]
        if not matches:
            return customers.none()
        found = matches[0] if len(matches) == 1 else matches[0].union(matches[1])
        customers = customers.filter(pk__in=found)
    return customers.order_by("-created_at", "-pk")


# --- The customer 360 page ---------------------------------------------------------------


def erased_name(customer: Customer) -> str:
    """What pages call a person whose data was erased on request."""
    return _("Erased person #%(id)s") % {"id": customer.pk}


def customer_for_profile(pk: int) -> Customer:
    """One profile with its metrics, or 404; merged profiles are returned as they are."""
    try:
        return Customer.objects.select_related("metrics").get(pk=pk)
    except Customer.DoesNotExist as exc:
        raise Http404 from exc


def customer_merge_winner(customer: Customer) -> Customer:
    """The profile a merged one now lives in (following chains of merges)."""
    seen = {customer.pk}
    while customer.merged_into_id is not None and customer.merged_into_id not in seen:
        seen.add(customer.merged_into_id)
        customer = Customer.objects.get(pk=customer.merged_into_id)
    return customer


def customer_metrics_or_none(customer: Customer) -> CustomerMetrics | None:
    try:
        return customer.metrics
    except CustomerMetrics.DoesNotExist:
        return None


@dataclass(frozen=True)
class ConsentRow:
    channel: str
    label: str
    status: str  # "granted", "withdrawn" or "" (never asked)
    status_label: str
    source: str
    updated_at: dt.datetime | None


def customer_consents(customer: Customer) -> list[ConsentRow]:
    """The current consent for every channel, with when and through what it last changed."""
    by_channel = {consent.channel: consent for consent in customer.consents.all()}
    rows = []
    for channel, label in Channel.choices:
        consent = by_channel.get(channel)
        rows.append(
            ConsentRow(
                channel=channel,
                label=str(label),
                status=consent.status if consent else "",
                status_label=str(consent.get_status_display()) if consent else "",
                source=consent.source if consent else "",
                updated_at=consent.updated_at if consent else None,
            )
        )
    return rows


@dataclass(frozen=True)
class IdentifierRow:
    kind: str
    kind_label: str
    value: str
    source: str
    last_seen_at: dt.datetime | None


@dataclass(frozen=True)
class DateRow:
    kind_label: str
    label: str
    date: str
    self_declared: bool


@dataclass
class CustomerProfile:
    """Everything the 360 header shows, personal data already masked when it must be."""

    customer: Customer
    show_pii: bool
    name: str
    name_kana: str
    metrics: CustomerMetrics | None
    identifiers: list[IdentifierRow]
    consents: list[ConsentRow]
    important_dates: list[DateRow]
    life_events: list[LifeEvent]
    segments: list[Segment]
    merges: list[CustomerMerge]


def customer_profile(customer: Customer, *, user) -> CustomerProfile:
    """The 360 header of one profile for ``user``: six small indexed queries.

    Segments are the materialised memberships of segments the user may see; other
    departments' segments stay hidden, as everywhere.
    """
    show_pii = can_view_pii(user)
    kana = " ".join(part for part in (customer.family_name_kana, customer.given_name_kana) if part)
    identifiers = [
        IdentifierRow(
            kind=identity.kind,
            kind_label=str(identity.get_kind_display()),
            value=identity.value if show_pii else mask_identifier(identity.kind, identity.value),
            source=identity.source,
            last_seen_at=identity.last_seen_at,
        )
        for identity in customer.identities.order_by("kind", "pk")
    ]
    dates = [
        DateRow(
            kind_label=str(date.get_kind_display()),
            label=date.label if show_pii else mask_text(date.label),
            date=(
                (f"{date.year}-" if date.year else "") + f"{date.month:02d}-{date.day:02d}"
                if show_pii
                else MASK
            ),
            self_declared=date.self_declared,
        )
        for date in customer.important_dates.order_by("month", "day", "pk")
    ]
    segments = list(
        Segment.objects.visible_to(user)
        .filter(memberships__customer_id=customer.pk)
        .select_related("owner_department")
        .order_by("name")
    )
    merges = list(
        CustomerMerge.objects.filter(winner=customer, undone_at__isnull=True).order_by("-merged_at")
    )
    name = customer.full_name if show_pii else mask_text(customer.full_name)
    if customer.erased_at is not None:
        name = erased_name(customer)
    return CustomerProfile(
        customer=customer,
        show_pii=show_pii,
        name=name,
        name_kana=kana if show_pii else mask_text(kana),
        metrics=customer_metrics_or_none(customer),
        identifiers=identifiers,
        consents=customer_consents(customer),
        important_dates=dates,
        life_events=list(customer.life_events.order_by("-detected_at")[:20]),
        segments=segments,
        merges=merges,
    )


# --- The preference centre ----------------------------------------------------------------

PREFERENCE_SALT = "preference-centre"
PREFERENCE_MAX_AGE = dt.timedelta(days=60)


def preference_token(customer: Customer) -> str:
    """A signed, expiring token naming the person; the only key to their preference centre."""
    return signing.dumps(str(customer.uuid), salt=PREFERENCE_SALT)


def customer_for_preference_token(token: str) -> Customer | None:
    """The (surviving) profile a preference-centre token names, or None if it is not valid.

    Tampered, expired and unknown tokens all answer None, so nothing is revealed.
    """
    try:
        value = signing.loads(token, salt=PREFERENCE_SALT, max_age=PREFERENCE_MAX_AGE)
        customer_uuid = uuid.UUID(value)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    customer = Customer.objects.filter(uuid=customer_uuid).first()
    return customer_merge_winner(customer) if customer else None


def preference_dates(customer: Customer) -> QuerySet[ImportantDate]:
    """The dates the person gave us themselves: the only ones the preference centre shows."""
    return customer.important_dates.filter(self_declared=True).order_by("month", "day", "pk")
