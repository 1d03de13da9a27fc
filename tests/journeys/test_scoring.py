"""Lead scoring: rule points fading week by week, lead stages of prospects, decay in the tick."""

from __future__ import annotations

import datetime as dt

import pytest

from customers.metrics import metrics_rebuild
from customers.models import CustomerMetrics
from experience.models import Event
from journeys import scheduling, scoring
from journeys.models import ScoringRule
from tests.factories import CustomerFactory, EventFactory, EventTypeFactory, OrderFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(weeks=1)


@pytest.fixture
def rules():
    page_view = EventTypeFactory(name="page_view")
    webinar = EventTypeFactory(name="webinar_attended")
    return [
        ScoringRule.objects.create(
            name="Pricing page",
            event_type=page_view,
            properties={"page": "pricing"},
            points=30,
            decay_percent=10,
        ),
        ScoringRule.objects.create(name="Webinar", event_type=webinar, points=25, decay_percent=0),
        ScoringRule.objects.create(
            name="Switched off", event_type=webinar, points=100, is_active=False
        ),
    ]


def metrics_of(customer) -> tuple[int, str]:
    row = CustomerMetrics.objects.get(customer=customer)
    return row.lead_score, row.lead_stage


def rescore(customer, now) -> tuple[int, str]:
    metrics_rebuild(customer_ids=[customer.pk], now=now)
    scoring.lead_stages_sync(customer_ids=[customer.pk], now=now)
    return metrics_of(customer)


def stage_events(customer) -> list[tuple[str, str]]:
    return [
        (e["properties"]["from"], e["properties"]["to"])
        for e in Event.objects.filter(customer=customer, event_type__name="lead_stage_changed")
        .order_by("occurred_at", "pk")
        .values("properties")
    ]


def test_lead_score_fades_week_by_week_and_the_stage_follows(rules):
    prospect = CustomerFactory()
    EventFactory(
        customer=prospect,
        event_type=rules[0].event_type,
        occurred_at=NOW - dt.timedelta(days=1),
        properties={"page": "pricing"},
    )
    EventFactory(
        customer=prospect,
        event_type=rules[0].event_type,
        occurred_at=NOW,
        properties={"page": "home"},  # does not match the rule
    )
    EventFactory(customer=prospect, event_type=rules[1].event_type, occurred_at=NOW - 20 * WEEK)
    assert rescore(prospect, NOW) == (55, "mql")  # 30 + 25 (the webinar never fades)
    assert rescore(prospect, NOW + WEEK) == (52, "mql")  # 30 × 0.9 + 25 = 52
    assert rescore(prospect, NOW + 3 * WEEK) == (47, "lead")  # 30 × 0.9³ + 25 = 46.87
    assert stage_events(prospect) == [("", "mql"), ("mql", "lead")]


def test_customers_who_bought_have_no_lead_stage(rules):
    buyer = CustomerFactory()
    OrderFactory(customer=buyer, ordered_at=NOW - dt.timedelta(days=3))
    EventFactory(customer=buyer, event_type=rules[1].event_type, occurred_at=NOW)
    EventFactory(customer=buyer, event_type=rules[1].event_type, occurred_at=NOW)
    assert rescore(buyer, NOW) == (50, "")
    assert stage_events(buyer) == []


def test_thresholds_come_from_settings(rules, settings):
    settings.LEAD_SCORE_LEAD_THRESHOLD = 10
    settings.LEAD_SCORE_MQL_THRESHOLD = 100
    prospect = CustomerFactory()
    EventFactory(customer=prospect, event_type=rules[1].event_type, occurred_at=NOW)
    assert rescore(prospect, NOW) == (25, "lead")


def test_without_rules_the_built_in_engagement_score_stays():
    prospect = CustomerFactory()
    EventFactory(
        customer=prospect, event_type=EventTypeFactory(name="add_to_cart"), occurred_at=NOW
    )
    metrics_rebuild(customer_ids=[prospect.pk], now=NOW)
    assert metrics_of(prospect) == (3, "")  # circle ②'s weight of an add to cart


def test_the_tick_lets_scores_decay_without_new_events(rules):
    prospect = CustomerFactory()
    EventFactory(
        customer=prospect,
        event_type=rules[0].event_type,
        occurred_at=NOW,
        properties={"page": "pricing"},
    )
    idle = CustomerFactory()  # no score: never rescored
    metrics_rebuild(customer_ids=[prospect.pk, idle.pk], now=NOW)
    scoring.lead_stages_sync(now=NOW)
    assert metrics_of(prospect) == (30, "lead")

    # Less than a day later nothing is due; ten weeks on the score has faded.
    assert scoring.lead_scores_decay(now=NOW + dt.timedelta(hours=12)) == 0
    report = scheduling.tick(now=NOW + 10 * WEEK)
    assert report.rescored == 1
    assert metrics_of(prospect) == (10, "")  # 30 × 0.9¹⁰ = 10.46
    assert stage_events(prospect) == [("", "lead"), ("lead", "")]
    assert scoring.lead_scores_decay(now=NOW + 10 * WEEK + dt.timedelta(hours=1)) == 0


def test_score_source_is_one_grouped_query_per_chunk(rules, django_assert_max_num_queries):
    people = [CustomerFactory() for _ in range(5)]
    for person in people:
        EventFactory(customer=person, event_type=rules[1].event_type, occurred_at=NOW)
    # The rebuild's queries do not grow with the number of customers.
    with django_assert_max_num_queries(20):
        metrics_rebuild(customer_ids=[p.pk for p in people], now=NOW)
    assert {metrics_of(p)[0] for p in people} == {25}
