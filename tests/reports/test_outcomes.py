"""Campaign outcomes: stored rows equal a plain-Python count over the raw rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import Order, Survey, SurveyResponse
from journeys.models import Delivery, Enrollment
from reports.models import CampaignOutcome
from reports.outcomes import campaign_outcomes_refresh, outcome_counts, segment_outcome_counts
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
    SegmentFactory,
    SurveyFactory,
    SurveyResponseFactory,
)

pytestmark = pytest.mark.django_db

FIELDS = (
    "enrolled",
    "converted",
    "buyers",
    "repeat_buyers",
    "revenue",
    "promoters",
    "passives",
    "detractors",
)


def enrol(campaign, customer, entered_at, *, holdout=False, occurrence="once"):
    return Enrollment.objects.create(
        campaign=campaign,
        customer=customer,
        occurrence=occurrence,
        entered_at=entered_at,
        is_holdout=holdout,
        bucket=0,
    )


@pytest.fixture
def world():
    """Two campaigns (7- and 3-day windows) with orders and answers around the windows."""
    entered = timezone.now().replace(microsecond=250_000) - dt.timedelta(days=20)
    week = CampaignFactory(conversion_window_days=7)
    short = CampaignFactory(conversion_window_days=3)
    nps = SurveyFactory(kind=Survey.Kind.NPS)
    csat = SurveyFactory(kind=Survey.Kind.CSAT)
    step = CampaignStepFactory(campaign=week)
    people = [CustomerFactory() for _ in range(8)]
    a, b, c, d, e, f, g, h = people

    ea = enrol(week, a, entered)
    enrol(week, b, entered)
    enrol(week, c, entered, holdout=True)
    enrol(week, d, entered + dt.timedelta(hours=5))
    enrol(week, a, entered + dt.timedelta(days=10), occurrence="second")
    enrol(short, e, entered)
    enrol(short, f, entered, holdout=True)
    enrol(short, g, entered)
    # h is never enrolled: its orders and answers count nowhere.

    DeliveryFactory(step=step, customer=a, enrollment=ea, converted_at=entered, revenue=100)
    DeliveryFactory(step=step, customer=c, status=Delivery.Status.HOLDOUT, converted_at=entered)
    DeliveryFactory(step=step, customer=b, status=Delivery.Status.CLICKED)

    order = Order.Status
    # a: bought before, then at entry (inside), and exactly at the window's end (outside).
    OrderFactory(customer=a, ordered_at=entered - dt.timedelta(days=30), total=1000)
    OrderFactory(customer=a, ordered_at=entered, total=2000)
    OrderFactory(customer=a, ordered_at=entered + dt.timedelta(days=7), total=4000)
    # b: a cancelled order in the window and a completed one just before the end.
    OrderFactory(customer=b, ordered_at=entered + dt.timedelta(days=1), status=order.CANCELLED)
    OrderFactory(customer=b, ordered_at=entered + dt.timedelta(days=7, microseconds=-1), total=3000)
    # c (holdout): a repeat buyer in the window.
    OrderFactory(customer=c, ordered_at=entered - dt.timedelta(days=100), total=500)
    OrderFactory(customer=c, ordered_at=entered + dt.timedelta(days=2), total=2500)
    # d: one second before entry only.
    OrderFactory(customer=d, ordered_at=entered + dt.timedelta(hours=5, seconds=-1), total=800)
    # e: inside the 3-day window, g: outside it (day 4), f (holdout): inside, twice.
    OrderFactory(customer=e, ordered_at=entered + dt.timedelta(days=2), total=1200)
    OrderFactory(customer=g, ordered_at=entered + dt.timedelta(days=4), total=1500)
    OrderFactory(customer=f, ordered_at=entered + dt.timedelta(hours=1), total=700)
    OrderFactory(customer=f, ordered_at=entered + dt.timedelta(days=1), total=300)
    OrderFactory(customer=h, ordered_at=entered + dt.timedelta(days=1), total=9999)

    SurveyResponseFactory(
        survey=nps, customer=a, score=10, answered_at=entered + dt.timedelta(days=1)
    )
    SurveyResponseFactory(
        survey=nps, customer=a, score=3, answered_at=entered + dt.timedelta(days=11)
    )
    SurveyResponseFactory(
        survey=nps, customer=b, score=7, answered_at=entered + dt.timedelta(days=8)
    )
    SurveyResponseFactory(
        survey=nps, customer=c, score=8, answered_at=entered + dt.timedelta(days=3)
    )
    SurveyResponseFactory(
        survey=nps, customer=e, score=0, answered_at=entered + dt.timedelta(days=2)
    )
    SurveyResponseFactory(
        survey=csat, customer=g, score=5, answered_at=entered + dt.timedelta(days=1)
    )
    SurveyResponseFactory(survey=nps, customer=h, score=9, answered_at=entered)
    return {"week": week, "short": short, "people": people}


def expected_outcomes(*, members: set[int] | None = None) -> dict[tuple[int, bool], dict]:
    """The outcome figures, counted by hand over every raw row."""
    orders = [o for o in Order.objects.all() if o.status == Order.Status.COMPLETED]
    answers = [r for r in SurveyResponse.objects.select_related("survey") if r.score is not None]
    converted = {
        d.enrollment_id for d in Delivery.objects.all() if d.converted_at and d.enrollment_id
    }
    result: dict[tuple[int, bool], dict] = {}
    for enrolment in Enrollment.objects.select_related("campaign"):
        if members is not None and enrolment.customer_id not in members:
            continue
        key = (enrolment.campaign_id, enrolment.is_holdout)
        counts = result.setdefault(key, dict.fromkeys(FIELDS, 0))
        start = enrolment.entered_at
        end = start + dt.timedelta(days=enrolment.campaign.conversion_window_days)
        mine = [o for o in orders if o.customer_id == enrolment.customer_id]
        inside = [o for o in mine if start <= o.ordered_at < end]
        counts["enrolled"] += 1
        counts["converted"] += enrolment.pk in converted
        if inside:
            counts["buyers"] += 1
            counts["revenue"] += sum(o.total for o in inside)
            counts["repeat_buyers"] += any(o.ordered_at < start for o in mine)
        for answer in answers:
            if (
                answer.customer_id == enrolment.customer_id
                and answer.survey.kind == Survey.Kind.NPS
                and start <= answer.answered_at < end
            ):
                if answer.score >= 9:
                    counts["promoters"] += 1
                elif answer.score >= 7:
                    counts["passives"] += 1
                else:
                    counts["detractors"] += 1
    return result


def stored() -> dict[tuple[int, bool], dict]:
    return {
        (row.campaign_id, row.is_holdout): {name: getattr(row, name) for name in FIELDS}
        for row in CampaignOutcome.objects.all()
    }


def test_refresh_equals_a_count_over_the_raw_rows(world):
    written = campaign_outcomes_refresh()

    expected = expected_outcomes()
    assert written == 4
    rows = stored()
    assert set(rows) == set(expected)
    for key, counts in expected.items():
        assert rows[key] == {**counts, "revenue": Decimal(counts["revenue"])}, key
    # The hand count agrees with the story told in the fixture.
    week = world["week"].pk
    assert rows[(week, False)]["buyers"] == 2  # a (first pass) and b; d bought before entry
    assert rows[(week, False)]["revenue"] == 5000  # the order at the window's end is out
    assert rows[(week, True)]["repeat_buyers"] == 1


def test_refresh_is_idempotent_and_restricts_to_the_campaigns_asked(world):
    campaign_outcomes_refresh()
    first = stored()
    assert campaign_outcomes_refresh(campaign_ids=[world["short"].pk]) == 2
    assert campaign_outcomes_refresh() == 4
    assert stored() == first
    assert CampaignOutcome.objects.count() == 4


def test_a_campaign_without_enrolments_gets_zero_rows(world):
    lonely = CampaignFactory()
    campaign_outcomes_refresh(campaign_ids=[lonely.pk])

    rows = stored()
    assert rows[(lonely.pk, False)] == {**dict.fromkeys(FIELDS, 0), "revenue": Decimal(0)}
    assert rows[(lonely.pk, True)]["enrolled"] == 0


def test_segment_outcomes_count_only_members_enrolments(world):
    a, _b, c, *_rest = world["people"]
    segment = SegmentFactory()
    for person in (a, c, world["people"][4]):
        SegmentMembership.objects.create(segment=segment, customer=person)
    campaign_outcomes_refresh()
    ids = [world["week"].pk, world["short"].pk]

    counts = outcome_counts(campaign_ids=ids, segment_id=segment.pk)
    cached = segment_outcome_counts(campaign_ids=ids, segment_id=segment.pk)

    expected = expected_outcomes(members={a.pk, c.pk, world["people"][4].pk})
    assert {key: {**value, "revenue": int(value["revenue"])} for key, value in counts.items()} == (
        expected
    )
    assert cached == counts
