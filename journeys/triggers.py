"""Event and situation triggers: new behaviour enrols people within seconds.

:func:`on_events_stored` is registered with ``experience.pipeline.register_events_listener``
(``journeys/apps.py``), so it runs at the end of the after-ingest task, once carts,
situations, metrics and segment membership are current. For the touched event types it

1. exits active enrolments of campaigns whose ``trigger["unless"]`` names one of them
   (a purchase after entering the cart-abandonment flow stops it; the second order stops
   the F2 steps) — only events that happened *after* the person entered count;
2. enrols the people of the new matching events into running event campaigns
   (``trigger = {"event_type": …, "properties": {…exact matches…}}``) and situation
   campaigns (``situation_detected`` events whose ``kind`` is ``trigger["situation"]``):
   occurrence ``e<event pk>`` (idempotent), ``entered_at`` = when it happened,
   ``trigger_received_at`` = when the platform learned of it, and a context with the
   products involved. Someone already active in the campaign is not enrolled again, so a
   burst of ``add_to_cart`` events gives one reminder;
3. attributes conversions for the customers who bought (``feedback.conversions_attribute``);
4. advances and dispatches the touched campaigns at once, so a trigger without delay is
   handed to its channel in the same task.

Late events: an event that happened long ago but arrives now still enrols (received
recently is what counts); its first step is due at ``occurred_at + delay``, which has
passed, so it goes out at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping

from django.db.models import Q
from django.utils import timezone

from experience.models import Cart, Event, Product
from journeys import engine, feedback
from journeys.models import Campaign, Enrollment

logger = logging.getLogger(__name__)

SITUATION_EVENT = "situation_detected"
PURCHASE_EVENTS = ("purchase", "checkout_completed")
RECENT = dt.timedelta(days=1)
"""Only events received this recently are looked at (enrolment is idempotent anyway)."""
CUSTOMER_CHUNK = 1_000
DISPATCH_SECONDS = 20


def properties_q(properties: Mapping, *, prefix: str = "properties") -> Q:
    """Exact matches on a JSON column's top-level keys, on SQLite and PostgreSQL alike."""
    condition = Q()
    for key, value in (properties or {}).items():
        condition &= Q(**{f"{prefix}__{key}": value})
    return condition


def _started_at(campaign: Campaign) -> dt.datetime:
    moments = [m for m in (campaign.approved_at, campaign.starts_at) if m is not None]
    return max(moments) if moments else campaign.created_at


def on_events_stored(touched: Mapping[str, Collection[int]], *, now: dt.datetime | None = None):
    """React to stored events (see the module docstring); returns the enrolment count.

    ``now`` fixes the clock (tests); by default the time of the call.
    """
    now = now or timezone.now()
    touched = {name: sorted({int(pk) for pk in ids}) for name, ids in touched.items() if ids}
    if not touched:
        return 0
    exits_apply(touched)
    enrolled, campaign_ids = triggers_enroll(touched, now=now)
    purchasers = sorted({pk for name in PURCHASE_EVENTS for pk in touched.get(name, ())})
    if purchasers:
        feedback.conversions_attribute(customer_ids=purchasers)
    if campaign_ids:
        engine.enrollments_advance(now=now, campaign_ids=campaign_ids)
        engine.deliveries_dispatch(now=now, campaign_ids=campaign_ids, max_seconds=DISPATCH_SECONDS)
    return enrolled


def exits_apply(touched: Mapping[str, Collection[int]]) -> int:
    """Exit active enrolments whose campaign's ``unless`` events just happened to them.

    Only an event that happened after the person entered counts (the purchase that
    enrolled someone into the F2 steps does not end them). One update per campaign, event
    type and chunk of customers.
    """
    exited = 0
    campaigns = Campaign.objects.exclude(status=Campaign.Status.DRAFT).filter(
        trigger__has_key="unless"
    )
    for campaign in campaigns.only("pk", "trigger"):
        unless = (campaign.trigger or {}).get("unless") or []
        if isinstance(unless, str):
            unless = [unless]
        for name in sorted(set(touched).intersection(unless)):
            for chunk in _chunks(list(touched[name])):
                exited += engine.enrollments_exit_on_events(
                    Enrollment.objects.filter(campaign_id=campaign.pk, customer_id__in=chunk),
                    event_types=[name],
                )
    return exited


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CUSTOMER_CHUNK):
        yield ids[start : start + CUSTOMER_CHUNK]


