"""Commerce state kept from events: carts, favourites, product price and stock changes.

Carts and favourites are *derived* from the behaviour log, never edited by hand: the
ingestion pipeline calls :func:`carts_rebuild` and :func:`favorites_sync` with the customers
whose cart or favourite events were stored, and both recompute the state from the events,
so running them twice, or with events that arrived out of order, gives the same rows.

Product price and stock change only through :func:`product_update` (one product: the
dashboard, the API, the admin) and :func:`products_upsert` (many: the store system's
nightly file). Both record a :class:`~experience.models.ProductChange` for every price or
stock that moved, which is what back-in-stock and price-drop triggers read
(:func:`favorited_products_restocked`, :func:`price_drops`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _t

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from config.org.services import audit_record
from customers.imports import db_value, insert_rows, update_rows
from experience.models import (
    Cart,
    CartItem,
    Event,
    EventType,
    Favorite,
    Order,
    Product,
    ProductChange,
)

CHUNK = 500
"""Customers handled per batch of :func:`carts_rebuild` / :func:`favorites_sync`."""
SKU_CHUNK = 2_000
"""SKUs read per query by :func:`products_upsert` (SQLite's variable limit)."""

ADD_TO_CART = "add_to_cart"
REMOVE_FROM_CART = "remove_from_cart"
CONVERSIONS = ("purchase", "checkout_completed")
FAVORITE_ADDED = "favorite_added"
FAVORITE_REMOVED = "favorite_removed"

EDITABLE_FIELDS = ("name", "category", "price", "stock", "is_active")
TRACKED_FIELDS = (ProductChange.Field.PRICE, ProductChange.Field.STOCK)
NEW_PRODUCT_FIELDS = ("name", "category", "price")


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    ordered = sorted({int(pk) for pk in ids})
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _type_ids(names: Iterable[str]) -> dict[str, int]:
    return dict(EventType.objects.filter(name__in=list(names)).values_list("name", "pk"))


def _positive_int(value: Any, default: int = 1) -> int | None:
    """A quantity from event properties (numbers may arrive as 2.0); ``None`` when unusable."""
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value() or number < 1:
        return None
    return int(number)


def _yen(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount.quantize(Decimal(1))


# --------------------------------------------------------------------------- carts


@dataclass
class _Line:
    product_id: int
    quantity: int
    unit_price: Decimal
    added_at: dt.datetime


@dataclass
class _CartState:
    updated_at: dt.datetime | None = None
    last_add_at: dt.datetime | None = None
    touchpoint_id: int | None = None
    converted: dt.datetime | None = None
    lines: dict[int, _Line] = field(default_factory=dict)


def carts_rebuild(*, customer_ids: Collection[int]) -> None:
    """Recompute the current cart of each customer from their cart events; idempotent.

    The cart is the ``add_to_cart`` events (properties ``sku``, ``quantity`` default 1,
    ``price`` default the product's current price) minus the ``remove_from_cart`` events
    (``sku``; an optional ``quantity`` removes only that many) that happened *after* the
    customer's last ``purchase`` or ``checkout_completed``; events are replayed in time
    order, so the arrival order does not matter. Adding a SKU again adds to its quantity
    and takes the newer price. Events naming an unknown SKU, or with an unusable quantity
    or price, are ignored: the catalogue, not the shop's front end, decides what exists.

    One ``Cart`` row per customer who has any cart event: ``updated_at`` is the time of
    the last cart event (conversions included), ``converted_at`` the last conversion when
    it came after the last add. Customers without cart events lose their cart row.
    Customers are handled in chunks of :data:`CHUNK`, each with a fixed number of queries
    and its own transaction.
    """
    types = _type_ids([ADD_TO_CART, REMOVE_FROM_CART, *CONVERSIONS])
    conversion_ids = [types[name] for name in CONVERSIONS if name in types]
    line_type_ids = {types[name]: name for name in (ADD_TO_CART, REMOVE_FROM_CART) if name in types}
    for chunk in _chunks(customer_ids, CHUNK):
        with transaction.atomic():
            states = _cart_states(chunk, conversion_ids, line_type_ids)
            _carts_write(chunk, states)


def _events_of(customer_ids: list[int], type_ids: Collection[int]) -> QuerySet[Event]:
    """Events of these customers and types, read through the (customer, occurred_at) index.

    ``event_type_id + 0`` keeps SQLite's planner (which has no statistics unless ANALYZE
    ran) off the event-type index: with it, every chunk scanned every event of the type,
    and rebuilding 10,000 customers took minutes instead of seconds.
    """
    return (
        Event.objects.filter(customer_id__in=customer_ids)
        .alias(type_id=F("event_type_id") + 0)
        .filter(type_id__in=list(type_ids))
    )


def _cart_states(
    chunk: list[int], conversion_ids: list[int], line_type_ids: dict[int, str]
) -> dict[int, _CartState]:
    """Replay each customer's cart events in time order (one read for the whole chunk)."""
    states: dict[int, _CartState] = {}
    rows = list(
        _events_of(chunk, [*conversion_ids, *line_type_ids])
        .order_by("customer_id", "occurred_at", "pk")
        .values_list("customer_id", "event_type_id", "occurred_at", "properties", "touchpoint_id")
    )
    last_conversion: dict[int, dt.datetime] = {}
    last_adds: dict[int, dt.datetime] = {}
    for customer_id, type_id, at, _props, _tp in rows:
        if type_id not in line_type_ids:
            last_conversion[customer_id] = at
        elif line_type_ids[type_id] == ADD_TO_CART:
            last_adds[customer_id] = at
    # Only the lines after the customer's last conversion make the current cart.
    events = [
        row
        for row in rows
        if row[1] in line_type_ids
        and (row[0] not in last_conversion or row[2] > last_conversion[row[0]])
    ]
    skus = {
        str(props.get("sku", "")) for _c, _t, _at, props, _tp in events if isinstance(props, dict)
    }
    products = {
        sku: (pk, price)
        for sku, pk, price in Product.objects.filter(sku__in=skus).values_list("sku", "pk", "price")
    }
    for customer_id, type_id, at, props, touchpoint_id in events:
        state = states.setdefault(customer_id, _CartState())
        state.updated_at = at
        props = props if isinstance(props, dict) else {}
        product = products.get(str(props.get("sku", "")))
        if product is None:
            continue
        product_id, current_price = product
        if line_type_ids[type_id] == ADD_TO_CART:
            quantity = _positive_int(props.get("quantity"))
            price = _yen(props.get("price")) if "price" in props else current_price
            if quantity is None or price is None:
                continue
            state.touchpoint_id = touchpoint_id
            line = state.lines.get(product_id)
            if line is None:
                state.lines[product_id] = _Line(product_id, quantity, price, at)
            else:
                line.quantity += quantity
                line.unit_price = price
        else:
            line = state.lines.get(product_id)
            if line is None:
                continue
            quantity = _positive_int(props.get("quantity"), default=line.quantity)
            if quantity is None or quantity >= line.quantity:
                del state.lines[product_id]
            else:
                line.quantity -= quantity
    for customer_id in set(last_conversion) | set(last_adds):
        state = states.setdefault(customer_id, _CartState())
        state.last_add_at = last_adds.get(customer_id)
        converted = last_conversion.get(customer_id)
        if converted is not None and (state.updated_at is None or converted > state.updated_at):
            state.updated_at = converted
        if state.updated_at is None:  # adds only before the last conversion: cannot happen
            state.updated_at = state.last_add_at
    for customer_id, state in states.items():
        state.converted = _converted_at(last_conversion.get(customer_id), state.last_add_at)
    return states


def _converted_at(
    conversion: dt.datetime | None, last_add: dt.datetime | None
) -> dt.datetime | None:
    if conversion is None:
        return None
    if last_add is None or conversion >= last_add:
        return conversion
    return None


def _carts_write(chunk: list[int], states: dict[int, _CartState]) -> None:
    existing = {
        row["customer_id"]: row
        for row in Cart.objects.filter(customer_id__in=chunk).values(
            "pk",
            "customer_id",
            "touchpoint_id",
            "updated_at",
            "item_count",
            "value",
            "converted_at",
        )
    }
    gone = [row["pk"] for customer_id, row in existing.items() if customer_id not in states]
    if gone:
        Cart.objects.filter(pk__in=gone).delete()

    def header(state: _CartState) -> dict[str, Any]:
        lines = state.lines.values()
        return {
            "touchpoint_id": state.touchpoint_id,
            "updated_at": state.updated_at,
            "item_count": sum(line.quantity for line in lines),
            "value": sum((line.quantity * line.unit_price for line in lines), Decimal(0)),
            "converted_at": state.converted,
        }

    new_carts = [
        Cart(customer_id=customer_id, **header(state))
        for customer_id, state in states.items()
        if customer_id not in existing
    ]
    Cart.objects.bulk_create(new_carts)
    changed = []
    for customer_id, state in states.items():
        row = existing.get(customer_id)
        if row is None:
            continue
        values = header(state)
        if any(row[key] != value for key, value in values.items()):
            changed.append(Cart(pk=row["pk"], customer_id=customer_id, **values))
    if changed:
        Cart.objects.bulk_update(
            changed, ["touchpoint", "updated_at", "item_count", "value", "converted_at"]
        )

    cart_of = {row["customer_id"]: row["pk"] for row in existing.values()}
    cart_of.update({cart.customer_id: cart.pk for cart in new_carts})
    wanted = {
        (cart_of[customer_id], line.product_id): line
        for customer_id, state in states.items()
        for line in state.lines.values()
    }
    current = {
        (cart_id, product_id): (pk, quantity, unit_price, added_at)
        for pk, cart_id, product_id, quantity, unit_price, added_at in CartItem.objects.filter(
            cart_id__in=[row["pk"] for row in existing.values() if row["pk"] not in gone]
        ).values_list("pk", "cart_id", "product_id", "quantity", "unit_price", "added_at")
    }
    stale = [row[0] for key, row in current.items() if key not in wanted]
    if stale:
        CartItem.objects.filter(pk__in=stale).delete()
    CartItem.objects.bulk_create(
        [
            CartItem(
                cart_id=cart_id,
                product_id=product_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                added_at=line.added_at,
            )
            for (cart_id, product_id), line in wanted.items()
            if (cart_id, product_id) not in current
        ]
    )
    updates = [
        CartItem(
            pk=row[0],
            quantity=line.quantity,
            unit_price=line.unit_price,
            added_at=line.added_at,
        )
        for key, line in wanted.items()
        if (row := current.get(key)) is not None
        and row[1:] != (line.quantity, line.unit_price, line.added_at)
    ]
    if updates:
        CartItem.objects.bulk_update(updates, ["quantity", "unit_price", "added_at"])


def abandoned_carts(*, idle_for: dt.timedelta, now: dt.datetime | None = None) -> QuerySet[Cart]:
    """Open carts left alone for longer than ``idle_for``, with no purchase since.

    Open = items in it and no conversion after the last add; "no purchase since" also
    looks at orders (a store purchase never sends a cart event). Reads the partial index
    on open carts' ``updated_at``; the campaigns' abandoned-cart trigger starts here.
    """
    now = now or timezone.now()
    later_orders = Order.objects.filter(
        customer_id=OuterRef("customer_id"),
        ordered_at__gte=OuterRef("updated_at"),
        status=Order.Status.COMPLETED,
    )
    return (
        Cart.objects.filter(item_count__gt=0, updated_at__lt=now - idle_for)
        .filter(converted_at__isnull=True)
        .exclude(Exists(later_orders))
        .order_by("updated_at", "pk")
    )


def customer_cart(customer_id: int) -> tuple[Cart | None, list[CartItem]]:
    """One customer's cart and its lines (products joined): one query without a cart, two
    with one."""
    cart = (
        Cart.objects.filter(customer_id=customer_id)
        .prefetch_related(
            Prefetch("items", CartItem.objects.select_related("product").order_by("added_at", "pk"))
        )
        .first()
    )
    return cart, list(cart.items.all()) if cart is not None else []


# --------------------------------------------------------------------------- favourites


def favorites_sync(*, customer_ids: Collection[int]) -> None:
    """Make ``Favorite`` rows follow the ``favorite_added``/``favorite_removed`` events.

    For each (customer, SKU) the latest event wins: added → the row exists (``created_at``
    = that event's time), removed → it does not. Pairs no event mentions are left alone
    (favourites loaded by an import or the demo stay); unknown SKUs are ignored.
    Idempotent and set-based: a fixed number of queries per chunk of customers.
    """
    types = _type_ids([FAVORITE_ADDED, FAVORITE_REMOVED])
    if not types:
        return
    added_id = types.get(FAVORITE_ADDED)
    for chunk in _chunks(customer_ids, CHUNK):
        with transaction.atomic():
            latest: dict[tuple[int, str], tuple[bool, dt.datetime]] = {}
            for customer_id, type_id, at, props in (
                _events_of(chunk, types.values())
                .order_by("occurred_at", "pk")
                .values_list("customer_id", "event_type_id", "occurred_at", "properties")
            ):
                sku = str(props.get("sku", "")) if isinstance(props, dict) else ""
                if sku:
                    latest[(customer_id, sku)] = (type_id == added_id, at)
            if not latest:
                continue
            products = dict(
                Product.objects.filter(sku__in={sku for _c, sku in latest}).values_list("sku", "pk")
            )
            wanted: dict[tuple[int, int], tuple[bool, dt.datetime]] = {
                (customer_id, products[sku]): state
                for (customer_id, sku), state in latest.items()
                if sku in products
            }
            existing = {
                (customer_id, product_id): pk
                for pk, customer_id, product_id in Favorite.objects.filter(
                    customer_id__in=chunk, product_id__in={p for _c, p in wanted}
                ).values_list("pk", "customer_id", "product_id")
            }
            remove = [
                existing[key] for key, (on, _at) in wanted.items() if not on and key in existing
            ]
            if remove:
                Favorite.objects.filter(pk__in=remove).delete()
            Favorite.objects.bulk_create(
                [
                    Favorite(customer_id=customer_id, product_id=product_id, created_at=at)
                    for (customer_id, product_id), (on, at) in wanted.items()
                    if on and (customer_id, product_id) not in existing
                ]
            )


def customer_favorites(customer_id: int) -> QuerySet[Favorite]:
    """A customer's favourites, newest first, with their products."""
    return (
        Favorite.objects.filter(customer_id=customer_id)
        .select_related("product")
        .order_by("-created_at", "-pk")
    )


# --------------------------------------------------------------------------- products


def catalogue_editable_by(user) -> bool:
    """The catalogue is company-wide: an editor or manager of any department may change it.

    Prices and stock come from the store system; staff correct them. Viewers only read,
    and so do users without a department (an integration token acts as an editor of its
    department).
    """
    return has_role_anywhere(user, Role.EDITOR)


def clean_product_fields(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate product fields given as Python values or text; (clean values, field → error).

    price: whole yen ≥ 0; stock: a whole number ≥ 0; name and category: non-empty text
    within their lengths; is_active: a boolean (or yes/no, true/false, 1/0 as text).
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        if name not in EDITABLE_FIELDS:
            errors[name] = _t("not a product field that can be changed")
            continue
        if name in ("name", "category"):
            text = str(raw if raw is not None else "").strip()
            limit = Product._meta.get_field(name).max_length
            if not text:
                errors[name] = _t("cannot be empty")
            elif len(text) > limit:
                errors[name] = _t("at most %(limit)d characters") % {"limit": limit}
            else:
                clean[name] = text
        elif name == "price":
            amount = None
            if not isinstance(raw, bool) and raw is not None:
                text = str(raw).replace(",", "").replace("¥", "").strip().removesuffix("円")
                try:
                    amount = Decimal(text)
                except InvalidOperation:
                    amount = None
            if amount is None or not amount.is_finite():
                errors[name] = _t("not an amount in yen")
            elif amount != amount.to_integral_value():
                errors[name] = _t("must be whole yen")
            elif amount < 0:
                errors[name] = _t("cannot be negative")
            elif amount >= 10**10:
                errors[name] = _t("too large")
            else:
                clean[name] = amount.quantize(Decimal(1))
        elif name == "stock":
            number = None
            if isinstance(raw, int) and not isinstance(raw, bool):
                number = raw
            elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                number = int(raw.strip())
            elif isinstance(raw, (float, Decimal)) and raw == int(raw):
                number = int(raw)
            if number is None:
                errors[name] = _t("not a whole number")
            elif number < 0:
                errors[name] = _t("cannot be negative")
            elif number > 2**31 - 1:
                errors[name] = _t("too large")
            else:
                clean[name] = number
        elif name == "is_active":
            if isinstance(raw, bool):
                clean[name] = raw
            elif str(raw).strip().casefold() in {"1", "true", "yes", "y", "on", "はい"}:
                clean[name] = True
            elif str(raw).strip().casefold() in {"0", "false", "no", "n", "off", "いいえ"}:
                clean[name] = False
            else:
                errors[name] = _t("not yes or no")
    return clean, errors


@transaction.atomic
def product_update(*, product: Product, source: str, by=None, **fields: Any) -> Product:
    """Change one product; every price or stock that moves is recorded as a ProductChange.

    ``fields`` are any of name, category, price, stock, is_active. Raises
    ``ValidationError`` naming each bad field, with nothing written. The row is locked
    while it is read and written, so two simultaneous updates record consistent changes.
    Staff changes (``by`` given) are written to the audit log.
    """
    clean, errors = clean_product_fields(fields)
    if errors:
        raise ValidationError(errors)
    locked = Product.objects.select_for_update().get(pk=product.pk)
    now = timezone.now()
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in clean.items():
        old = getattr(locked, name)
        if old != value:
            changed[name] = (old, value)
            setattr(locked, name, value)
    if changed:
        locked.save(update_fields=list(changed))
        ProductChange.objects.bulk_create(
            [
                ProductChange(
                    product=locked,
                    field=name,
                    old_value=old,
                    new_value=new,
                    changed_at=now,
                    source=source[:50],
                )
                for name, (old, new) in changed.items()
                if name in TRACKED_FIELDS
            ]
        )
        if by is not None:
            audit_record(
                actor=by,
                action="product.update",
                target=locked,
                detail={
                    "source": source,
                    "changes": {name: [str(old), str(new)] for name, (old, new) in changed.items()},
                },
            )
    for name in EDITABLE_FIELDS:
        setattr(product, name, getattr(locked, name))
    return product


def products_upsert(*, rows: Sequence[Mapping[str, Any]], source: str) -> dict[str, int]:
    """Create or change many products by SKU (the nightly stock and price file).

    Each row has ``sku`` and any of name, category, price, stock, is_active (fields left
    out keep their value; a new SKU needs name, category and price). Raises
    ``ValidationError`` listing "row N, field: reason" (N counts from 1) with nothing
    written when any row is bad. Current values are read in a few queries per
    :data:`SKU_CHUNK` SKUs, written with the raw batch writers, and every price or stock
    that moved is recorded as a ProductChange. Returns counts.
    """
    cleaned: dict[str, dict[str, Any]] = {}
    sku_of: dict[int, str] = {}
    problems: list[str] = []
    bad: set[tuple[int, str]] = set()

    def problem(number: int, name: str, reason: str) -> None:
        bad.add((number, name))
        problems.append(
            _t("row %(row)d, %(field)s: %(reason)s")
            % {"row": number, "field": name, "reason": reason}
        )

    for number, row in enumerate(rows, start=1):
        sku = str(row.get("sku") or "").strip()
        if not sku:
            problem(number, "sku", _t("the SKU is missing"))
            continue
        if len(sku) > 50:
            problem(number, "sku", _t("longer than 50 characters"))
            continue
        clean, errors = clean_product_fields({k: v for k, v in row.items() if k != "sku"})
        for name, reason in errors.items():
            problem(number, name, reason)
        sku_of[number] = sku
        cleaned.setdefault(sku, {}).update(clean)
    with transaction.atomic():
        current: dict[str, dict[str, Any]] = {}
        skus = list(cleaned)
        for start in range(0, len(skus), SKU_CHUNK):
            for values in Product.objects.filter(sku__in=skus[start : start + SKU_CHUNK]).values(
                "pk", "sku", *EDITABLE_FIELDS
            ):
                current[values["sku"]] = values
        for number, sku in sku_of.items():
            if sku in current:
                continue
            for name in NEW_PRODUCT_FIELDS:
                if name not in cleaned[sku] and (number, name) not in bad:
                    problem(number, name, _t("needed for a new product"))
        if problems:
            raise ValidationError(problems)
        return _products_write(cleaned, current, source)


def _products_write(
    cleaned: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], source: str
) -> dict[str, int]:
    now = timezone.now()
    created = [
        (sku, v["name"], v["category"], v["price"], v.get("stock", 0), v.get("is_active", True))
        for sku, v in cleaned.items()
        if sku not in current
    ]
    insert_rows(
        Product,
        ["sku", "name", "category", "price", "stock", "is_active"],
        [
            (sku, name, category, db_value(Product, "price", price), stock, active)
            for sku, name, category, price, stock, active in created
        ],
    )
    updates: list[tuple] = []
    changes: list[tuple] = []
    counts = {
        "products_created": len(created),
        "products_updated": 0,
        "price_changes": 0,
        "stock_changes": 0,
    }
    for sku, values in cleaned.items():
        before = current.get(sku)
        if before is None:
            continue
        after = {name: values.get(name, before[name]) for name in EDITABLE_FIELDS}
        if all(after[name] == before[name] for name in EDITABLE_FIELDS):
            continue
        updates.append(
            (
                after["name"],
                after["category"],
                db_value(Product, "price", after["price"]),
                after["stock"],
                after["is_active"],
                before["pk"],
            )
        )
        for name in TRACKED_FIELDS:
            if after[name] != before[name]:
                counts[f"{name}_changes"] += 1
                changes.append(
                    (
                        before["pk"],
                        name,
                        db_value(ProductChange, "old_value", Decimal(before[name])),
                        db_value(ProductChange, "new_value", Decimal(after[name])),
                    )
                )
    update_rows(Product, list(EDITABLE_FIELDS), updates)
    insert_rows(
        ProductChange,
        ["product", "field", "old_value", "new_value"],
        changes,
        constants={
            "changed_at": db_value(ProductChange, "changed_at", now),
            "source": source[:50],
        },
    )
    counts["products_updated"] = len(updates)
    return counts


def product_changes(
    *,
    product: Product | None = None,
    field: str | None = None,
    since: dt.datetime | None = None,
) -> QuerySet[ProductChange]:
    """Recorded price and stock changes, newest first, products joined."""
    changes = ProductChange.objects.select_related("product").order_by("-changed_at", "-pk")
    if product is not None:
        changes = changes.filter(product=product)
    if field is not None:
        changes = changes.filter(field=field)
    if since is not None:
        changes = changes.filter(changed_at__gte=since)
    return changes


def product_changes_since(
    *, since: dt.datetime, field: str | None = None
) -> QuerySet[ProductChange]:
    """Changes recorded at or after ``since`` (the trigger checks' name for it)."""
    return product_changes(field=field, since=since)


@dataclass(frozen=True)
class FavoritedChange:
    """A product whose price or stock moved, and the customers who favourited it."""

    product: Product
    old_value: Decimal
    new_value: Decimal
    customer_ids: list[int]


def _favorited_changes(*, field: str, since: dt.datetime, moved) -> list[FavoritedChange]:
    """Products whose ``field`` went from its value at ``since`` to now in a way ``moved``
    accepts, with their favouriting customers: three queries, whatever the number."""
    first_old: dict[int, Decimal] = {}
    for product_id, old in (
        ProductChange.objects.filter(field=field, changed_at__gte=since)
        .order_by("changed_at", "pk")
        .values_list("product_id", "old_value")
    ):
        first_old.setdefault(product_id, old)
    if not first_old:
        return []
    products = {
        product.pk: product
        for product in Product.objects.filter(pk__in=list(first_old), is_active=True)
    }
    kept = {
        pk: (first_old[pk], Decimal(getattr(product, field)))
        for pk, product in products.items()
        if moved(first_old[pk], Decimal(getattr(product, field)))
    }
    if not kept:
        return []
    fans: dict[int, list[int]] = {}
    for product_id, customer_id in (
        Favorite.objects.filter(product_id__in=list(kept))
        .order_by("product_id", "customer_id")
        .values_list("product_id", "customer_id")
    ):
        fans.setdefault(product_id, []).append(customer_id)
    return [
        FavoritedChange(products[pk], old, new, fans[pk])
        for pk, (old, new) in sorted(kept.items())
        if pk in fans
    ]


def favorited_products_restocked(*, since: dt.datetime) -> list[FavoritedChange]:
    """Active products out of stock at ``since`` (stock ≤ 0) and in stock now, with the
    customers who favourited them: the back-in-stock trigger's audience."""
    return _favorited_changes(
        field=ProductChange.Field.STOCK, since=since, moved=lambda old, new: old <= 0 < new
    )


def price_drops(*, since: dt.datetime) -> list[FavoritedChange]:
    """Active products cheaper now than at ``since``, with the customers who favourited
    them: the price-drop trigger's audience (a drop that was taken back does not count)."""
    return _favorited_changes(
        field=ProductChange.Field.PRICE, since=since, moved=lambda old, new: new < old
    )


# --------------------------------------------------------------------------- catalogue pages

LOW_STOCK = 5
"""Products with less stock than this are flagged on the catalogue pages."""


def product_list(*, q: str = "", category: str = "") -> QuerySet[Product]:
    """The catalogue by SKU, searched by SKU or name, with favourites and open carts.

    One query for a page of rows: both counts are correlated sub-queries, each on the
    product foreign-key index of its table, evaluated only for the 50 rows of the page.
    """
    favorites = (
        Favorite.objects.filter(product_id=OuterRef("pk"))
        .order_by()
        .values("product_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    open_carts = (
        CartItem.objects.filter(product_id=OuterRef("pk"), cart__item_count__gt=0)
        .order_by()
        .values("product_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    products = Product.objects.annotate(
        favorite_count=Coalesce(Subquery(favorites, output_field=IntegerField()), 0),
        open_cart_count=Coalesce(Subquery(open_carts, output_field=IntegerField()), 0),
    ).order_by("sku")
    q = q.strip()
    if q:
        products = products.filter(Q(sku__icontains=q) | Q(name__icontains=q))
    if category:
        products = products.filter(category=category)
    return products


def product_categories() -> list[str]:
    """Every category in the catalogue, for the filter."""
    return list(Product.objects.order_by("category").values_list("category", flat=True).distinct())


def product_fans(product: Product, *, limit: int = 20) -> tuple[int, list]:
    """How many customers favourited ``product``, and the most recent ``limit`` of them."""
    favorites = Favorite.objects.filter(product=product)
    recent = list(favorites.select_related("customer").order_by("-created_at", "-pk")[:limit])
    count = len(recent) if len(recent) < limit else favorites.count()
    return count, [favorite.customer for favorite in recent]


def product_open_cart_count(product: Product) -> int:
    return CartItem.objects.filter(product=product, cart__item_count__gt=0).count()


# --------------------------------------------------------------------------- product change events
# (issue 6, added for circle ③'s back-in-stock, low-stock and price-drop triggers)

PRODUCT_CHANGE_SOURCE = "catalogue"
PRODUCT_RESTOCKED = "product_restocked"
PRODUCT_LOW_STOCK = "product_low_stock"
PRICE_DROPPED = "price_dropped"
PRODUCT_EVENT_SCHEMA = {"sku": "string", "product_id": "integer", "old": "number", "new": "number"}
PRODUCT_EVENT_LOOKBACK = dt.timedelta(days=1)


def product_change_events_emit(*, now: dt.datetime | None = None) -> int:
    """Turn recorded price and stock changes into events for the product's fans.

    ``product_update`` and ``products_upsert`` record ``ProductChange`` rows but emit no
    events; campaigns trigger on events, so for each change since the last one handled
    (the latest such event's time, at most a day back) every customer who favourited the
    product gets ``product_restocked`` (stock from ≤ 0 to > 0, still in stock),
    ``product_low_stock`` (stock from ≥ LOW_STOCK to 1…LOW_STOCK−1, still so) or
    ``price_dropped`` (price lower, still lower than before the change). Idempotent on
    ``product-change-<change id>-<customer id>``; a fixed number of queries per call.
    """
    from django.db.models import Max

    from experience.event_types import event_type_ensure
    from experience.ingest import events_record

    now = now or timezone.now()
    names = (PRODUCT_RESTOCKED, PRODUCT_LOW_STOCK, PRICE_DROPPED)
    mark = Event.objects.filter(
        source=PRODUCT_CHANGE_SOURCE, event_type__name__in=names, occurred_at__lte=now
    ).aggregate(last=Max("occurred_at"))["last"]
    since = max(mark, now - PRODUCT_EVENT_LOOKBACK) if mark else now - PRODUCT_EVENT_LOOKBACK
    changes = list(
        ProductChange.objects.filter(changed_at__gte=since, changed_at__lte=now)
        .select_related("product")
        .order_by("changed_at", "pk")
    )
    found: list[tuple[str, ProductChange]] = []
    for change in changes:
        product = change.product
        old, new = change.old_value, change.new_value
        if not product.is_active:
            continue
        if change.field == ProductChange.Field.STOCK:
            if old <= 0 < new and product.stock > 0:
                found.append((PRODUCT_RESTOCKED, change))
            elif old >= LOW_STOCK > new > 0 and 0 < product.stock < LOW_STOCK:
                found.append((PRODUCT_LOW_STOCK, change))
        elif change.field == ProductChange.Field.PRICE and new < old and product.price < old:
            found.append((PRICE_DROPPED, change))
    if not found:
        return 0
    fans: dict[int, list[int]] = {}
    for product_id, customer_id in Favorite.objects.filter(
        product_id__in={change.product_id for _name, change in found},
        customer__merged_into__isnull=True,
    ).values_list("product_id", "customer_id"):
        fans.setdefault(product_id, []).append(customer_id)
    types = {
        name: event_type_ensure(
            name,
            description=description,
            schema=PRODUCT_EVENT_SCHEMA,
        )
        for name, description in (
            (PRODUCT_RESTOCKED, "A favourited product is back in stock"),
            (PRODUCT_LOW_STOCK, "A favourited product is running out"),
            (PRICE_DROPPED, "A favourited product got cheaper"),
        )
    }
    events = [
        Event(
            customer_id=customer_id,
            event_type=types[name],
            occurred_at=change.changed_at,
            source=PRODUCT_CHANGE_SOURCE,
            event_id=f"product-change-{change.pk}-{customer_id}",
            properties={
                "sku": change.product.sku,
                "product_id": change.product_id,
                "old": float(change.old_value),
                "new": float(change.new_value),
            },
        )
        for name, change in found
        for customer_id in fans.get(change.product_id, ())
    ]
    return len(events_record(events=events)) if events else 0
