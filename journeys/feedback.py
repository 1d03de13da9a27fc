"""What comes back from a delivery: opens, clicks, unsubscribes, conversions, task outcomes.

Public links carry signed tokens (``django.core.signing``, one salt per purpose), so a
link names one delivery and, for clicks, the exact target URL it was signed with: a
tampered token is refused and nothing ever redirects to an address we did not write.

Feedback moves a delivery forward only (sent < delivered < opened < clicked < converted)
and sets each timestamp the first time; each first occurrence is also written as an event
(``message_opened``…) through :func:`experience.ingest.events_record`, so campaign
results flow into profiles, segments and triggers like any other behaviour.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, JSONObject
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.translation import gettext

from config.org.models import Role
from journeys.models import Campaign, Delivery, StaffTask, Suppression

EVENT_SOURCE = "journeys"
OPEN_SALT = "journeys.track.open"
CLICK_SALT = "journeys.track.click"
UNSUBSCRIBE_SALT = "journeys.unsubscribe"

STATUS_ORDER = (
    Delivery.Status.SENT,
    Delivery.Status.DELIVERED,
    Delivery.Status.OPENED,
    Delivery.Status.CLICKED,
    Delivery.Status.CONVERTED,
)
REACHED = (*STATUS_ORDER, Delivery.Status.UNCONFIRMED)
"""Statuses of deliveries that left us; an open proves an ``unconfirmed`` one was sent."""

CONSENT_CHANNEL = {
    Campaign.Channel.EMAIL: "email",
    Campaign.Channel.SMS: "sms",
    Campaign.Channel.LINE: "line",
    Campaign.Channel.PUSH: "push",
    Campaign.Channel.DIRECT_MAIL: "dm",
}
"""The consent (customers.Channel) an unsubscribe withdraws; webhook has none of its own."""

EVENT_TYPES = {
    "message_sent": ("A campaign message was handed to its channel.", {}),
    "message_opened": ("A campaign message was opened.", {}),
    "message_clicked": ("A link in a campaign message was clicked.", {"url": "string"}),
    "message_converted": (
        "An order followed a campaign message within its attribution window.",
        {"order": "string", "revenue": "number"},
    ),
    "unsubscribed": ("The person unsubscribed through a campaign message.", {}),
    "staff_task_completed": (
        "A salesperson or store recorded the outcome of a campaign task.",
        {"outcome": "string"},
    ),
}
BASE_SCHEMA = {
    "campaign_id": "integer",
    "step_id": "integer",
    "delivery_id": "integer",
    "channel": "string",
}


class BadToken(ValueError):
    """A forged, truncated or unknown tracking token."""


# --- tokens and links --------------------------------------------------------------------


def public_url(path: str) -> str:
    """Absolute with ``SITE_URL`` (messages are read outside any request), else the path."""
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else path


def open_token(delivery_id: int) -> str:
    return signing.Signer(salt=OPEN_SALT).sign(str(int(delivery_id)))


def click_token(delivery_id: int, url: str) -> str:
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ValueError("only http(s) links are tracked")
    return signing.dumps([int(delivery_id), url], salt=CLICK_SALT, compress=True)


def unsubscribe_token(delivery_id: int) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(int(delivery_id)))


TOKEN_MARKER = "__token__"


@functools.lru_cache(maxsize=32)
def _route(name: str, script_prefix: str, urlconf: str) -> tuple[str, str]:
    """The path of tracking route ``name`` before and after its token, reversed once."""
    head, _marker, tail = reverse(name, args=[TOKEN_MARKER]).rpartition(TOKEN_MARKER)
    return head, tail


def _tracking_path(name: str, token: str) -> str:
    """``reverse(name, args=[token])``, without resolving the route for every message.

    A message carries three tracking links or more, and ``reverse()`` (~20 µs each) was an
    eighth of dispatch time. The token is quoted exactly as ``reverse()`` quotes it.
    """
    head, tail = _route(name, get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    return f"{head}{quote(token, safe=RFC3986_SUBDELIMS + '/~:@')}{tail}"


def unsubscribe_path(token: str) -> str:
    return _tracking_path("tracking:unsubscribe", token)


def open_url(delivery_id: int) -> str:
    return public_url(_tracking_path("tracking:open", open_token(delivery_id)))


def click_url(delivery_id: int, url: str) -> str:
    return public_url(_tracking_path("tracking:click", click_token(delivery_id, url)))


def unsubscribe_url(delivery_id: int) -> str:
    return public_url(unsubscribe_path(unsubscribe_token(delivery_id)))


def _unsign_id(token: str, salt: str) -> int:
    try:
        return int(signing.Signer(salt=salt).unsign(token))
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise BadToken from exc


def open_token_read(token: str) -> int:
    return _unsign_id(token, OPEN_SALT)


def unsubscribe_token_read(token: str) -> int:
    return _unsign_id(token, UNSUBSCRIBE_SALT)


def click_token_read(token: str) -> tuple[int, str]:
    """(delivery id, target URL) of a genuine click token; the URL is http(s) only."""
    try:
        delivery_id, url = signing.loads(token, salt=CLICK_SALT)
        delivery_id = int(delivery_id)
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise BadToken from exc
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
        raise BadToken
    return delivery_id, url


# --- events ------------------------------------------------------------------------------


def event_types_ensure() -> dict[str, object]:
    """The event types feedback writes, registered on first use (name → EventType)."""
    from experience.event_types import event_type_ensure

    return {
        name: event_type_ensure(name, description=description, schema={**BASE_SCHEMA, **extra})
        for name, (description, extra) in EVENT_TYPES.items()
    }


def _event_type(name: str):
    from experience.event_types import event_type_ensure

    description, extra = EVENT_TYPES[name]
    return event_type_ensure(name, description=description, schema={**BASE_SCHEMA, **extra})


def _events(rows: Iterable[dict], name: str, *, suffix: str = "", extra=None) -> None:
    """One event per row (delivery values: id, customer, campaign, step, channel)."""
    from experience.ingest import events_record
    from experience.models import Event

    event_type = _event_type(name)
    events = []
    for row in rows:
        properties = {
            "campaign_id": row["campaign_id"],
            "step_id": row["step_id"],
            "delivery_id": row["id"],
            "channel": row["campaign__channel"],
            **((extra(row) if callable(extra) else extra) or {}),
        }
        events.append(
            Event(
                customer_id=row["customer_id"],
                event_type=event_type,
                occurred_at=row.get("at") or timezone.now(),
                source=EVENT_SOURCE,
                event_id=f"delivery-{row['id']}-{name}{suffix}"[:100],
                properties=properties,
            )
        )
    if events:
        events_record(events=events)


ROW_FIELDS = ("id", "customer_id", "campaign_id", "step_id", "campaign__channel", "status")


def _forward(new_status: str) -> Case:
    """``status`` becomes ``new_status`` only if that moves it forward."""
    lower = list(STATUS_ORDER[: STATUS_ORDER.index(new_status)])
    return Case(
        When(status__in=[*lower, Delivery.Status.UNCONFIRMED], then=Value(new_status)),
        default=F("status"),
    )


@transaction.atomic
def deliveries_sent_record(*, delivery_ids: Iterable[int]) -> int:
    """Write ``message_sent`` events for deliveries the dispatcher marked sent (idempotent).

    Set-based (one ``INSERT … SELECT`` per 1,000 deliveries): the same events as
    :func:`_events` writes for opens and clicks, without reading the rows back.
    """
    from experience.ingest import events_record_selected

    name = "message_sent"
    event_type = _event_type(name)
    ids = list(delivery_ids)
    stored = 0
    for start in range(0, len(ids), 1000):
        rows = Delivery.objects.filter(
            pk__in=ids[start : start + 1000], sent_at__isnull=False
        ).values(
            ev_customer=F("customer_id"),
            ev_at=F("sent_at"),
            ev_key=Concat(Value("delivery-"), Cast("id", CharField()), Value(f"-{name}")),
            ev_properties=JSONObject(
                campaign_id=F("campaign_id"),
                step_id=F("step_id"),
                delivery_id=F("id"),
                channel=F("campaign__channel"),
            ),
        )
        stored += events_record_selected(rows, event_type=event_type, source=EVENT_SOURCE)
    return stored


@transaction.atomic
def open_record(delivery_id: int, *, at: dt.datetime | None = None) -> bool:
    """The first open of a delivery: ``opened_at`` (and ``delivered_at``), status, event."""
    at = at or timezone.now()
    changed = Delivery.objects.filter(
        pk=delivery_id, status__in=REACHED, opened_at__isnull=True
    ).update(
        status=_forward(Delivery.Status.OPENED),
        opened_at=at,
        delivered_at=Coalesce("delivered_at", Value(at)),
        sent_at=Coalesce("sent_at", Value(at)),
    )
    if changed:
        _events(Delivery.objects.filter(pk=delivery_id).values(*ROW_FIELDS), "message_opened")
    return bool(changed)


@transaction.atomic
def click_record(delivery_id: int, url: str, *, at: dt.datetime | None = None) -> bool:
    """A click: first-click timestamps and status, and one event per distinct link."""
    at = at or timezone.now()
    row = (
        Delivery.objects.select_for_update()
        .filter(pk=delivery_id, status__in=REACHED)
        .values(*ROW_FIELDS, "clicked_at")
        .first()
    )
    if row is None:
        return False
    if row["clicked_at"] is None:
        Delivery.objects.filter(pk=delivery_id).update(
            status=_forward(Delivery.Status.CLICKED),
            clicked_at=at,
            opened_at=Coalesce("opened_at", Value(at)),
            delivered_at=Coalesce("delivered_at", Value(at)),
            sent_at=Coalesce("sent_at", Value(at)),
        )
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    row["at"] = at
    _events([row], "message_clicked", suffix=f"-{digest}", extra={"url": url[:500]})
    return row["clicked_at"] is None


def delivery_for_unsubscribe(token: str) -> Delivery:
    """The delivery an unsubscribe link names (with campaign and customer), or BadToken."""
    delivery = (
        Delivery.objects.select_related("campaign", "customer")
        .filter(pk=unsubscribe_token_read(token))
        .first()
    )
    if delivery is None:
        raise BadToken
    return delivery


UNSUBSCRIBE_SOURCE = "unsubscribe"
ONE_CLICK_SOURCE = "one_click_unsubscribe"
"""Consent sources of the unsubscribe page's button and of an RFC 8058 one-click POST."""