def _listening(touched: Mapping[str, Collection[int]]) -> list[tuple[Campaign, str, Q]]:
    """(campaign, event type, extra condition) of the running campaigns the events concern."""
    wanted = []
    campaigns = Campaign.objects.filter(
        status=Campaign.Status.RUNNING,
        kind__in=(Campaign.Kind.EVENT, Campaign.Kind.SITUATION),
    )
    for campaign in campaigns:
        trigger = campaign.trigger or {}
        if campaign.kind == Campaign.Kind.EVENT:
            name = trigger.get("event_type")
            if name in touched:
                wanted.append((campaign, name, properties_q(trigger.get("properties") or {})))
        elif SITUATION_EVENT in touched and trigger.get("situation"):
            wanted.append((campaign, SITUATION_EVENT, properties_q({"kind": trigger["situation"]})))
    return wanted


def triggers_enroll(
    touched: Mapping[str, Collection[int]], *, now: dt.datetime
) -> tuple[int, list[int]]:
    """Enrol the people of new matching events; (enrolments, ids of campaigns concerned)."""
    total = 0
    campaign_ids: list[int] = []
    for campaign, name, condition in _listening(touched):
        since = max(_started_at(campaign), now - RECENT)
        for chunk in _chunks(list(touched[name])):
            rows = list(
                Event.objects.filter(
                    condition,
                    customer_id__in=chunk,
                    event_type__name=name,
                    received_at__gte=since,
                    customer__merged_into__isnull=True,
                )
                .order_by("occurred_at", "pk")
                .values_list("pk", "customer_id", "occurred_at", "received_at", "properties")
            )
            if not rows:
                continue
            active = set(
                Enrollment.objects.filter(
                    campaign_id=campaign.pk,
                    customer_id__in={row[1] for row in rows},
                    status=Enrollment.Status.ACTIVE,
                ).values_list("customer_id", flat=True)
            )
            contexts = _contexts(name, rows)
            seeds = []
            seen: set[int] = set()
            for pk, customer_id, occurred_at, received_at, _props in rows:
                if customer_id in active or customer_id in seen:
                    continue  # one active pass at a time: the first event of a burst
                seen.add(customer_id)
                seeds.append(
                    engine.EnrollmentSeed(
                        customer_id=customer_id,
                        occurrence=f"e{pk}",
                        entered_at=occurred_at,
                        trigger_received_at=received_at,
                        context=contexts.get(pk, {}),
                    )
                )
            if seeds:
                total += engine.enroll_customers(campaign=campaign, seeds=seeds)
        campaign_ids.append(campaign.pk)
    return total, campaign_ids


def _contexts(name: str, rows: list[tuple]) -> dict[int, dict]:
    """What the message needs to know about each event: the products it is about.

    ``skus``/``product_ids`` come from the event's ``sku`` (or ``skus``) property; for a
    cart event they are the customer's current cart lines instead.
    """
    contexts: dict[int, dict] = {}
    skus_of: dict[int, list[str]] = {}
    for pk, _customer_id, _at, _received, props in rows:
        props = props if isinstance(props, dict) else {}
        skus = props.get("skus") if isinstance(props.get("skus"), list) else []
        if props.get("sku") not in (None, ""):
            skus = [props["sku"], *skus]
        skus_of[pk] = [str(sku) for sku in skus][:20]
        context = {"event_type": name, "event_id": pk}
        for key in ("kind", "order_id", "url", "category", "old", "new"):
            if key in props and isinstance(props[key], str | int | float):
                context[key] = props[key]
        contexts[pk] = context
    if name == "add_to_cart":
        customer_ids = {row[1] for row in rows}
        cart_skus: dict[int, list[str]] = {}
        for customer_id, sku in (
            Cart.objects.filter(customer_id__in=customer_ids, item_count__gt=0)
            .order_by("customer_id", "items__added_at")
            .values_list("customer_id", "items__product__sku")
        ):
            if sku:
                cart_skus.setdefault(customer_id, []).append(sku)
        for pk, customer_id, *_rest in rows:
            if cart_skus.get(customer_id):
                skus_of[pk] = cart_skus[customer_id][:20]
    products = dict(
        Product.objects.filter(sku__in={s for skus in skus_of.values() for s in skus}).values_list(
            "sku", "pk"
        )
    )
    for pk, skus in skus_of.items():
        if skus:
            contexts[pk]["skus"] = skus
            contexts[pk]["product_ids"] = [products[s] for s in skus if s in products]
    return contexts
