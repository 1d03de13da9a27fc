"""Reads of circle ③: headline figures and lists, always scoped to the asking user."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from config.org.services import share_grant
from journeys.models import Campaign, Delivery
from journeys.selectors import campaign_list, journey_list, persona_list, platform_headline
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    DeliveryFactory,
    JourneyFactory,
    PersonaFactory,
)

pytestmark = pytest.mark.django_db


def test_headline_counts_only_campaigns_the_user_can_see(crm, sales, crm_editor):
    CampaignFactory(owner_department=crm, status=Campaign.Status.RUNNING)
    CampaignFactory(owner_department=crm, status=Campaign.Status.SCHEDULED)
    CampaignFactory(owner_department=crm, status=Campaign.Status.DRAFT)
    CampaignFactory(owner_department=crm, status=Campaign.Status.COMPLETED)
    CampaignFactory(owner_department=sales, status=Campaign.Status.RUNNING)

    headline = platform_headline(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert headline["campaigns_active"] == 2


def test_headline_counts_recent_deliveries_of_visible_campaigns(crm, sales, crm_editor):
    now = timezone.now()
    own_step = CampaignStepFactory(campaign__owner_department=crm)
    other_step = CampaignStepFactory(campaign__owner_department=sales)
    DeliveryFactory.create_batch(3, step=own_step)
    DeliveryFactory.create_batch(2, step=other_step)
    old = DeliveryFactory(step=own_step)
    Delivery.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=31))

    headline = platform_headline(crm_editor, since=now - dt.timedelta(days=30))

    assert headline["deliveries_30d"] == 3


def test_shared_campaign_counts_for_the_department_it_was_shared_with(
    crm, sales, crm_editor, sales_editor
):
    campaign = CampaignFactory(owner_department=sales, status=Campaign.Status.RUNNING)
    DeliveryFactory(step__campaign=campaign)
    share_grant(obj=campaign, department=crm, can_edit=False, by=sales_editor)

    headline = platform_headline(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert headline == {"campaigns_active": 1, "deliveries_30d": 1}


def test_lists_hold_own_and_shared_records_only(crm, sales, crm_editor, sales_editor):
    own_persona = PersonaFactory(owner_department=crm)
    other_persona = PersonaFactory(owner_department=sales)
    shared_journey = JourneyFactory(persona=other_persona)
    JourneyFactory(persona=other_persona)
    share_grant(obj=shared_journey, department=crm, can_edit=True, by=sales_editor)
    own_campaign = CampaignFactory(owner_department=crm)
    CampaignFactory(owner_department=sales)

    assert list(persona_list(crm_editor)) == [own_persona]
    assert list(journey_list(crm_editor)) == [shared_journey]
    assert list(campaign_list(crm_editor)) == [own_campaign]


# --- campaign results, calendar, staff tasks ---------------------------------------------------

import math  # noqa: E402
from decimal import Decimal  # noqa: E402

from journeys.models import CampaignRun, Enrollment, StaffTask  # noqa: E402
from journeys.selectors import (  # noqa: E402
    LIFT_MIN_GROUP,
    campaign_calendar,
    campaign_results,
    lift_estimate,
    staff_tasks_for,
)
from tests.factories import CustomerFactory  # noqa: E402


def _enrol(campaign, customer, *, holdout, received=None, entered=None):
    entered = entered or timezone.now()
    return Enrollment.objects.create(
        campaign=campaign,
        customer=customer,
        occurrence="once",
        entered_at=entered,
        trigger_received_at=received,
        is_holdout=holdout,
        bucket=0 if holdout else 50,
    )


def test_results_equal_a_direct_count_of_the_delivery_rows(crm):
    now = timezone.now()
    step = CampaignStepFactory(campaign__owner_department=crm)
    campaign = step.campaign
    statuses = [
        {"sent_at": now},
        {"sent_at": now, "delivered_at": now},
        {"sent_at": now, "delivered_at": now, "opened_at": now},
        {"sent_at": now, "delivered_at": now, "opened_at": now, "clicked_at": now},
        {
            "sent_at": now,
            "opened_at": now,
            "clicked_at": now,
            "converted_at": now,
            "revenue": Decimal(3000),
        },
        {"status": Delivery.Status.SUPPRESSED, "reason": "opted_out"},
        {"status": Delivery.Status.CAPPED, "reason": "budget"},
        {"status": Delivery.Status.CAPPED, "reason": "budget"},
        {"status": Delivery.Status.PENDING, "reason": "quiet_hours"},
        # A holdout person's own order is tracked for the lift, not won by a message.
        {"status": Delivery.Status.HOLDOUT, "converted_at": now, "revenue": Decimal(9000)},
    ]
    for fields in statuses:
        fields.setdefault("status", Delivery.Status.SENT)
        DeliveryFactory(step=step, **fields)
    DeliveryFactory(step=CampaignStepFactory(campaign__owner_department=crm), sent_at=now)

    results = campaign_results(campaign)

    rows = list(Delivery.objects.filter(campaign=campaign).exclude(status=Delivery.Status.HOLDOUT))
    expected = {
        field.removesuffix("_at"): sum(getattr(row, field) is not None for row in rows)
        for field in ("sent_at", "delivered_at", "opened_at", "clicked_at", "converted_at")
    }
    assert (
        dict(results["funnel"])
        == expected
        == {"sent": 5, "delivered": 3, "opened": 3, "clicked": 2, "converted": 1}
    )
    assert results["revenue"] == sum(row.revenue or 0 for row in rows) == 3000
    assert results["holdout"] == 1
    outcomes = {(row["status"], row["reason"]): row["count"] for row in results["outcomes"]}
    assert outcomes == {
        ("capped", "budget"): 2,
        ("pending", "quiet_hours"): 1,
        ("suppressed", "opted_out"): 1,
    }
    variant_row = results["by_variant"][0]
    assert variant_row["sent_at"] == 5
    assert variant_row["total"] == len(rows) + 1


def test_latency_runs_from_the_later_of_trigger_arrival_and_due_time(crm):
    now = timezone.now()
    step = CampaignStepFactory(campaign__owner_department=crm)
    campaign = step.campaign
    seconds = [2, 4, 6, 8, 100]
    for value in seconds:
        enrollment = _enrol(campaign, CustomerFactory(), holdout=False, received=now)
        # due before the trigger arrived: latency counts from the arrival
        DeliveryFactory(
            step=step,
            customer=enrollment.customer,
            enrollment=enrollment,
            due_at=now - dt.timedelta(minutes=5),
            sent_at=now + dt.timedelta(seconds=value),
        )
    delayed = _enrol(campaign, CustomerFactory(), holdout=False, received=now)
    DeliveryFactory(
        step=step,
        customer=delayed.customer,
        enrollment=delayed,
        due_at=now + dt.timedelta(hours=1),
        sent_at=now + dt.timedelta(hours=1, seconds=10),
    )

    latency = campaign_results(campaign)["latency"]

    ordered = sorted([*seconds, 10])
    assert latency["n"] == 6
    assert latency["p50"] == pytest.approx((ordered[2] + ordered[3]) / 2)
    assert latency["p95"] == pytest.approx(ordered[4] + (ordered[5] - ordered[4]) * 0.75)


def test_lift_compares_converted_enrolments_of_treatment_and_holdout(crm):
    step = CampaignStepFactory(campaign__owner_department=crm)
    campaign = step.campaign
    now = timezone.now()
    for index in range(40):
        enrollment = _enrol(campaign, CustomerFactory(), holdout=False)
        DeliveryFactory(
            step=step,
            customer=enrollment.customer,
            enrollment=enrollment,
            sent_at=now,
            converted_at=now if index < 12 else None,
        )
    for index in range(30):
        enrollment = _enrol(campaign, CustomerFactory(), holdout=True)
        DeliveryFactory(
            step=step,
            customer=enrollment.customer,
            enrollment=enrollment,
            status=Delivery.Status.HOLDOUT,
            converted_at=now if index < 3 else None,
        )

    lift = campaign_results(campaign)["lift"]

    assert (lift.treatment_n, lift.treatment_converted) == (40, 12)
    assert (lift.holdout_n, lift.holdout_converted) == (30, 3)
    assert lift.enough
    assert lift.difference == pytest.approx(0.3 - 0.1)
    se = math.sqrt(0.3 * 0.7 / 40 + 0.1 * 0.9 / 30)
    assert lift.ci_low == pytest.approx(0.2 - 1.959964 * se)
    assert lift.ci_high == pytest.approx(0.2 + 1.959964 * se)
    assert lift.significant
    assert lift.relative == pytest.approx(2.0)


def test_lift_below_the_minimum_group_size_is_not_estimated():
    lift = lift_estimate(
        treatment_n=500, treatment_converted=50, holdout_n=LIFT_MIN_GROUP - 1, holdout_converted=1
    )

    assert not lift.enough
    assert lift.difference is None
    assert lift.ci_low is None
    assert lift.holdout_rate == pytest.approx(1 / (LIFT_MIN_GROUP - 1))


def test_lift_interval_including_zero_is_not_significant():
    lift = lift_estimate(
        treatment_n=100, treatment_converted=11, holdout_n=100, holdout_converted=10
    )

    assert lift.enough
    assert lift.ci_low < 0 < lift.ci_high
    assert not lift.significant


def test_calendar_holds_runs_upcoming_slots_and_spans_of_visible_campaigns(crm, sales, crm_editor):
    start = dt.datetime(2030, 5, 1, tzinfo=dt.UTC)
    end = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
    done = CampaignFactory(owner_department=crm, status=Campaign.Status.COMPLETED)
    CampaignRun.objects.create(
        campaign=done, occurrence="r203005020100", scheduled_for=start + dt.timedelta(days=1)
    )
    one_off = CampaignFactory(
        owner_department=crm,
        status=Campaign.Status.SCHEDULED,
        next_run_at=start + dt.timedelta(days=9, hours=1),
    )
    recurring = CampaignFactory(
        owner_department=crm,
        kind=Campaign.Kind.RECURRING,
        cron="0 10 * * 5",
        status=Campaign.Status.SCHEDULED,
        next_run_at=dt.datetime(2030, 5, 3, 1, 0, tzinfo=dt.UTC),  # Friday 10:00 JST
    )
    trigger = CampaignFactory(
        owner_department=crm,
        kind=Campaign.Kind.EVENT,
        status=Campaign.Status.RUNNING,
        starts_at=start - dt.timedelta(days=3),
    )
    CampaignFactory(owner_department=sales, status=Campaign.Status.SCHEDULED, next_run_at=start)
    CampaignFactory(
        owner_department=crm,
        kind=Campaign.Kind.EVENT,
        status=Campaign.Status.RUNNING,
        ends_at=start - dt.timedelta(days=1),
    )

    data = campaign_calendar(crm_editor, start, end)

    runs = [(item.campaign, item.kind, item.at) for item in data["runs"]]
    assert (done, "run", start + dt.timedelta(days=1)) in runs
    assert (one_off, "slot", start + dt.timedelta(days=9, hours=1)) in runs
    fridays = [item.at for item in data["runs"] if item.campaign == recurring]
    assert fridays == [
        dt.datetime(2030, 5, day, 1, 0, tzinfo=dt.UTC) for day in (3, 10, 17, 24, 31)
    ]
    assert {item.campaign.owner_department for item in data["runs"]} == {crm}
    assert [item.campaign for item in data["spans"]] == [trigger]


def test_staff_tasks_for_me_and_for_the_managers_department(crm, sales, crm_editor, crm_manager):
    customer = CustomerFactory()
    mine = StaffTask.objects.create(
        customer=customer, assignee=crm_editor, title="Call", department=crm
    )
    pool = StaffTask.objects.create(customer=customer, title="Visit", department=crm)
    colleague = StaffTask.objects.create(
        customer=customer, title="Other", assignee=crm_manager, department=crm
    )
    StaffTask.objects.create(customer=customer, title="Sales", department=sales)
    StaffTask.objects.create(
        customer=customer, title="Done", assignee=crm_editor, status=StaffTask.Status.DONE
    )

    assert set(staff_tasks_for(crm_editor)) == {mine, pool}
    assert set(staff_tasks_for(crm_manager, scope="department")) == {mine, pool, colleague}
    assert staff_tasks_for(crm_editor, status="all").count() == 3
