"""What happens after events are stored, whatever door they came in by.

The ingestion API, CSV imports of offline events, DMP signals and the staff activity form
all end with :func:`events_stored`. It records the touched customers as ONE
:class:`~experience.models.EventFollowUp` row in the storing transaction, and queues the
drain task (:func:`follow_ups_drain`) only when none is due yet: once per batch window,
not once per request (the queue's pickling, signing and extra committed insert cost the
ingest API a sixth of its time). The drain merges every pending row and runs the
follow-up work (carts and favourites, situation detection, customer metrics and live
segment membership, then the listeners) in a worker, where it is retried if it fails:
rows are deleted only after their work is done. Every step is idempotent: a replayed
drain recomputes the same state.

A drain is due while rows wait: the first row written into an empty table queues it, and
the drain queues itself again when rows arrived while it worked. Should a queued drain be
lost (a crash between commit and enqueue) or fail for good, the next batch queues a new
one once the last queued row is older than :data:`FOLLOW_UP_WINDOW`. On PostgreSQL the
storing transactions hold the ingest advisory lock, as the drain's delete does, so a batch
never sees rows the drain is about to delete without queueing the next drain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping

CART_EVENT_TYPES = frozenset({"add_to_cart", "remove_from_cart", "checkout_completed", "purchase"})
FAVORITE_EVENT_TYPES = frozenset({"favorite_added", "favorite_removed"})
DRAIN_TASK = "experience.tasks.process_stored_events"
FOLLOW_UP_WINDOW = dt.timedelta(seconds=60)
"""A batch queues a drain anyway when the last queued one is older than this."""
DRAIN_ROWS = 500
"""Follow-up rows one drain merges (about 500 API batches); it queues itself for the rest."""


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
    """Owe the follow-up of stored events: ``touched`` maps event type name → customer ids.

    Call it inside the storing transaction: the row is written with the events, and a
    drain is queued after commit only when none is due (see the module docstring).
    The storing transaction holds the ingest advisory lock on PostgreSQL (``events_store``
    and ``events_record`` take it), so this never races the drain's delete. One statement
    decides and writes: the row is marked ``queued`` when no queued row is left younger
    than :data:`FOLLOW_UP_WINDOW` (an empty table included).
    """
    import json

    from django.db import connections, router, transaction
    from django.utils import timezone

    from customers.tasks import queue_task
    from experience.models import EventFollowUp

    plain = {name: sorted({int(pk) for pk in ids}) for name, ids in touched.items() if ids}
    if not plain:
        return
    connection = connections[router.db_for_write(EventFollowUp)]
    quote = connection.ops.quote_name
    table = quote(EventFollowUp._meta.db_table)
    now = timezone.now()
    stamps = [
        connection.ops.adapt_datetimefield_value(moment) for moment in (now - FOLLOW_UP_WINDOW, now)
    ]
    # No savepoint: inside the storing transaction, a failure here fails the whole batch.
    with (
        transaction.atomic(using=connection.alias, savepoint=False),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"INSERT INTO {table} ({quote('touched')}, {quote('queued')}, "
            f"{quote('created_at')}) SELECT %s, COALESCE((SELECT MAX({quote('created_at')}) "
            f"FROM {table} WHERE {quote('queued')}) < %s, TRUE), %s "
            f"RETURNING {quote('queued')}",
            [json.dumps(plain, separators=(",", ":")), *stamps],
        )
        (due,) = cursor.fetchone()
        if due:
            queue_task(DRAIN_TASK)


def follow_ups_drain(*, limit: int = DRAIN_ROWS) -> set[int]:
    """Run the follow-up owed by the oldest ``limit`` pending rows, merged, then delete them.

    Queues the next drain when rows remain (arrived meanwhile, or beyond ``limit``).
    Returns the customers processed.
    """
    from django.db import transaction

    from customers.tasks import queue_task
    from experience.ingest import lock_ingest
    from experience.models import EventFollowUp

    rows = list(EventFollowUp.objects.order_by("pk").values_list("pk", "touched")[:limit])
    if not rows:
        return set()
    merged: dict[str, set[int]] = {}
    for _pk, touched in rows:
        for name, ids in touched.items():
            merged.setdefault(name, set()).update(ids)
    everyone = process_stored_events(merged)
    with transaction.atomic():
        lock_ingest()
        EventFollowUp.objects.filter(pk__in=[pk for pk, _touched in rows]).delete()
        if EventFollowUp.objects.exists():
            queue_task(DRAIN_TASK)
    return everyone


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