@transaction.atomic
def unsubscribe(delivery_or_token: int | str, *, source: str = UNSUBSCRIBE_SOURCE) -> Delivery:
    """Stop contacting the person on the delivery's channel; idempotent.

    Consent for the channel is withdrawn through ``consent_set(source=source)``
    (the dispatcher checks consent at send time, so pending messages stop too); a channel
    without a consent of its own (webhook) puts the delivery's address on the suppression
    list instead. An ``unsubscribed`` event is recorded once.
    """
    from customers.selectors import customer_merge_winner
    from customers.services import consent_set

    if isinstance(delivery_or_token, str):
        delivery = delivery_for_unsubscribe(delivery_or_token)
    else:
        delivery = Delivery.objects.select_related("campaign", "customer").get(pk=delivery_or_token)
    channel = delivery.campaign.channel
    customer = customer_merge_winner(delivery.customer)
    consent_channel = CONSENT_CHANNEL.get(channel)
    if consent_channel:
        consent_set(customer=customer, channel=consent_channel, status="withdrawn", source=source)
    elif delivery.address:
        from journeys.services import normalise_address

        Suppression.objects.get_or_create(
            channel=channel,
            value=normalise_address(channel, delivery.address),
            defaults={"reason": Suppression.Reason.REQUEST, "note": f"delivery {delivery.pk}"},
        )
    _events(
        [
            {
                "id": delivery.pk,
                "customer_id": customer.pk,
                "campaign_id": delivery.campaign_id,
                "step_id": delivery.step_id,
                "campaign__channel": channel,
            }
        ],
        "unsubscribed",
    )
    return delivery


