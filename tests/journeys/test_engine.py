"""The campaign engine: buckets, enrolment, walking the steps, exactly one delivery each."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from experience.models import EventType
from journeys import engine
from journeys.models import Campaign, CampaignStep, Delivery, Enrollment, Variant
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DepartmentFactory,
    EventFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)


def campaign_with_steps(
    *,
    steps=((0, {}),),
    variants=(("A", 1),),
    holdout=0,
    status=Campaign.Status.RUNNING,
    **fields,
) -> Campaign:
    campaign = CampaignFactory(status=status, holdout_percent=holdout, **fields)
    for position, (delay, condition) in enumerate(steps, start=1):
        step = CampaignStep.objects.create(
            campaign=campaign, position=position, delay_minutes=delay, condition=condition
        )
        for label, weight in variants:
            Variant.objects.create(
                step=step,
                label=label,
                weight=weight,
                content={"en": {"subject": f"{label} {position}", "body": "Hi"}},
            )
    return campaign


def enrol_all(campaign, *, occurrence="r202605010300", at=NOW) -> int:
    return engine.enroll_audience(
        campaign=campaign, customers=Customer.objects.all(), occurrence=occurrence, entered_at=at
    )


# --- buckets --------------------------------------------------------------------------------


def test_bucket_expression_matches_python_even_for_huge_ids():
    small = CustomerFactory()
    huge = CustomerFactory(pk=9_000_000_000_000_123)
    for campaign_id in (1, 77, 4_000_000_000_321):
        buckets = dict(
            Customer.objects.annotate(b=engine.bucket_expression(campaign_id)).values_list(
                "pk", "b"
            )
        )
        assert buckets == {
            small.pk: engine.bucket_of(campaign_id, small.pk),
            huge.pk: engine.bucket_of(campaign_id, huge.pk),
        }
        assert all(0 <= b < 100 for b in buckets.values())


def test_bucket_spreads_people_evenly():
    counts = [0] * 100
    for customer_id in range(1, 10_001):
        counts[engine.bucket_of(5, customer_id)] += 1
    assert min(counts) == max(counts) == 100


def test_variants_share_the_non_holdout_buckets_by_weight():
    variants = [(11, 1), (12, 3)]
    assigned = [engine.variant_for_bucket(variants, b, 20) for b in range(20, 100)]
    assert assigned.count(11) == 20
    assert assigned.count(12) == 60
    assert engine.variant_for_bucket([(11, 0), (12, 2)], 50, 10) == 12
    assert engine.variant_for_bucket([], 50, 10) is None


# --- enrolment ------------------------------------------------------------------------------


def test_enroll_audience_is_set_based_idempotent_and_decides_holdout():
    CustomerFactory.create_batch(40)
    campaign = campaign_with_steps(steps=((30, {}),), holdout=25)
    with CaptureQueriesContext(connection) as queries:
        assert enrol_all(campaign) == 40
    assert len(queries) <= 4  # first step + the INSERT … SELECT (+ savepoints)
    assert enrol_all(campaign) == 0  # replayed run: nobody twice
    rows = list(Enrollment.objects.filter(campaign=campaign))
    assert len(rows) == 40
    for row in rows:
        assert row.bucket == engine.bucket_of(campaign.pk, row.customer_id)
        assert row.is_holdout == (row.bucket < 25)
        assert row.next_position == 1
        assert row.next_due_at == NOW + dt.timedelta(minutes=30)
        assert row.status == Enrollment.Status.ACTIVE
        assert row.context == {}


def test_enroll_audience_applies_entry_rules_and_skips_merged_profiles():
    winner = CustomerFactory(language="en")
    CustomerFactory(language="en", merged_into=winner)
    CustomerFactory(language="ja")
    campaign = campaign_with_steps(
        audience_rules={"type": "profile", "field": "language", "value": ["en"]}
    )
    assert enrol_all(campaign) == 1
    assert list(Enrollment.objects.values_list("customer_id", flat=True)) == [winner.pk]


def test_enroll_customers_from_trigger_seeds():
    alice, bob = CustomerFactory(), CustomerFactory()
    gone = CustomerFactory(merged_into=alice)
    campaign = campaign_with_steps(steps=((60, {}),))
    received = NOW + dt.timedelta(seconds=3)
    seeds = [
        engine.EnrollmentSeed(alice.pk, "e1", NOW, received, {"cart": [1]}),
        engine.EnrollmentSeed(alice.pk, "e1", NOW),  # the same trigger seen twice
        engine.EnrollmentSeed(bob.pk, "e2", NOW),
        engine.EnrollmentSeed(gone.pk, "e3", NOW),
    ]
    assert engine.enroll_customers(campaign=campaign, seeds=seeds) == 2
    assert engine.enroll_customers(campaign=campaign, seeds=seeds) == 0
    first = Enrollment.objects.get(customer=alice)
    assert first.context == {"cart": [1]}
    assert first.trigger_received_at == received
    assert first.next_due_at == NOW + dt.timedelta(hours=1)


# --- advancing ------------------------------------------------------------------------------


def test_advance_creates_one_delivery_per_step_and_holdout_rows():
    CustomerFactory.create_batch(30)
    campaign = campaign_with_steps(steps=((0, {}), (60, {})), holdout=20)
    enrol_all(campaign)
    assert engine.enrollments_advance(now=NOW) == 30
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert deliveries.count() == 30
    holdout = set(Enrollment.objects.filter(is_holdout=True).values_list("customer_id", flat=True))
    assert holdout  # 20 % of 30 people by bucket
    assert (
        set(deliveries.filter(status=Delivery.Status.HOLDOUT).values_list("customer_id", flat=True))
        == holdout
    )
    assert not deliveries.filter(status=Delivery.Status.HOLDOUT, variant__isnull=False).exists()
    assert deliveries.filter(status=Delivery.Status.PENDING).count() == 30 - len(holdout)
    assert set(deliveries.values_list("due_at", flat=True)) == {NOW}
    # Not yet due: the second step waits an hour after entry.
    assert engine.enrollments_advance(now=NOW + dt.timedelta(minutes=59)) == 0
    assert engine.enrollments_advance(now=NOW + dt.timedelta(hours=1)) == 30
    assert deliveries.count() == 60
    assert Enrollment.objects.filter(status=Enrollment.Status.COMPLETED).count() == 30


def test_replaying_advance_creates_no_second_delivery():
    CustomerFactory.create_batch(5)
    campaign = campaign_with_steps()
    enrol_all(campaign)
    engine.enrollments_advance(now=NOW)
    # A worker that read the enrolments before they moved on writes the same rows again.
    Enrollment.objects.update(status=Enrollment.Status.ACTIVE, next_position=1, next_due_at=NOW)
    engine.enrollments_advance(now=NOW)
    assert Delivery.objects.count() == 5


def test_variant_assignment_is_deterministic_by_bucket():
    CustomerFactory.create_batch(50)
    campaign = campaign_with_steps(variants=(("A", 1), ("B", 1)), holdout=10)
    enrol_all(campaign)
    engine.enrollments_advance(now=NOW)
    step = campaign.steps.get()
    pairs = list(step.variants.order_by("label").values_list("pk", "weight"))
    labels = dict(step.variants.values_list("pk", "label"))
    rows = Delivery.objects.filter(status=Delivery.Status.PENDING).select_related("enrollment")
    seen = set()
    for delivery in rows:
        expected = engine.variant_for_bucket(pairs, delivery.enrollment.bucket, 10)
        assert delivery.variant_id == expected
        seen.add(labels[delivery.variant_id])
    assert seen == {"A", "B"}


def test_step_condition_checked_when_due_skips_the_step():
    en = CustomerFactory(language="en")
    ja = CustomerFactory(language="ja")
    only_en = {"type": "profile", "field": "language", "value": ["en"]}
    campaign = campaign_with_steps(steps=((0, only_en), (10, {})))
    enrol_all(campaign)
    engine.enrollments_advance(now=NOW + dt.timedelta(minutes=10))
    first, second = campaign.steps.order_by("position")
    assert list(Delivery.objects.filter(step=first).values_list("customer_id", flat=True)) == [
        en.pk
    ]
    assert set(Delivery.objects.filter(step=second).values_list("customer_id", flat=True)) == {
        en.pk,
        ja.pk,
    }


def test_unless_event_after_entry_exits_the_enrolment():
    buyer, browser, earlier = CustomerFactory.create_batch(3)
    purchase = EventType.objects.create(name="purchase")
    campaign = campaign_with_steps(steps=((60, {}),), trigger={"unless": ["purchase"]})
    enrol_all(campaign)
    EventFactory(customer=buyer, event_type=purchase, occurred_at=NOW + dt.timedelta(minutes=5))
    EventFactory(customer=earlier, event_type=purchase, occurred_at=NOW - dt.timedelta(days=1))
    engine.enrollments_advance(now=NOW + dt.timedelta(hours=1))
    exited = Enrollment.objects.get(customer=buyer)
    assert (exited.status, exited.exit_reason) == (Enrollment.Status.EXITED, "purchase")
    assert set(Delivery.objects.values_list("customer_id", flat=True)) == {browser.pk, earlier.pk}


def test_paused_campaign_waits_and_completed_campaign_exits():
    CustomerFactory.create_batch(2)
    paused = campaign_with_steps(status=Campaign.Status.PAUSED)
    done = campaign_with_steps(status=Campaign.Status.COMPLETED)
    enrol_all(paused)
    enrol_all(done)
    engine.enrollments_advance(now=NOW)
    assert not Delivery.objects.exists()
    assert Enrollment.objects.filter(campaign=paused, status="active").count() == 2
    assert set(Enrollment.objects.filter(campaign=done).values_list("status", "exit_reason")) == {
        (Enrollment.Status.EXITED, engine.EXIT_CAMPAIGN_COMPLETED)
    }
    Campaign.objects.filter(pk=paused.pk).update(status=Campaign.Status.RUNNING)
    engine.enrollments_advance(now=NOW)
    assert Delivery.objects.filter(campaign=paused).count() == 2


def test_advance_query_count_does_not_grow_with_the_audience():
    department = DepartmentFactory()

    def run(people: int) -> int:
        Customer.objects.all().delete()
        Customer.objects.bulk_create([Customer(given_name=f"p{i}") for i in range(people)])
        campaign = campaign_with_steps(owner_department=department, holdout=10)
        enrol_all(campaign)
        with CaptureQueriesContext(connection) as queries:
            engine.enrollments_advance(now=NOW)
        assert Delivery.objects.filter(campaign=campaign).count() == people
        return len(queries)

    assert run(3) == run(300)


def test_contact_budget_used_counts_marketing_contacts_in_the_window(crm, sales):
    person = CustomerFactory()
    email = campaign_with_steps(owner_department=crm)
    visit = campaign_with_steps(owner_department=sales, channel=Campaign.Channel.STAFF_TASK)
    service = campaign_with_steps(owner_department=crm, is_marketing=False)
    for campaign, sent_at in (
        (email, NOW - dt.timedelta(days=1)),
        (visit, NOW - dt.timedelta(days=2)),
        (service, NOW - dt.timedelta(days=1)),
        (email, NOW - dt.timedelta(days=9)),
    ):
        Delivery.objects.create(
            campaign=campaign,
            step=campaign.steps.get(),
            customer=person,
            occurrence=f"o{sent_at:%d}",
            status=Delivery.Status.SENT,
            sent_at=sent_at,
        )
    assert engine.contact_budget_used([person.pk, person.pk + 1], now=NOW) == {
        person.pk: 2,
        person.pk + 1: 0,
    }
    Delivery.objects.filter(sent_at=NOW - dt.timedelta(days=9)).update(
        status=Delivery.Status.SENDING, sent_at=None, claimed_at=F("created_at")
    )
    assert engine.contact_budget_used([person.pk], now=NOW) == {person.pk: 3}


def test_quiet_hours_end_in_the_persons_zone():
    from journeys.models import ContactPolicy

    policy = ContactPolicy(quiet_start=dt.time(21), quiet_end=dt.time(9))
    tokyo = engine._zone("Asia/Tokyo")
    # 13:00 UTC = 22:00 in Tokyo: quiet until 09:00 Tokyo = 00:00 UTC next day.
    at = dt.datetime(2026, 5, 1, 13, 0, tzinfo=dt.UTC)
    assert engine.quiet_hours_end(at, tokyo, policy) == dt.datetime(2026, 5, 2, 0, tzinfo=dt.UTC)
    # 01:00 UTC = 10:00 in Tokyo: not quiet.
    assert engine.quiet_hours_end(at.replace(hour=1), tokyo, policy) is None
    # The same instant is 14:00 in London: not quiet there.
    assert engine.quiet_hours_end(at, engine._zone("Europe/London"), policy) is None
    assert (
        engine.quiet_hours_end(
            timezone.now(), tokyo, ContactPolicy(quiet_start=dt.time(9), quiet_end=dt.time(9))
        )
        is None
    )


# --- q2 tasks -------------------------------------------------------------------------------


def test_ensure_campaign_schedules_is_idempotent_and_ticks_every_minute(settings):
    from django_q.models import Schedule

    from journeys.tasks import CAMPAIGN_TICK_SCHEDULE, ensure_campaign_schedules

    assert ensure_campaign_schedules() is True
    assert ensure_campaign_schedules() is False
    tick = Schedule.objects.get(name=CAMPAIGN_TICK_SCHEDULE)
    assert (tick.func, tick.schedule_type, tick.minutes) == (
        "journeys.tasks.campaigns_tick",
        Schedule.MINUTES,
        1,
    )
    Schedule.objects.filter(pk=tick.pk).update(minutes=5)
    assert ensure_campaign_schedules() is True
    assert settings.Q_CLUSTER["timeout"] < settings.Q_CLUSTER["retry"]


def test_dispatch_task_sends_and_reports_counts(settings):
    from journeys.tasks import dispatch

    settings.CAMPAIGN_TRANSPORT = "fake"
    CustomerFactory.create_batch(3)
    campaign = campaign_with_steps(
        channel=Campaign.Channel.WEBHOOK, is_marketing=False, respect_quiet_hours=False
    )
    enrol_all(campaign, at=timezone.now())
    engine.enrollments_advance(campaign_ids=[campaign.pk])
    assert dispatch([campaign.pk])["sent"] == 3
    assert dispatch([campaign.pk])["claimed"] == 0
