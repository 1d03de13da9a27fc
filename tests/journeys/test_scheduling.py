"""The scheduler's tick: run slots, downtime, start/end, date triggers, segment entries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from customers.models import Identity, ImportantDate, Segment, SegmentMembership
from journeys import scheduling
from journeys.models import Campaign, CampaignRun, CampaignStep, Delivery, Enrollment, Variant
from tests.factories import (
    CampaignFactory,
    ConsentFactory,
    CustomerFactory,
    IdentityFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 in Tokyo
TOKYO = "Asia/Tokyo"


# --- helpers (used by the other scheduling-side test modules too) --------------------------


def reachable(**fields):
    """A customer with an email address and email consent: someone a campaign can reach."""
    customer = CustomerFactory(**fields)
    IdentityFactory(customer=customer, kind=Identity.Kind.EMAIL)
    ConsentFactory(customer=customer, channel="email")
    return customer


def campaign_with_steps(*, delays=(0,), status=Campaign.Status.RUNNING, **fields) -> Campaign:
    """A campaign with one English variant per step, no holdout, outside the budget."""
    fields.setdefault("holdout_percent", 0)
    fields.setdefault("is_marketing", False)
    fields.setdefault("respect_quiet_hours", False)
    campaign = CampaignFactory(status=status, **fields)
    for position, delay in enumerate(delays, start=1):
        step = CampaignStep.objects.create(
            campaign=campaign, position=position, delay_minutes=delay
        )
        Variant.objects.create(
            step=step,
            label="A",
            content={"en": {"subject": f"Step {position}", "body": "Hi {{ customer.first_name }}"}},
        )
    return campaign


def sent(campaign, **filters) -> int:
    return Delivery.objects.filter(
        campaign=campaign, status=Delivery.Status.SENT, **filters
    ).count()


# --- cron ------------------------------------------------------------------------------------


def test_validate_cron_names_the_field_and_accepts_five_fields():
    assert scheduling.validate_cron("  0 10  * * 5 ") == "0 10 * * 5"
    for bad in ("", "every friday", "0 10 * *", "0 10 * * 5 2026", "61 * * * *"):
        with pytest.raises(ValidationError) as caught:
            scheduling.validate_cron(bad)
        assert "cron" in caught.value.message_dict


def test_next_run_of_a_recurring_campaign_is_in_the_company_time_zone(settings):
    settings.TIME_ZONE = TOKYO
    campaign = CampaignFactory(kind=Campaign.Kind.RECURRING, cron="0 10 * * *")
    # 10:00 in Tokyo is 01:00 UTC; at 12:00 Tokyo the next is tomorrow's.
    assert scheduling.next_run_after(campaign, NOW) == dt.datetime(2026, 5, 2, 1, 0, tzinfo=dt.UTC)
    campaign.starts_at = dt.datetime(2026, 5, 10, 1, 0, tzinfo=dt.UTC)
    assert scheduling.next_run_after(campaign, NOW) == campaign.starts_at
    campaign.ends_at = dt.datetime(2026, 5, 5, tzinfo=dt.UTC)
    assert scheduling.next_run_after(campaign, NOW) is None


def test_next_run_of_a_one_off_is_its_start_or_now_and_none_once_it_ran():
    campaign = CampaignFactory(kind=Campaign.Kind.ONE_OFF)
    assert scheduling.next_run_after(campaign, NOW) == NOW
    campaign.starts_at = NOW + dt.timedelta(days=2)
    campaign.save()
    assert scheduling.next_run_after(campaign, NOW) == campaign.starts_at
    CampaignRun.objects.create(campaign=campaign, occurrence="r1", scheduled_for=NOW)
    assert scheduling.next_run_after(campaign, NOW) is None


# --- run slots -------------------------------------------------------------------------------


def test_recurring_slot_fires_once_per_slot_and_once_after_downtime():
    people = [reachable(), reachable()]
    campaign = campaign_with_steps(
        kind=Campaign.Kind.RECURRING,
        cron="0 * * * *",
        status=Campaign.Status.SCHEDULED,
        segment=SegmentFactory(kind=Segment.Kind.DYNAMIC, rules={}),
        next_run_at=NOW,
    )
    report = scheduling.tick(now=NOW + dt.timedelta(seconds=30))
    assert (report.runs, report.enrolled, report.missed_slots) == (1, 2, 0)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert campaign.next_run_at == NOW + dt.timedelta(hours=1)
    assert sent(campaign, occurrence="r202605010300") == len(people)

    # A second tick in the same hour (or a replayed one) fires nothing.
    assert scheduling.tick(now=NOW + dt.timedelta(minutes=1)).runs == 0
    assert scheduling.tick(now=NOW + dt.timedelta(seconds=30)).runs == 0
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1

    # Down from 03:30 to 07:10: the 04:00 slot fires once; 05, 06 and 07 are missed.
    report = scheduling.tick(now=NOW + dt.timedelta(hours=4, minutes=10))
    assert (report.runs, report.missed_slots) == (1, 3)
    run = CampaignRun.objects.get(campaign=campaign, occurrence="r202605010400")
    assert (run.missed_slots, run.enrolled) == (3, 2)
    campaign.refresh_from_db()
    assert campaign.next_run_at == NOW + dt.timedelta(hours=5)
    assert CampaignRun.objects.filter(campaign=campaign).count() == 2
    assert sent(campaign) == 4
    assert len(mail.outbox) == 4


def test_one_off_runs_once_then_completes_when_everything_is_sent():
    reachable()
    campaign = campaign_with_steps(
        kind=Campaign.Kind.ONE_OFF, status=Campaign.Status.SCHEDULED, next_run_at=NOW
    )
    report = scheduling.tick(now=NOW)
    assert report.runs == 1
    campaign.refresh_from_db()
    assert campaign.next_run_at is None
    assert sent(campaign) == 1
    scheduling.tick(now=NOW + dt.timedelta(minutes=1))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1


def test_one_off_with_a_later_step_keeps_running_until_the_last_step():
    reachable()
    campaign = campaign_with_steps(
        kind=Campaign.Kind.ONE_OFF,
        status=Campaign.Status.SCHEDULED,
        next_run_at=NOW,
        delays=(0, 60),
    )
    scheduling.tick(now=NOW)
    scheduling.tick(now=NOW + dt.timedelta(minutes=5))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    scheduling.tick(now=NOW + dt.timedelta(minutes=61))
    scheduling.tick(now=NOW + dt.timedelta(minutes=62))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert sent(campaign) == 2


def test_trigger_campaigns_start_at_their_start_and_everything_ends_at_its_end():
    waiting = campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        status=Campaign.Status.SCHEDULED,
        trigger={"event_type": "add_to_cart"},
        starts_at=NOW + dt.timedelta(hours=1),
    )
    ending = campaign_with_steps(
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "add_to_cart"},
        ends_at=NOW + dt.timedelta(hours=2),
    )
    scheduling.tick(now=NOW)
    waiting.refresh_from_db()
    assert waiting.status == Campaign.Status.SCHEDULED
    report = scheduling.tick(now=NOW + dt.timedelta(hours=1))
    assert report.started == 1
    waiting.refresh_from_db()
    assert waiting.status == Campaign.Status.RUNNING
    scheduling.tick(now=NOW + dt.timedelta(hours=2))
    ending.refresh_from_db()
    assert ending.status == Campaign.Status.COMPLETED


def test_a_recurring_slot_after_the_end_does_not_fire():
    reachable()
    campaign = campaign_with_steps(
        kind=Campaign.Kind.RECURRING,
        cron="0 * * * *",
        next_run_at=NOW,
        ends_at=NOW + dt.timedelta(minutes=30),
    )
    assert scheduling.tick(now=NOW).runs == 1
    campaign.refresh_from_db()
    assert campaign.next_run_at is None
    scheduling.tick(now=NOW + dt.timedelta(hours=1))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert CampaignRun.objects.filter(campaign=campaign).count() == 1


# --- date triggers ----------------------------------------------------------------------------


def birthday_campaign(days_before=7):
    return campaign_with_steps(
        kind=Campaign.Kind.DATE,
        trigger={"date_kind": "spouse_birthday", "days_before": days_before},
    )


def with_date(month, day, **fields):
    customer = reachable(**fields)
    ImportantDate.objects.create(
        customer=customer, kind=ImportantDate.Kind.SPOUSE_BIRTHDAY, month=month, day=day
    )
    return customer


def enrolled(campaign) -> set[tuple[int, str]]:
    return set(
        Enrollment.objects.filter(campaign=campaign).values_list("customer_id", "occurrence")
    )


def test_date_trigger_fires_once_a_year_seven_days_before(settings):
    settings.TIME_ZONE = TOKYO
    campaign = birthday_campaign()
    customer = with_date(5, 8)
    with_date(5, 9)  # a day too early to remind
    other_kind = reachable()
    ImportantDate.objects.create(customer=other_kind, kind="birthday", month=5, day=8)

    report = scheduling.tick(now=NOW)
    assert report.date_enrolled == 1
    assert enrolled(campaign) == {(customer.pk, "d2026")}
    assert Enrollment.objects.get(campaign=campaign).context["date"] == "2026-05-08"
    assert scheduling.tick(now=NOW + dt.timedelta(minutes=1)).date_enrolled == 0
    assert sent(campaign) == 1

    scheduling.tick(now=NOW.replace(year=2027))
    assert enrolled(campaign) == {(customer.pk, "d2026"), (customer.pk, "d2027")}
    assert sent(campaign) == 2


def test_29_february_fires_on_28_february_in_common_years(settings):
    settings.TIME_ZONE = TOKYO
    campaign = birthday_campaign()
    leapling = with_date(2, 29)
    common_year = dt.datetime(2027, 2, 21, 3, 0, tzinfo=dt.UTC)  # 28 Feb is 7 days on
    scheduling.tick(now=common_year)
    assert enrolled(campaign) == {(leapling.pk, "d2027")}

    leap_year = dt.datetime(2028, 2, 21, 3, 0, tzinfo=dt.UTC)
    scheduling.tick(now=leap_year)  # 28 Feb 2028 is not their day
    assert enrolled(campaign) == {(leapling.pk, "d2027")}
    scheduling.tick(now=leap_year + dt.timedelta(days=1))
    assert enrolled(campaign) == {(leapling.pk, "d2027"), (leapling.pk, "d2028")}


def test_date_trigger_uses_the_persons_time_zone(settings):
    settings.TIME_ZONE = TOKYO
    campaign = birthday_campaign()
    in_tokyo = with_date(5, 8)
    in_la = with_date(5, 8, time_zone="America/Los_Angeles")
    scheduling.tick(now=NOW)  # 1 May 12:00 in Tokyo, still 30 April 20:00 in LA
    assert enrolled(campaign) == {(in_tokyo.pk, "d2026")}
    scheduling.tick(now=NOW + dt.timedelta(hours=5))  # 1 May 01:00 in LA
    assert enrolled(campaign) == {(in_tokyo.pk, "d2026"), (in_la.pk, "d2026")}


def test_a_date_early_next_year_belongs_to_next_year(settings):
    settings.TIME_ZONE = TOKYO
    campaign = birthday_campaign()
    customer = with_date(1, 4)
    scheduling.tick(now=dt.datetime(2026, 12, 28, 3, 0, tzinfo=dt.UTC))
    assert enrolled(campaign) == {(customer.pk, "d2027")}


def test_date_targets_handle_month_and_year_ends():
    assert scheduling.date_targets(dt.date(2026, 12, 28), 7) == (dt.date(2027, 1, 4), [(1, 4)])
    assert scheduling.date_targets(dt.date(2027, 2, 21), 7) == (
        dt.date(2027, 2, 28),
        [(2, 28), (2, 29)],
    )
    assert scheduling.date_targets(dt.date(2028, 2, 21), 7) == (dt.date(2028, 2, 28), [(2, 28)])
    assert scheduling.date_targets(dt.date(2026, 4, 24), 7) == (dt.date(2026, 5, 1), [(5, 1)])


def test_date_trigger_reads_the_date_index_not_every_customer(
    settings, django_assert_max_num_queries
):
    settings.TIME_ZONE = TOKYO
    birthday_campaign()
    for _ in range(5):
        with_date(5, 8)
    # campaigns + one query per candidate (month, day) + the enrolment's handful
    with django_assert_max_num_queries(12):
        assert scheduling.date_triggers_enroll(now=NOW) == 5


# --- segment entry ----------------------------------------------------------------------------


def test_segment_entry_enrols_on_entry_only_once_and_again_after_re_entry():
    segment = SegmentFactory(kind=Segment.Kind.STATIC)
    before, newcomer = reachable(), reachable()
    campaign = campaign_with_steps(
        kind=Campaign.Kind.SEGMENT_ENTRY, segment=segment, approved_at=NOW
    )
    SegmentMembership.objects.create(segment=segment, customer=before)
    SegmentMembership.objects.filter(customer=before).update(added_at=NOW - dt.timedelta(days=1))
    membership = SegmentMembership.objects.create(segment=segment, customer=newcomer)
    entered = NOW + dt.timedelta(minutes=5)
    SegmentMembership.objects.filter(pk=membership.pk).update(added_at=entered)

    report = scheduling.tick(now=NOW + dt.timedelta(minutes=6))
    assert report.segment_enrolled == 1
    assert enrolled(campaign) == {(newcomer.pk, "s20260501030500")}
    campaign.refresh_from_db()
    assert campaign.trigger["entered_after"].startswith("2026-05-01T03:05:00")
    assert scheduling.tick(now=NOW + dt.timedelta(minutes=7)).segment_enrolled == 0
    assert sent(campaign) == 1

    # Leaves and comes back a day later: a new entry, a new enrolment.
    SegmentMembership.objects.filter(pk=membership.pk).delete()
    again = SegmentMembership.objects.create(segment=segment, customer=newcomer)
    SegmentMembership.objects.filter(pk=again.pk).update(added_at=entered + dt.timedelta(days=1))
    scheduling.tick(now=entered + dt.timedelta(days=1, minutes=1))
    assert enrolled(campaign) == {
        (newcomer.pk, "s20260501030500"),
        (newcomer.pk, "s20260502030500"),
    }


def test_paused_campaigns_neither_run_nor_enrol():
    reachable()
    campaign = campaign_with_steps(
        kind=Campaign.Kind.RECURRING,
        cron="0 * * * *",
        status=Campaign.Status.PAUSED,
        next_run_at=NOW,
    )
    assert scheduling.tick(now=NOW).runs == 0
    assert not CampaignRun.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db(transaction=True)
def test_a_campaign_another_worker_holds_is_skipped_not_waited_for():
    """PostgreSQL: ``SKIP LOCKED`` — a second tick passes over the campaign a first one is
    running (SQLite has a single writer, so two ticks cannot overlap there)."""
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter")
    reachable()
    campaign = campaign_with_steps(kind=Campaign.Kind.RECURRING, cron="0 * * * *", next_run_at=NOW)
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                Campaign.objects.select_for_update().get(pk=campaign.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(10)
        assert scheduling.run_slot(campaign_id=campaign.pk, now=NOW) is None
    finally:
        release.set()
        worker.join()
    assert scheduling.run_slot(campaign_id=campaign.pk, now=NOW).occurrence == "r202605010300"