# --- conversions ---------------------------------------------------------------------------

CHUNK = 1000
MAX_WINDOW_DAYS = 366


def conversions_attribute(*, customer_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Credit these customers' new completed orders to the last touch before them.

    Last-touch: an order not yet attributed goes to the latest delivery that reached the
    person (sent … clicked, not yet converted) within its campaign's
    ``conversion_window_days`` before the order — ``converted_at`` = the order's time,
    ``order``, ``revenue``, status ``converted``. Holdout deliveries (never sent; their
    touch time is when they were due) are credited the same way, separately and without a
    status change, so the holdout group's conversion rate can be compared for lift.
    Per chunk of 1,000 customers: two reads and at most two bulk updates. Returns the
    number of deliveries credited.
    """
    ids = sorted({int(pk) for pk in customer_ids})
    credited = 0
    for start in range(0, len(ids), CHUNK):
        credited += _attribute_chunk(ids[start : start + CHUNK], now=now or timezone.now())
    return credited


@transaction.atomic
def _attribute_chunk(customer_ids: list[int], *, now: dt.datetime) -> int:
    from experience.models import Order

    since = now - dt.timedelta(days=MAX_WINDOW_DAYS)
    credited_orders = Delivery.objects.filter(
        customer_id__in=customer_ids, order__isnull=False
    ).values_list("order_id", "status")
    treated, held = set(), set()
    for order_id, status in credited_orders:
        (held if status == Delivery.Status.HOLDOUT else treated).add(order_id)
    orders = list(
        Order.objects.filter(
            customer_id__in=customer_ids,
            status=Order.Status.COMPLETED,
            ordered_at__gte=since,
            ordered_at__lte=now,
        )
        .order_by("ordered_at", "pk")
        .values_list("pk", "customer_id", "ordered_at", "total")
    )
    if not orders:
        return 0
    touch_statuses = [*STATUS_ORDER[:-1], Delivery.Status.HOLDOUT]
    candidates = (
        Delivery.objects.filter(
            customer_id__in=customer_ids,
            status__in=touch_statuses,
            converted_at__isnull=True,
        )
        .filter(Q(sent_at__gte=since) | Q(status=Delivery.Status.HOLDOUT, created_at__gte=since))
        .values_list(
            "pk",
            "customer_id",
            "status",
            "sent_at",
            "due_at",
            "created_at",
            "campaign__conversion_window_days",
        )
    )
    touches: dict[tuple[int, bool], list[tuple[dt.datetime, int, int]]] = defaultdict(list)
    for pk, customer_id, status, sent_at, due_at, created_at, window in candidates:
        holdout = status == Delivery.Status.HOLDOUT
        at = (due_at or created_at) if holdout else sent_at
        if at is not None:
            touches[(customer_id, holdout)].append((at, pk, window))
    updates: list[Delivery] = []
    used: set[int] = set()
    for holdout, already in ((False, treated), (True, held)):
        for order_id, customer_id, ordered_at, total in orders:
            if order_id in already:
                continue
            best = None
            for at, pk, window in touches.get((customer_id, holdout), ()):
                if pk in used or at > ordered_at or ordered_at - at > dt.timedelta(days=window):
                    continue
                if best is None or (at, pk) > (best[0], best[1]):
                    best = (at, pk)
            if best is None:
                continue
            used.add(best[1])
            delivery = Delivery(pk=best[1], converted_at=ordered_at, order_id=order_id)
            delivery.revenue = total
            delivery.status = Delivery.Status.HOLDOUT if holdout else Delivery.Status.CONVERTED
            delivery._holdout = holdout
            updates.append(delivery)
    if not updates:
        return 0
    Delivery.objects.bulk_update(
        updates, ["converted_at", "order", "revenue", "status"], batch_size=500
    )
    sent = [d for d in updates if not d._holdout]
    if sent:
        by_pk = {d.pk: d for d in sent}
        rows = list(
            Delivery.objects.filter(pk__in=list(by_pk)).values(*ROW_FIELDS, "order__number")
        )
        for row in rows:
            row["at"] = by_pk[row["id"]].converted_at
        _events(
            rows,
            "message_converted",
            extra=lambda row: {
                "order": row["order__number"],
                "revenue": int(by_pk[row["id"]].revenue or 0),
            },
        )
    return len(updates)


# --- staff tasks ---------------------------------------------------------------------------


def staff_task_can_complete(user, task: StaffTask) -> bool:
    """The assignee, editors and managers of the task's department, or a superuser."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser or (task.assignee_id is not None and task.assignee_id == user.pk):
        return True
    return task.department_id is not None and user.has_role(task.department_id, Role.EDITOR)


@transaction.atomic
def staff_task_complete(*, task: StaffTask, outcome_code: str, notes: str = "", by) -> StaffTask:
    """Record what happened on a visit or call; the outcome becomes an event.

    A "purchased" outcome marks the task's delivery converted (no order is linked: the
    order, when it is imported, is attributed by :func:`conversions_attribute`).
    """
    from config.org.services import audit_record
    from experience.ingest import events_record
    from experience.models import Event

    if not staff_task_can_complete(by, task):
        raise PermissionDenied(
            gettext("Only the assignee or their department can close this task.")
        )
    if outcome_code not in StaffTask.Outcome.values:
        raise ValidationError(
            {
                "outcome_code": [
                    gettext("Choose one of: %(codes)s")
                    % {"codes": ", ".join(StaffTask.Outcome.values)}
                ]
            }
        )
    locked = StaffTask.objects.select_for_update().get(pk=task.pk)
    if locked.status != StaffTask.Status.OPEN:
        raise ValidationError({"status": [gettext("This task is already closed.")]})
    now = timezone.now()
    locked.status = StaffTask.Status.DONE
    locked.outcome_code = outcome_code
    locked.outcome = (notes or "").strip()
    locked.completed_by = by
    locked.completed_at = now
    locked.save(update_fields=["status", "outcome_code", "outcome", "completed_by", "completed_at"])
    step_id = None
    if locked.delivery_id:
        step_id = (
            Delivery.objects.filter(pk=locked.delivery_id).values_list("step_id", flat=True).first()
        )
        if outcome_code == StaffTask.Outcome.PURCHASED:
            Delivery.objects.filter(
                pk=locked.delivery_id, status__in=REACHED, converted_at__isnull=True
            ).update(
                status=_forward(Delivery.Status.CONVERTED),
                converted_at=now,
                delivered_at=Coalesce("delivered_at", Value(now)),
            )
    event_type = _event_type("staff_task_completed")
    events_record(
        events=[
            Event(
                customer_id=locked.customer_id,
                event_type=event_type,
                touchpoint_id=locked.store_id,
                occurred_at=now,
                source=EVENT_SOURCE,
                event_id=f"staff-task-{locked.pk}",
                properties={
                    "outcome": outcome_code,
                    "campaign_id": locked.campaign_id,
                    "step_id": step_id,
                    "delivery_id": locked.delivery_id,
                    "channel": Campaign.Channel.STAFF_TASK.value,
                },
            )
        ]
    )
    audit_record(
        actor=by,
        action="staff_task.complete",
        target=locked,
        department=locked.department,
        detail={"outcome": outcome_code},
    )
    for name in ("status", "outcome_code", "outcome", "completed_by_id", "completed_at"):
        setattr(task, name, getattr(locked, name))
    return locked
