"""The campaign-lift report: treatment against holdout per visible campaign."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import Campaign, Delivery, Enrollment
from reports.charts.lift import LiftPoint, lift_figure
from reports.outcomes import campaign_outcomes_refresh
from reports.rollups import rollups_rebuild
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/lift/"


def run_campaign(campaign, *, treated, held, converted_treated, converted_held, buyers=0):
    """Enrol people two days ago, one delivery each; the first ones convert or buy."""
    entered = timezone.now() - dt.timedelta(days=2)
    step = CampaignStepFactory(campaign=campaign)
    for index in range(treated + held):
        holdout = index >= treated
        position = index - treated if holdout else index
        customer = CustomerFactory()
        enrolment = Enrollment.objects.create(
            campaign=campaign,
            customer=customer,
            occurrence="once",
            entered_at=entered,
            is_holdout=holdout,
            bucket=index % 100,
        )
        converts = position < (converted_held if holdout else converted_treated)
        DeliveryFactory(
            step=step,
            customer=customer,
            enrollment=enrolment,
            status=Delivery.Status.HOLDOUT if holdout else Delivery.Status.SENT,
            sent_at=None if holdout else entered,
            converted_at=entered + dt.timedelta(hours=1) if converts else None,
            revenue=3000 if converts and not holdout else None,
        )
        if position < buyers:
            OrderFactory(customer=customer, ordered_at=entered + dt.timedelta(days=1), total=4000)


@pytest.fixture
def campaigns(crm, sales):
    spring = CampaignFactory(owner_department=crm, name="Spring sale")
    run_campaign(spring, treated=40, held=40, converted_treated=12, converted_held=4, buyers=10)
    tiny = CampaignFactory(owner_department=crm, name="Tiny test")
    run_campaign(tiny, treated=5, held=5, converted_treated=1, converted_held=0)
    secret = CampaignFactory(
        owner_department=sales, name="Sales secret", channel=Campaign.Channel.SMS
    )
    run_campaign(secret, treated=30, held=30, converted_treated=3, converted_held=3)
    rollups_rebuild()
    campaign_outcomes_refresh()
    return {"spring": spring, "tiny": tiny, "secret": secret}


def block(api, user, query=""):
    api.force_authenticate(user)
    response = api.get(URL + query)
    assert response.status_code == 200, response.content
    (lift,) = response.json()["blocks"]
    return lift


def test_lift_rows_equal_a_hand_computed_difference_of_proportions(api, crm_viewer, campaigns):
    lift = block(api, crm_viewer)

    rows = {row["campaign"]: row for row in lift["rows"]}
    assert set(rows) == {"Spring sale", "Tiny test"}
    spring = rows["Spring sale"]
    p1, p2 = 12 / 40, 4 / 40
    se = math.sqrt(p1 * (1 - p1) / 40 + p2 * (1 - p2) / 40)
    assert spring["treated"] == 40
    assert spring["holdout"] == 40
    assert spring["conversion_treated"] == pytest.approx(p1)
    assert spring["conversion_holdout"] == pytest.approx(p2)
    assert spring["conversion_lift"] == pytest.approx(p1 - p2)
    assert spring["conversion_low"] == pytest.approx(p1 - p2 - 1.959964 * se)
    assert spring["conversion_high"] == pytest.approx(p1 - p2 + 1.959964 * se)
    assert spring["verdict"] == "Higher than holdout"
    assert spring["purchase_treated"] == pytest.approx(10 / 40)
    assert spring["purchase_holdout"] == pytest.approx(10 / 40)
    assert spring["purchase_lift"] == pytest.approx(0)
    assert spring["revenue_treated"] == pytest.approx(10 * 4000 / 40)
    assert spring["incremental_conversions"] == pytest.approx((p1 - p2) * 40)

    tiny = rows["Tiny test"]
    assert tiny["verdict"] == "Not enough people"
    assert tiny["conversion_lift"] is None

    metrics = {metric["key"]: metric["value"] for metric in lift["metrics"]}
    assert metrics["campaigns"] == 2
    assert metrics["significant"] == 1
    assert metrics["incremental_conversions"] == pytest.approx((p1 - p2) * 40)
    assert metrics["incremental_revenue"] == pytest.approx(0)


def test_department_and_channel_filters_pick_the_campaigns(api, superuser, sales, campaigns):
    everything = block(api, superuser)
    assert {row["campaign"] for row in everything["rows"]} == {
        "Spring sale",
        "Tiny test",
        "Sales secret",
    }
    by_department = block(api, superuser, f"?department={sales.pk}")
    assert [row["campaign"] for row in by_department["rows"]] == ["Sales secret"]
    by_channel = block(api, superuser, "?channel=email")
    assert {row["campaign"] for row in by_channel["rows"]} == {"Spring sale", "Tiny test"}
    assert block(api, superuser, "?channel=store")["rows"] == []


def test_a_campaign_idle_in_the_period_is_not_listed(api, crm_viewer, campaigns):
    today = timezone.localdate()
    old = f"?start={today - dt.timedelta(days=400)}&end={today - dt.timedelta(days=300)}"

    assert block(api, crm_viewer, old)["rows"] == []


def test_page_renders_for_a_viewer_with_the_figure(client, crm_viewer, campaigns):
    client.force_login(crm_viewer)

    response = client.get(reverse("reports:report", args=["lift"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="chart-lift"' in html
    assert "Spring sale" in html
    assert "Sales secret" not in html


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("reports:report", args=["lift"]))

    assert response.status_code == 302
    assert reverse("login") in response.url


def test_a_bad_filter_answers_400_naming_it(client, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(reverse("reports:report", args=["lift"]) + "?channel=pigeon")

    assert response.status_code == 400
    assert "channel" in response.content.decode()


def test_lift_figure_draws_intervals_in_points():
    figure = lift_figure([LiftPoint("A", 20.0, 5.0, 35.0)])

    (trace,) = figure.data
    assert list(trace.x) == [20.0]
    assert list(trace.error_x.array) == [15.0]
    assert list(trace.error_x.arrayminus) == [15.0]
