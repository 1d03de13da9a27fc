"""Feedback: forward-only statuses, events, last-touch conversions, staff task outcomes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from customers.models import Consent
from experience.models import Event, Order
from journeys import feedback
from journeys.models import Campaign, Delivery, StaffTask, Suppression
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    ConsentFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def sent(customer, *, at, window=7, status=Delivery.Status.SENT, channel="email", campaign=None):
    campaign = campaign or CampaignFactory(conversion_window_days=window, channel=channel)
    step = CampaignStepFactory(campaign=campaign, position=campaign.steps.count() + 1)
    fields = {"sent_at": at} if status != Delivery.Status.HOLDOUT else {"due_at": at}
    return DeliveryFactory(step=step, customer=customer, status=status, **fields)


def events(name):
    return list(Event.objects.filter(event_type__name=name))


def test_open_is_recorded_once_and_written_as_an_event():
    delivery = sent(CustomerFactory(), at=NOW)

    assert feedback.open_record(delivery.pk)
    assert not feedback.open_record(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.OPENED
    assert delivery.opened_at is not None
    assert delivery.delivered_at == delivery.opened_at
    [event] = events("message_opened")
    assert event.customer_id == delivery.customer_id
    assert event.properties["delivery_id"] == delivery.pk


def test_status_only_moves_forward():
    delivery = sent(CustomerFactory(), at=NOW)
    feedback.click_record(delivery.pk, "https://shop.example.com/")
    feedback.open_record(delivery.pk)  # a late pixel after the click

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CLICKED
    assert delivery.opened_at == delivery.clicked_at


def test_feedback_never_touches_deliveries_that_were_not_sent():
    holdout = sent(CustomerFactory(), at=NOW, status=Delivery.Status.HOLDOUT)
    pending = DeliveryFactory(status=Delivery.Status.PENDING)

    assert not feedback.open_record(holdout.pk)
    assert not feedback.click_record(pending.pk, "https://shop.example.com/")
    assert Delivery.objects.filter(opened_at__isnull=False).count() == 0


def test_an_open_proves_an_unconfirmed_email_was_sent():
    delivery = DeliveryFactory(status=Delivery.Status.UNCONFIRMED)
    feedback.open_record(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.OPENED
    assert delivery.sent_at is not None


def test_each_distinct_link_clicked_is_one_event():
    delivery = sent(CustomerFactory(), at=NOW)
    for url in ("https://a.example/", "https://b.example/", "https://a.example/"):
        feedback.click_record(delivery.pk, url)

    assert sorted(e.properties["url"] for e in events("message_clicked")) == [
        "https://a.example/",
        "https://b.example/",
    ]


def test_unsubscribe_withdraws_consent_for_the_channel():
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="email")
    ConsentFactory(customer=customer, channel="sms")
    delivery = sent(customer, at=NOW)

    feedback.unsubscribe(feedback.unsubscribe_token(delivery.pk))
    feedback.unsubscribe(delivery.pk)  # twice changes nothing more

    consents = dict(Consent.objects.filter(customer=customer).values_list("channel", "status"))
    assert consents == {"email": "withdrawn", "sms": "granted"}
    assert Consent.objects.get(customer=customer, channel="email").source == "unsubscribe"
    assert len(events("unsubscribed")) == 1


def test_unsubscribe_from_a_webhook_message_suppresses_the_address():
    delivery = sent(CustomerFactory(), at=NOW, channel=Campaign.Channel.WEBHOOK)
    delivery.address = "Person-1"
    delivery.save()

    feedback.unsubscribe(delivery.pk)

    assert Suppression.objects.filter(channel="webhook", value="Person-1").exists()


def test_bad_unsubscribe_token_is_refused():
    with pytest.raises(feedback.BadToken):
        feedback.unsubscribe("1:forged")


# --- conversions ---------------------------------------------------------------------------


def test_last_touch_within_the_window_gets_the_order():
    customer = CustomerFactory()
    older = sent(customer, at=NOW - dt.timedelta(days=5))
    last = sent(customer, at=NOW - dt.timedelta(days=2))
    after = sent(customer, at=NOW - dt.timedelta(hours=1))
    order = OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=1), total=12000)

    assert feedback.conversions_attribute(customer_ids=[customer.pk], now=NOW) == 1
    assert feedback.conversions_attribute(customer_ids=[customer.pk], now=NOW) == 0

    last.refresh_from_db()
    assert (last.status, last.order_id, last.revenue) == ("converted", order.pk, 12000)
    assert last.converted_at == order.ordered_at
    for other in (older, after):
        other.refresh_from_db()
        assert other.converted_at is None
    [event] = events("message_converted")
    assert event.properties["order"] == order.number
    assert event.properties["revenue"] == 12000


def test_orders_outside_the_window_or_not_completed_are_ignored():
    customer = CustomerFactory()
    delivery = sent(customer, at=NOW - dt.timedelta(days=10), window=3)
    OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=5))
    OrderFactory(
        customer=customer,
        ordered_at=NOW - dt.timedelta(days=9),
        status=Order.Status.CANCELLED,
    )
    OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=11))  # before the send

    assert feedback.conversions_attribute(customer_ids=[customer.pk], now=NOW) == 0
    delivery.refresh_from_db()
    assert delivery.converted_at is None


def test_each_order_and_each_delivery_is_credited_once():
    customer = CustomerFactory()
    first = sent(customer, at=NOW - dt.timedelta(days=4))
    second = sent(customer, at=NOW - dt.timedelta(days=3))
    early = OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=2))
    late = OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=1))

    assert feedback.conversions_attribute(customer_ids=[customer.pk], now=NOW) == 2

    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.order_id, first.order_id) == (early.pk, late.pk)


def test_holdout_conversions_are_recorded_without_a_status_change():
    customer = CustomerFactory()
    holdout = sent(customer, at=NOW - dt.timedelta(days=2), status=Delivery.Status.HOLDOUT)
    order = OrderFactory(customer=customer, ordered_at=NOW - dt.timedelta(days=1), total=3000)

    feedback.conversions_attribute(customer_ids=[customer.pk], now=NOW)

    holdout.refresh_from_db()
    assert holdout.status == Delivery.Status.HOLDOUT
    assert (holdout.order_id, holdout.revenue) == (order.pk, 3000)
    assert events("message_converted") == []


def test_attribution_reads_a_fixed_number_of_queries_per_batch(django_assert_max_num_queries):
    people = [CustomerFactory() for _ in range(20)]
    for person in people:
        sent(person, at=NOW - dt.timedelta(days=2))
        OrderFactory(customer=person, ordered_at=NOW - dt.timedelta(days=1))
    feedback.event_types_ensure()

    # The conversion events' follow-up row is written with them (one INSERT per batch), and
    # on PostgreSQL recording them takes the ingest advisory lock (one more statement).
    with django_assert_max_num_queries(14 if connection.vendor == "postgresql" else 13):
        assert feedback.conversions_attribute(customer_ids=[p.pk for p in people], now=NOW) == 20


# --- staff tasks ---------------------------------------------------------------------------


def make_task(department, *, assignee=None):
    delivery = sent(CustomerFactory(), at=NOW, channel=Campaign.Channel.STAFF_TASK)
    return StaffTask.objects.create(
        campaign=delivery.campaign,
        delivery=delivery,
        department=department,
        customer=delivery.customer,
        assignee=assignee,
        title="Visit",
    )


def test_purchase_outcome_marks_the_delivery_converted_and_is_an_event(crm):
    salesperson = UserFactory()
    task = make_task(crm, assignee=salesperson)

    feedback.staff_task_complete(
        task=task, outcome_code="purchased", notes="買った", by=salesperson
    )

    task.refresh_from_db()
    assert (task.status, task.outcome_code, task.outcome) == ("done", "purchased", "買った")
    assert task.completed_by == salesperson
    task.delivery.refresh_from_db()
    assert task.delivery.status == Delivery.Status.CONVERTED
    [event] = events("staff_task_completed")
    assert event.properties["outcome"] == "purchased"
    with pytest.raises(ValidationError):
        feedback.staff_task_complete(task=task, outcome_code="visited", by=salesperson)


def test_department_editors_may_close_a_task_but_others_may_not(
    crm, crm_editor, crm_viewer, sales_editor
):
    task = make_task(crm)
    for outsider in (crm_viewer, sales_editor):
        with pytest.raises(PermissionDenied):
            feedback.staff_task_complete(task=task, outcome_code="visited", by=outsider)
    with pytest.raises(ValidationError):
        feedback.staff_task_complete(task=task, outcome_code="teleported", by=crm_editor)

    feedback.staff_task_complete(task=task, outcome_code="not_home", by=crm_editor)

    task.refresh_from_db()
    assert task.status == StaffTask.Status.DONE
    task.delivery.refresh_from_db()
    assert task.delivery.status == Delivery.Status.SENT


def test_sent_deliveries_are_written_once_as_message_sent_events_that_reach_the_profile(
    tasks_inline, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    first = sent(customer, at=NOW - dt.timedelta(minutes=5))
    second = sent(CustomerFactory(), at=NOW, channel="sms")
    unsent = sent(CustomerFactory(), at=NOW, status=Delivery.Status.PENDING)
    Delivery.objects.filter(pk=unsent.pk).update(sent_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        stored = feedback.deliveries_sent_record(delivery_ids=[first.pk, second.pk, unsent.pk])
    again = feedback.deliveries_sent_record(delivery_ids=[first.pk, second.pk])

    assert (stored, again) == (2, 0)
    written = {event.event_id: event for event in events("message_sent")}
    assert set(written) == {
        f"delivery-{first.pk}-message_sent",
        f"delivery-{second.pk}-message_sent",
    }
    event = written[f"delivery-{second.pk}-message_sent"]
    assert event.customer_id == second.customer_id
    assert event.occurred_at == NOW
    assert event.source == feedback.EVENT_SOURCE
    assert event.properties == {
        "campaign_id": second.campaign_id,
        "step_id": second.step_id,
        "delivery_id": second.pk,
        "channel": "sms",
    }
    customer.metrics.refresh_from_db()
    assert (customer.metrics.event_count, customer.metrics.last_event_at) == (
        1,
        NOW - dt.timedelta(minutes=5),
    )
