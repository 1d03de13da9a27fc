"""The dispatcher renders each message for its own delivery without loading the row again,
and marks the messages of a claimed batch chunk by chunk."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail

from customers.models import Customer
from journeys import engine, feedback
from journeys.models import Campaign, CampaignStep, Delivery, Variant
from tests.factories import CampaignFactory, ConsentFactory, CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)


def email_campaign() -> Campaign:
    campaign = CampaignFactory(
        status=Campaign.Status.RUNNING, holdout_percent=0, channel=Campaign.Channel.EMAIL
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    body = {
        "subject": "Hi {{ customer.first_name }}",
        "body": "See https://example.jp/spring",
        "html": '<p><a href="https://example.jp/spring">Spring</a></p>',
    }
    Variant.objects.create(step=step, label="A", content={"ja": body, "en": body})
    return campaign


def test_each_message_carries_the_signed_links_of_its_own_delivery(settings):
    settings.SITE_URL = "https://circle.example.jp"
    people = []
    for _ in range(3):
        customer = CustomerFactory()
        IdentityFactory(customer=customer, value=f"p{customer.pk}@example.jp")
        ConsentFactory(customer=customer, channel="email", status="granted")
        people.append(customer)
    campaign = email_campaign()
    engine.enroll_audience(
        campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
    )
    engine.enrollments_advance(now=NOW)

    stats = engine.deliveries_dispatch(now=NOW)

    assert stats.sent == 3
    by_address = {m.to[0]: m for m in mail.outbox}
    for delivery in Delivery.objects.filter(campaign=campaign):
        message = by_address[delivery.address]
        assert message.extra_headers["Message-ID"].startswith(f"<delivery-{delivery.pk}@")
        html = message.alternatives[0][0]
        assert feedback.unsubscribe_url(delivery.pk) in message.body
        assert feedback.open_url(delivery.pk) in html.replace("&amp;", "&")
        tokens = re.findall(r"/t/o/([^/\"]+)\.gif", html)
        assert tokens
        assert all(feedback.open_token_read(token) == delivery.pk for token in tokens)


def test_a_batch_larger_than_a_chunk_is_sent_and_marked_whole(monkeypatch):
    monkeypatch.setattr(engine, "SEND_CHUNK", 4)
    for _ in range(10):
        customer = CustomerFactory()
        IdentityFactory(customer=customer, value=f"p{customer.pk}@example.jp")
        ConsentFactory(customer=customer, channel="email", status="granted")
    campaign = email_campaign()
    engine.enroll_audience(
        campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
    )
    engine.enrollments_advance(now=NOW)

    stats = engine.deliveries_dispatch(now=NOW, batch_size=100)

    assert (stats.batches, stats.sent) == (1, 10)
    assert len(mail.outbox) == 10
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "sent"
    }
