"""The CX-value report: each figure equals a count over the raw rows the user may see."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import Event, ExperienceValue, Survey, SurveyResponse, Touchpoint
from journeys.models import Delivery, Enrollment
from reports.charts.cx import value_heatmap, value_trend
from reports.outcomes import campaign_outcomes_refresh
from reports.rollups import rollups_rebuild
from reports.selectors.cx import ADVOCACY_EVENT_TYPES
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    EventTypeFactory,
    SegmentFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/cx-value/"
DEAL = ExperienceValue.bits_for(["deal"])
DEAL_FUN = ExperienceValue.bits_for(["deal", "fun"])


def values(*codes):
    return list(ExperienceValue.objects.filter(code__in=codes))


@pytest.fixture
def world(crm, sales):
    now = timezone.now()
    shop = TouchpointFactory(owner_department=crm, name="Web shop")
    shop.experience_values.set(values("deal"))
    store = TouchpointFactory(
        owner_department=sales, name="Ginza store", channel=Touchpoint.Channel.STORE
    )
    store.experience_values.set(values("deal", "empathy"))
    people = [CustomerFactory() for _ in range(10)]
    view, review = EventTypeFactory(name="page_view"), EventTypeFactory(name="review_posted")
    for index, person in enumerate(people[:6]):
        for days in (1, 1, 3):
            EventFactory(
                customer=person,
                touchpoint=shop,
                event_type=view,
                value_bits=DEAL_FUN if index % 2 else DEAL,
                occurred_at=now - dt.timedelta(days=days, minutes=index),
            )
    EventFactory(customer=people[0], touchpoint=shop, event_type=review, occurred_at=now)
    EventFactory(customer=people[7], touchpoint=store, event_type=view, value_bits=DEAL)
    EventFactory(customer=people[8], event_type=view, occurred_at=now - dt.timedelta(days=200))

    campaign = CampaignFactory(owner_department=crm, name="Deal mail")
    campaign.experience_values.set(values("deal", "empathy"))
    hidden = CampaignFactory(owner_department=sales, name="Store invitation")
    hidden.experience_values.set(values("deal"))
    step = CampaignStepFactory(campaign=campaign)
    entered = now - dt.timedelta(days=5)
    for index, person in enumerate(people[:8]):
        holdout = index >= 6
        enrolment = Enrollment.objects.create(
            campaign=campaign,
            customer=person,
            occurrence="once",
            entered_at=entered,
            is_holdout=holdout,
            bucket=index,
        )
        DeliveryFactory(
            step=step,
            customer=person,
            enrollment=enrolment,
            status=Delivery.Status.HOLDOUT if holdout else Delivery.Status.OPENED,
            sent_at=None if holdout else entered,
            opened_at=None if holdout else entered + dt.timedelta(hours=1),
            clicked_at=entered + dt.timedelta(hours=2) if index < 3 else None,
            converted_at=entered + dt.timedelta(hours=3) if index in (0, 6) else None,
            revenue=5000 if index == 0 else None,
        )
    DeliveryFactory(step=CampaignStepFactory(campaign=hidden), customer=people[9], sent_at=now)

    nps = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS, name="After purchase")
    other = SurveyFactory(owner_department=sales, kind=Survey.Kind.NPS, name="Store survey")
    for index, (score, comment) in enumerate(
        [(10, "Lovely flowers"), (9, ""), (3, "Late delivery"), (8, "Fine")]
    ):
        SurveyResponseFactory(
            survey=nps,
            customer=people[index if index < 3 else 6],
            score=score,
            comment=comment,
            answered_at=entered + dt.timedelta(days=1, hours=index),
        )
    SurveyResponseFactory(survey=other, customer=people[1], score=10, comment="Secret words")
    rollups_rebuild()
    campaign_outcomes_refresh()
    return {"people": people, "shop": shop, "store": store, "campaign": campaign}


def blocks(api, user, query=""):
    api.force_authenticate(user)
    response = api.get(URL + query)
    assert response.status_code == 200, response.content
    return {block["key"]: block for block in response.json()["blocks"]}


def deal_row(block):
    (row,) = [row for row in block["rows"] if row["value"] == "Deal (お得)"]
    return row


def by_hand(*, members=None):
    """The deal row as counted over raw rows, for a CRM viewer with default filters."""
    lo = timezone.now() - dt.timedelta(days=120)
    shop = Touchpoint.objects.get(name="Web shop")
    day_people = defaultdict(set)
    value_events = 0
    for event in Event.objects.all():
        if event.occurred_at < lo:
            continue
        day = timezone.localtime(event.occurred_at).date()
        if event.touchpoint_id == shop.pk:
            day_people[(day, event.event_type_id)].add(event.customer_id)
        value_events += bool(event.value_bits & DEAL)
    enrolments = list(Enrollment.objects.filter(campaign__name="Deal mail"))
    if members is not None:
        enrolments = [e for e in enrolments if e.customer_id in members]
    treated = [e for e in enrolments if not e.is_holdout]
    deliveries = [
        d
        for d in Delivery.objects.filter(campaign__name="Deal mail")
        if d.status != Delivery.Status.HOLDOUT
    ]

    def nps(group):
        scores = [
            r.score
            for r in SurveyResponse.objects.filter(survey__kind=Survey.Kind.NPS)
            for e in group
            if r.customer_id == e.customer_id
            and e.entered_at <= r.answered_at < e.entered_at + dt.timedelta(days=7)
        ]
        if not scores:
            return None
        promoters = sum(score >= 9 for score in scores)
        detractors = sum(score <= 6 for score in scores)
        return round((promoters - detractors) * 100 / len(scores), 1)

    return {
        "reached": len({e.customer_id for e in treated}),
        "visits": sum(len(people) for people in day_people.values()),
        "value_events": value_events,
        "opened": sum(1 for d in deliveries if d.opened_at),
        "clicked": sum(1 for d in deliveries if d.clicked_at),
        "converted": sum(1 for d in deliveries if d.converted_at),
        "revenue": sum(d.revenue or 0 for d in deliveries if d.converted_at),
        "nps_reached": nps(treated),
        "nps_holdout": nps([e for e in enrolments if e.is_holdout]),
    }


def test_value_row_equals_hand_counts_over_raw_rows(api, crm_viewer, world):
    report = blocks(api, crm_viewer)

    row = deal_row(report["values"])
    expected = by_hand()
    assert {key: row[key] for key in expected} == expected
    assert row["campaigns"] == "Deal mail"
    assert row["touchpoints"] == "Web shop"
    assert row["nps_change"] == pytest.approx(row["nps_reached"] - row["nps_holdout"])
    assert row["repeat_reached"] == 0


def test_weekly_trend_adds_up_to_the_value_totals(api, crm_viewer, world):
    report = blocks(api, crm_viewer)

    row = deal_row(report["values"])
    weeks = [week for week in report["trend"]["rows"] if week["value"] == "Deal (お得)"]
    for key in ("value_events", "opened", "clicked", "converted", "revenue"):
        assert sum(week[key] for week in weeks) == row[key], key
    fun_weeks = [week for week in report["trend"]["rows"] if week["value"] == "Fun (楽しい)"]
    assert sum(week["value_events"] for week in fun_weeks) == 9


def test_empathy_shows_visible_comments_and_the_loyalty_shift(api, crm_viewer, world):
    empathy = blocks(api, crm_viewer)["empathy"]

    metrics = {metric["key"]: metric["value"] for metric in empathy["metrics"]}
    texts = [row["comment"] for row in empathy["rows"]]
    assert metrics["comments"] == 3
    assert texts == ["Fine", "Late delivery", "Lovely flowers"]
    assert "Secret words" not in str(empathy)
    # Treated answers in the window: 10, 9, 3 and the sales survey's 10 (outcomes count
    # every NPS answer) → 3 promoters of 4; the holdout's one answer is an 8.
    assert metrics["promoters_reached"] == pytest.approx(3 / 4)
    assert metrics["promoters_holdout"] == 0
    assert metrics["promoter_shift"] == pytest.approx(3 / 4)
    assert metrics["advocacy_events"] == 1
    assert "review_posted" in ADVOCACY_EVENT_TYPES


def test_segment_filter_restricts_reach_and_outcomes_and_says_where_it_does_not(
    api, crm_viewer, crm, world
):
    people = world["people"]
    segment = SegmentFactory(owner_department=crm)
    members = {people[0].pk, people[1].pk, people[6].pk}
    for pk in members:
        SegmentMembership.objects.create(segment=segment, customer_id=pk)

    report = blocks(api, crm_viewer, f"?segment={segment.pk}")

    row = deal_row(report["values"])
    expected = by_hand(members=members)
    assert row["reached"] == expected["reached"] == 2
    assert row["nps_reached"] == expected["nps_reached"]
    assert row["opened"] == expected["opened"]  # daily totals: the segment does not apply
    assert "does not apply" in report["trend"]["note"]
    assert "segment filter applies" in report["values"]["note"]
    assert report["empathy"]["metrics"][0]["value"] == 2  # comments of members only


def test_other_departments_campaigns_and_touchpoints_stay_hidden(api, crm_viewer, superuser, world):
    hidden = deal_row(blocks(api, crm_viewer)["values"])
    assert "Store invitation" not in hidden["campaigns"]
    assert "Ginza store" not in hidden["touchpoints"]

    everything = deal_row(blocks(api, superuser)["values"])
    assert "Store invitation" in everything["campaigns"]
    assert "Ginza store" in everything["touchpoints"]


def test_department_and_channel_filters_narrow_touchpoints(api, superuser, sales, world):
    report = blocks(api, superuser, f"?department={sales.pk}&channel=store")

    row = deal_row(report["values"])
    assert row["touchpoints"] == "Ginza store"
    assert row["campaigns"] == ""
    assert row["visits"] == 1
    assert row["value_events"] == 1  # only events at the store


def test_page_renders_for_a_viewer_and_anonymous_goes_to_login(client, crm_viewer, world):
    url = reverse("reports:report", args=["cx-value"])
    assert client.get(url).status_code == 302

    client.force_login(crm_viewer)
    response = client.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="chart-values"' in html
    assert 'id="chart-trend"' in html
    assert "Lovely flowers" in html


def test_heatmap_scales_each_measure_by_its_largest_magnitude():
    figure = value_heatmap(
        ["Deal", "Fun"], ["Reach", "NPS"], [[10, -20], [5, None]], [["10"] * 2] * 2
    )

    assert [list(row) for row in figure.data[0].z] == [[1.0, -1.0], [0.5, None]]


def test_trend_draws_a_line_per_value_and_a_dotted_conversion_line():
    weeks = [dt.date(2026, 1, 5), dt.date(2026, 1, 12)]
    figure = value_trend(weeks, {"Deal": [1, 2]}, {"Deal": [0, 1]})

    assert [trace.name for trace in figure.data] == ["Deal", "Deal: conversions"]
    assert figure.data[1].line.dash == "dot"
