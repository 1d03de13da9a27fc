"""What the dispatcher promises people: consent, suppression, budget, quiet hours, holdout.

Messages go through the real e-mail channel (Django's locmem backend: ``mail.outbox``),
the real staff-task channel and, for crash recovery, the fake transport of journeys.channels.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from customers.models import Consent, Customer
from customers.services import consent_set
from experience.models import Event
from journeys import channels, engine
from journeys.models import (
    Campaign,
    CampaignStep,
    ContactPolicy,
    Delivery,
    Enrollment,
    StaffTask,
    Suppression,
    Variant,
)
from tests.factories import CampaignFactory, ConsentFactory, CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 in Tokyo, 04:00 in London


def make_campaign(*, name="Spring", holdout=0, channel=Campaign.Channel.EMAIL, **fields):
    campaign = CampaignFactory(
        name=name,
        status=Campaign.Status.RUNNING,
        holdout_percent=holdout,
        channel=channel,
        **fields,
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    body = {"subject": f"{name} for {{{{ customer.first_name }}}}", "body": "Hello"}
    Variant.objects.create(step=step, label="A", content={"ja": body, "en": body})
    return campaign


def person(*, email=True, consent=Consent.Status.GRANTED, **fields) -> Customer:
    customer = CustomerFactory(**fields)
    if email:
        IdentityFactory(customer=customer, value=f"p{customer.pk}@example.jp")
    if consent:
        ConsentFactory(customer=customer, channel="email", status=consent)
    return customer


def run(campaign, people, *, occurrence="r1", now=NOW, **dispatch):
    engine.enroll_audience(
        campaign=campaign,
        customers=Customer.objects.filter(pk__in=[p.pk for p in people]),
        occurrence=occurrence,
        entered_at=now,
    )
    engine.enrollments_advance(now=now, campaign_ids=[campaign.pk])
    return engine.deliveries_dispatch(now=now, **dispatch)


def recipients() -> list[str]:
    return sorted(address for message in mail.outbox for address in message.to)


def status_of(customer, campaign=None) -> tuple[str, str]:
    rows = Delivery.objects.filter(customer=customer)
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    delivery = rows.get()
    return delivery.status, delivery.reason


def sent_before(customer, campaign, *, days_ago: float, occurrence: str) -> Delivery:
    return Delivery.objects.create(
        campaign=campaign,
        step=campaign.steps.get(),
        customer=customer,
        occurrence=occurrence,
        status=Delivery.Status.SENT,
        sent_at=NOW - dt.timedelta(days=days_ago),
    )


def test_holdout_gets_nothing_but_is_tracked_and_the_rest_get_one_message_each():
    people = [person() for _ in range(30)]
    campaign = make_campaign(holdout=30)
    stats = run(campaign, people)
    holdout = set(Enrollment.objects.filter(is_holdout=True).values_list("customer_id", flat=True))
    assert holdout
    expected = sorted(f"p{p.pk}@example.jp" for p in people if p.pk not in holdout)
    assert recipients() == expected
    assert stats.sent == len(expected)
    held = Delivery.objects.filter(status=Delivery.Status.HOLDOUT)
    assert set(held.values_list("customer_id", flat=True)) == holdout
    assert not held.filter(sent_at__isnull=False).exists()
    sent = Delivery.objects.filter(status=Delivery.Status.SENT)
    assert set(sent.values_list("sent_at", flat=True)) == {NOW}
    assert Event.objects.filter(event_type__name="message_sent").count() == len(expected)
    assert mail.outbox[0].extra_headers["Message-ID"].startswith("<delivery-")


def test_replaying_advance_and_dispatch_sends_nothing_twice():
    people = [person() for _ in range(5)]
    campaign = make_campaign()
    run(campaign, people)
    run(campaign, people)  # the same run slot again: enrol, advance, dispatch
    engine.deliveries_dispatch(now=NOW + dt.timedelta(hours=1))
    assert len(mail.outbox) == 5
    assert Delivery.objects.count() == 5


def test_opted_out_unconsented_suppressed_and_unreachable_people_receive_nothing():
    ok = person()
    opted_out = person(consent=Consent.Status.WITHDRAWN)
    never_asked = person(consent=None)
    bounced = person()
    complained = person()
    no_address = person(email=False)
    Suppression.objects.create(
        channel="email", value=f"P{bounced.pk}@Example.jp".lower(), reason="bounce"
    )
    Suppression.objects.create(channel="", value=f"p{complained.pk}@example.jp", reason="legal")
    campaign = make_campaign()
    run(campaign, [ok, opted_out, never_asked, bounced, complained, no_address])
    assert recipients() == [f"p{ok.pk}@example.jp"]
    assert status_of(opted_out) == ("suppressed", engine.REASON_NO_CONSENT)
    assert status_of(never_asked) == ("suppressed", engine.REASON_NO_CONSENT)
    assert status_of(bounced) == ("suppressed", engine.REASON_SUPPRESSED)
    assert status_of(complained) == ("suppressed", engine.REASON_SUPPRESSED)
    assert status_of(no_address) == ("suppressed", engine.REASON_NO_ADDRESS)


def test_non_marketing_messages_need_no_consent_but_respect_suppression():
    never_asked = person(consent=None)
    bounced = person(consent=None)
    Suppression.objects.create(channel="email", value=f"p{bounced.pk}@example.jp", reason="bounce")
    campaign = make_campaign(is_marketing=False)
    run(campaign, [never_asked, bounced])
    assert recipients() == [f"p{never_asked.pk}@example.jp"]


def test_consent_withdrawn_mid_send_stops_the_remaining_messages(monkeypatch):
    """Three campaigns due for one person, one message per claim batch; she unsubscribes
    after the first arrives: the other two are not sent."""
    someone, other = person(), person()
    campaigns = [make_campaign(name=f"C{i}", priority=90 - i) for i in range(3)]
    email = channels.get_adapter("email")

    class OptsOutAfterFirst:
        atomic, idempotent = email.atomic, email.idempotent
        identity_kind = email.identity_kind
        addresses = staticmethod(email.addresses)

        def send(self, messages):
            results = email.send(messages)
            if any(m.customer_id == someone.pk for m in messages):
                consent_set(customer=someone, channel="email", status="withdrawn", source="test")
            return results

    monkeypatch.setattr(engine, "_get_adapter", lambda code: OptsOutAfterFirst())
    for campaign in campaigns:
        engine.enroll_audience(
            campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
        )
    engine.enrollments_advance(now=NOW)
    engine.deliveries_dispatch(now=NOW, batch_size=1)
    mine = [m for m in mail.outbox if m.to == [f"p{someone.pk}@example.jp"]]
    assert [m.subject for m in mine] == [f"C0 for {someone.given_name}"]
    assert status_of(someone, campaigns[1]) == ("suppressed", engine.REASON_NO_CONSENT)
    assert status_of(someone, campaigns[2]) == ("suppressed", engine.REASON_NO_CONSENT)
    assert len([m for m in mail.outbox if m.to == [f"p{other.pk}@example.jp"]]) == 3


def test_frequency_cap_defers_when_a_slot_frees_in_time_and_drops_otherwise():
    policy = ContactPolicy.current()
    policy.max_contacts, policy.window_days, policy.max_defer_hours = 2, 7, 72
    policy.save()
    earlier = make_campaign(name="Earlier")
    soon_free, long_busy = person(), person()
    # soon_free's older contact leaves the 7-day window in 24 hours: deferred to then.
    sent_before(soon_free, earlier, days_ago=6, occurrence="a")
    sent_before(soon_free, earlier, days_ago=1, occurrence="b")
    # long_busy's oldest contact leaves in 5 days, past the 72-hour limit: dropped.
    sent_before(long_busy, earlier, days_ago=2, occurrence="a")
    sent_before(long_busy, earlier, days_ago=1, occurrence="b")
    campaign = make_campaign()
    stats = run(campaign, [soon_free, long_busy])
    assert mail.outbox == []
    assert (stats.deferred, stats.capped) == (1, 1)
    deferred = Delivery.objects.get(campaign=campaign, customer=soon_free)
    assert (deferred.status, deferred.reason) == ("pending", engine.REASON_BUDGET)
    assert deferred.due_at == NOW + dt.timedelta(days=1)
    assert status_of(long_busy, campaign) == ("capped", engine.REASON_BUDGET)
    # A day later the slot is free and the deferred message goes out.
    engine.deliveries_dispatch(now=NOW + dt.timedelta(days=1))
    assert recipients() == [f"p{soon_free.pk}@example.jp"]


def test_priority_decides_who_gets_the_last_slot_across_departments(crm, sales):
    policy = ContactPolicy.current()
    policy.max_contacts, policy.max_defer_hours = 1, 0
    policy.save()
    sales_news = make_campaign(name="Sales", owner_department=sales, priority=20)
    crm_news = make_campaign(name="CRM", owner_department=crm, priority=80)
    someone = person()
    for campaign in (sales_news, crm_news):
        engine.enroll_audience(
            campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
        )
    engine.enrollments_advance(now=NOW)
    # The sales message was due first, but the batch gives the slot to the higher priority.
    Delivery.objects.filter(campaign=sales_news).update(due_at=NOW - dt.timedelta(minutes=5))
    engine.deliveries_dispatch(now=NOW)
    assert [m.subject for m in mail.outbox] == [f"CRM for {someone.given_name}"]
    assert status_of(someone, sales_news) == ("capped", engine.REASON_BUDGET)


def test_budget_counts_sales_visits_as_contacts(crm, sales):
    policy = ContactPolicy.current()
    policy.max_contacts, policy.max_defer_hours = 1, 0
    policy.save()
    someone = person()
    visits = make_campaign(
        name="Visit", owner_department=sales, channel=Campaign.Channel.STAFF_TASK, priority=90
    )
    run(visits, [someone])
    assert StaffTask.objects.filter(customer=someone, campaign=visits).count() == 1
    assert engine.contact_budget_used([someone.pk], now=NOW) == {someone.pk: 1}
    newsletter = make_campaign(name="News", owner_department=crm)
    run(newsletter, [someone])
    assert mail.outbox == []
    assert status_of(someone, newsletter) == ("capped", engine.REASON_BUDGET)


def test_quiet_hours_defer_in_the_persons_own_time_zone():
    at_22_in_tokyo = dt.datetime(2026, 5, 1, 13, 0, tzinfo=dt.UTC)
    tokyo = person(time_zone="Asia/Tokyo")
    london = person(time_zone="Europe/London")  # 14:00 there
    campaign = make_campaign()
    run(campaign, [tokyo, london], now=at_22_in_tokyo)
    assert recipients() == [f"p{london.pk}@example.jp"]
    waiting = Delivery.objects.get(customer=tokyo)
    assert (waiting.status, waiting.reason) == ("pending", engine.REASON_QUIET_HOURS)
    assert waiting.due_at == dt.datetime(2026, 5, 2, 0, 0, tzinfo=dt.UTC)  # 09:00 in Tokyo
    engine.deliveries_dispatch(now=dt.datetime(2026, 5, 2, 0, 0, tzinfo=dt.UTC))
    assert recipients() == sorted([f"p{london.pk}@example.jp", f"p{tokyo.pk}@example.jp"])


def test_campaign_without_quiet_hours_sends_at_night():
    night_owl = person(time_zone="Asia/Tokyo")
    campaign = make_campaign(respect_quiet_hours=False)
    run(campaign, [night_owl], now=dt.datetime(2026, 5, 1, 14, 0, tzinfo=dt.UTC))
    assert len(mail.outbox) == 1


def test_paused_campaign_deliveries_wait_for_resume():
    someone = person()
    campaign = make_campaign()
    engine.enroll_audience(
        campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
    )
    engine.enrollments_advance(now=NOW)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    assert engine.deliveries_dispatch(now=NOW).claimed == 0
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    engine.deliveries_dispatch(now=NOW)
    assert recipients() == [f"p{someone.pk}@example.jp"]


def test_unreachable_mail_server_retries_with_backoff_then_fails(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    someone = person()
    campaign = make_campaign()
    stats = run(campaign, [someone])
    assert stats.retried == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.due_at == NOW + engine.RETRY_BACKOFF
    assert "unreachable" in delivery.error
    moment = NOW
    for _ in range(engine.MAX_ATTEMPTS):
        moment += dt.timedelta(hours=1)
        engine.deliveries_dispatch(now=moment)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", engine.MAX_ATTEMPTS)


def test_reconcile_marks_stuck_email_unconfirmed_and_resends_idempotent_channels(settings):
    settings.CAMPAIGN_TRANSPORT = "fake"
    channels.FAKE_SENT.clear()
    someone = person()
    email = make_campaign(name="Mail")
    hook = make_campaign(name="Hook", channel=Campaign.Channel.WEBHOOK)
    for campaign in (email, hook):
        engine.enroll_audience(
            campaign=campaign, customers=Customer.objects.all(), occurrence="r1", entered_at=NOW
        )
    engine.enrollments_advance(now=NOW)
    # A worker claimed both and died before marking them.
    Delivery.objects.update(status="sending", claim="dead", claimed_at=NOW)
    assert engine.deliveries_reconcile(older_than=dt.timedelta(minutes=10), now=NOW) == 0
    later = NOW + dt.timedelta(minutes=11)
    assert engine.deliveries_reconcile(older_than=dt.timedelta(minutes=10), now=later) == 2
    assert status_of(someone, email) == ("unconfirmed", "crashed_mid_send")
    resent = Delivery.objects.get(campaign=hook)
    assert resent.status == "sent"
    assert channels.FAKE_SENT[resent.pk] == 1
    assert channels.FAKE_SENT[Delivery.objects.get(campaign=email).pk] == 0


def test_dispatch_query_count_does_not_grow_with_the_batch(django_assert_max_num_queries):
    def send_to(people: int, name: str) -> None:
        crowd = [person() for _ in range(people)]
        campaign = make_campaign(name=name)
        engine.enroll_audience(
            campaign=campaign,
            customers=Customer.objects.filter(pk__in=[p.pk for p in crowd]),
            occurrence="r1",
            entered_at=NOW,
        )
        engine.enrollments_advance(now=NOW)

    send_to(3, "small")
    with django_assert_max_num_queries(60) as few:
        engine.deliveries_dispatch(now=NOW)
    send_to(60, "large")
    with django_assert_max_num_queries(len(few.captured_queries)):
        engine.deliveries_dispatch(now=NOW)
    assert len(mail.outbox) == 63
