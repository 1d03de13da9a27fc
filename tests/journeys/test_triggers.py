"""Event and situation triggers: enrolment from new events, exits, latency, late events."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Identity
from experience.ingest import events_ingest
from experience.models import Event
from experience.pipeline import process_stored_events
from experience.situations import life_event_record
from journeys import scheduling, triggers
from journeys.models import Campaign, Delivery, Enrollment
from tests.factories import EventFactory, EventTypeFactory, ProductFactory
from tests.journeys.test_scheduling import campaign_with_steps, reachable, sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    """A fixed 'now' close to the real one (events are stored with the real time)."""
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def commerce_types():
    return {
        name: EventTypeFactory(name=name)
        for name in ("add_to_cart", "purchase", "checkout_completed", "product_view")
    }


def event(customer, name, at, **properties):
    return EventFactory(
        customer=customer,
        event_type=EventTypeFactory(name=name),
        occurred_at=at,
        properties=properties,
    )


def stored(*events):
    """Run the after-ingest pipeline (carts, metrics, segments, listeners) for these."""
    touched: dict[str, set[int]] = {}
    for e in events:
        touched.setdefault(e.event_type.name, set()).add(e.customer_id)
    process_stored_events({name: sorted(ids) for name, ids in touched.items()})


def cart_abandonment(started):
    return campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "add_to_cart", "unless": ["purchase", "checkout_completed"]},
        delays=(60,),
        approved_at=started,
    )


def test_cart_abandonment_waits_an_hour_with_the_cart_products(clock, commerce_types):
    campaign = cart_abandonment(clock - dt.timedelta(days=1))
    product = ProductFactory()
    customer = reachable()
    stored(event(customer, "add_to_cart", clock, sku=product.sku))

    enrolment = Enrollment.objects.get(campaign=campaign)
    assert enrolment.occurrence.startswith("e")
    assert enrolment.entered_at == clock
    assert enrolment.next_due_at == clock + dt.timedelta(minutes=60)
    assert enrolment.context["product_ids"] == [product.pk]
    assert enrolment.context["skus"] == [product.sku]

    scheduling.tick(now=clock + dt.timedelta(minutes=59))
    assert sent(campaign) == 0
    scheduling.tick(now=clock + dt.timedelta(minutes=61))
    assert sent(campaign) == 1


def test_cart_abandonment_does_not_send_when_a_purchase_came_first(clock, commerce_types):
    campaign = cart_abandonment(clock - dt.timedelta(days=1))
    product = ProductFactory()
    customer = reachable()
    stored(event(customer, "add_to_cart", clock, sku=product.sku))
    stored(event(customer, "purchase", clock + dt.timedelta(minutes=20)))

    enrolment = Enrollment.objects.get(campaign=campaign)
    assert enrolment.status == Enrollment.Status.EXITED  # at once, not an hour later
    assert enrolment.exit_reason == "purchase"
    scheduling.tick(now=clock + dt.timedelta(minutes=61))
    assert not Delivery.objects.filter(campaign=campaign).exists()


def test_a_burst_of_cart_events_enrols_once_and_replays_enrol_nobody(clock, commerce_types):
    campaign = cart_abandonment(clock - dt.timedelta(days=1))
    customer = reachable()
    first = event(customer, "add_to_cart", clock)
    second = event(customer, "add_to_cart", clock + dt.timedelta(minutes=2))
    stored(first, second)
    stored(first, second)  # the task ran twice
    assert list(
        Enrollment.objects.filter(campaign=campaign).values_list("occurrence", flat=True)
    ) == [f"e{first.pk}"]


def test_events_before_the_campaign_started_do_not_enrol(clock, commerce_types):
    campaign = cart_abandonment(clock + dt.timedelta(minutes=1))
    customer = reachable()
    e = event(customer, "add_to_cart", clock)
    Event.objects.filter(pk=e.pk).update(received_at=clock)
    triggers.on_events_stored({"add_to_cart": [customer.pk]}, now=clock + dt.timedelta(minutes=2))
    assert not Enrollment.objects.filter(campaign=campaign).exists()


def test_property_matches_select_the_events(clock, commerce_types):
    campaign = campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "product_view", "properties": {"category": "roses", "stems": 12}},
        delays=(120,),
        approved_at=clock - dt.timedelta(days=1),
    )
    roses, tulips, fewer = reachable(), reachable(), reachable()
    stored(
        event(roses, "product_view", clock, category="roses", stems=12),
        event(tulips, "product_view", clock, category="tulips", stems=12),
        event(fewer, "product_view", clock, category="roses", stems=6),
    )
    assert set(
        Enrollment.objects.filter(campaign=campaign).values_list("customer_id", flat=True)
    ) == {roses.pk}


def test_situation_campaign_enrols_on_the_chosen_situation(clock):
    moving = campaign_with_steps(
        kind=Campaign.Kind.SITUATION,
        trigger={"situation": "moving"},
        approved_at=clock - dt.timedelta(days=1),
    )
    mover, newlywed = reachable(), reachable()
    for customer, kind in ((mover, "moving"), (newlywed, "marriage")):
        life_event_record(customer=customer, kind=kind, source="staff", confidence=1.0, at=clock)
    touched = {"situation_detected": [mover.pk, newlywed.pk]}
    triggers.on_events_stored(touched, now=clock)
    assert list(
        Enrollment.objects.filter(campaign=moving).values_list("customer_id", flat=True)
    ) == [mover.pk]
    assert sent(moving) == 1


def test_f2_steps_stop_when_the_second_order_arrives(clock, commerce_types):
    from journeys.presets import FIRST_PURCHASE_RULES

    day = 24 * 60
    campaign = campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "purchase", "unless": ["purchase"]},
        audience_rules=FIRST_PURCHASE_RULES,
        delays=(3 * day, 14 * day, 30 * day),
        approved_at=clock - dt.timedelta(days=1),
    )
    first_timer, regular = reachable(), reachable()
    event(regular, "purchase", clock - dt.timedelta(days=40))
    stored(event(first_timer, "purchase", clock), event(regular, "purchase", clock))
    # Only the first purchase enters (the regular's second purchase does not).
    assert list(
        Enrollment.objects.filter(campaign=campaign).values_list("customer_id", flat=True)
    ) == [first_timer.pk]

    scheduling.tick(now=clock + dt.timedelta(days=3, minutes=1))
    assert sent(campaign) == 1
    stored(event(first_timer, "purchase", clock + dt.timedelta(days=5)))
    enrolment = Enrollment.objects.get(campaign=campaign)
    assert (enrolment.status, enrolment.exit_reason) == (Enrollment.Status.EXITED, "purchase")
    scheduling.tick(now=clock + dt.timedelta(days=14, minutes=1))
    scheduling.tick(now=clock + dt.timedelta(days=30, minutes=1))
    assert sent(campaign) == 1


def test_a_late_event_is_enrolled_and_due_at_once(clock, commerce_types):
    campaign = cart_abandonment(clock - dt.timedelta(days=3))
    customer = reachable()
    stored(event(customer, "add_to_cart", clock - dt.timedelta(days=2)))  # arrives 2 days late
    enrolment = Enrollment.objects.get(campaign=campaign)
    assert enrolment.entered_at == clock - dt.timedelta(days=2)
    # Its hour passed long ago: handed to the channel in the same task.
    assert sent(campaign) == 1


def test_zero_delay_trigger_is_sent_by_the_ingest_task(
    tasks_inline, clock, commerce_types, django_capture_on_commit_callbacks
):
    """Event arrival → the channel, within the after-ingest task (Q2 in sync mode)."""
    campaign = campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "checkout_completed"},
        approved_at=clock - dt.timedelta(days=1),
    )
    customer = reachable()
    email = Identity.objects.get(customer=customer, kind=Identity.Kind.EMAIL).value
    with django_capture_on_commit_callbacks(execute=True):
        result = events_ingest(
            items=[
                {
                    "type": "checkout_completed",
                    "occurred_at": timezone.now().isoformat(),
                    "event_id": "checkout-1",
                    "identifiers": {"email": email},
                }
            ],
            source="shop",
            department=None,
        )
    assert result.accepted == 1
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.status == Delivery.Status.SENT
    enrolment = delivery.enrollment
    received = Event.objects.get(event_id="checkout-1").received_at
    assert enrolment.trigger_received_at == received
    assert delivery.sent_at >= received
