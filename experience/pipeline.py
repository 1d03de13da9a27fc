"""What happens after events are stored, whatever door they came in by.

The ingestion API, CSV imports of offline events, DMP signals and the staff activity form
all end with :func:`events_stored`. It queues ONE django-q2 task after the transaction
commits, so the write path stays a bulk insert and the follow-up work (carts and
favourites, situation detection, customer metrics and live segment membership) runs in a
worker, where it is retried if it fails. Every step is idempotent: a replayed task
recomputes the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

CART_EVENT_TYPES = frozenset({"add_to_cart", "remove_from_cart", "checkout_completed", "purchase"})
FAVORITE_EVENT_TYPES = frozenset({"favorite_added", "favorite_removed"})


EventsListener = Callable[[Mapping[str, Collection[int]]], object]
_LISTENERS: list[EventsListener] = []


def register_events_listener(listener: EventsListener) -> None:
    """Call ``listener(touched)`` at the end of :func:`process_stored_events`.

    Outer circles react to new behaviour this way (circle ③ enrols triggered campaigns and
    attributes conversions) without this circle importing them. ``touched`` maps event type
    name → ids of the customers with new events of that type; listeners run after derived
    data (metrics, segment membership, detected situations) is up to date. Registered from
    an ``AppConfig.ready()``; registering twice is a no-op.
    """
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def events_stored(*, touched: Mapping[str, Collection[int]]) -> None:
    """Queue the follow-up of stored events: ``touched`` maps event type name → customer ids."""
    from customers.tasks import queue_task

    plain = {name: sorted({int(pk) for pk in ids}) for name, ids in touched.items() if ids}
    if plain:
        queue_task("experience.tasks.process_stored_events", plain)


def process_stored_events(touched: Mapping[str, Collection[int]]) -> set[int]:
    """Bring derived state up to date for the customers whose events were stored.

    Order matters: carts and favourites first (detection and segments may read them),
    then situation detection (which stores ``situation_detected`` events of its own),
    then metrics and segment membership of everyone touched, then the registered
    listeners (:func:`register_events_listener`).
    """
    from customers.services import customers_derived_refresh
    from experience.commerce import carts_rebuild, favorites_sync
    from experience.situations import situations_detect

    everyone: set[int] = {int(pk) for ids in touched.values() for pk in ids}
    cart_customers = {pk for name in CART_EVENT_TYPES for pk in touched.get(name, ())}
    favorite_customers = {pk for name in FAVORITE_EVENT_TYPES for pk in touched.get(name, ())}
    if cart_customers:
        carts_rebuild(customer_ids=cart_customers)
    if favorite_customers:
        favorites_sync(customer_ids=favorite_customers)
    situations_detect(customer_ids=everyone, event_types=set(touched))
    customers_derived_refresh(customer_ids=everyone)
    for listener in list(_LISTENERS):
        listener(touched)
    return everyone
