"""Platform API: personas, journeys with stages and campaigns with steps, all scoped."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experience.models import ExperienceValue
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    JourneyFactory,
    PersonaFactory,
    StageFactory,
)

pytestmark = pytest.mark.django_db


def test_journey_detail_lists_stages_in_order(api, crm, crm_viewer):
    journey = JourneyFactory(owner_department=crm)
    later = StageFactory(journey=journey, position=2, name="Purchase")
    first = StageFactory(journey=journey, position=1, name="Awareness")
    first.experience_values.set(ExperienceValue.objects.filter(code="fun"))
    api.force_authenticate(crm_viewer)

    listed = api.get(reverse("journey-list")).json()["results"][0]
    body = api.get(reverse("journey-detail", args=[journey.pk])).json()

    assert listed["stage_count"] == 2
    assert listed["persona"] == {"id": journey.persona_id, "name": journey.persona.name}
    assert [stage["id"] for stage in body["stages"]] == [first.pk, later.pk]
    assert body["stages"][0]["experience_values"] == ["fun"]


def test_campaign_detail_lists_steps_in_order(api, crm, crm_viewer):
    campaign = CampaignFactory(owner_department=crm)
    second = CampaignStepFactory(campaign=campaign, position=2, wait_days=3)
    first = CampaignStepFactory(campaign=campaign, position=1)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("campaign-detail", args=[campaign.pk])).json()

    assert [step["id"] for step in body["steps"]] == [first.pk, second.pk]
    assert body["steps"][1]["wait_days"] == 3
    assert body["status"] == "draft"


def test_campaigns_filter_by_status(api, crm, crm_viewer):
    running = CampaignFactory(owner_department=crm, status="running")
    CampaignFactory(owner_department=crm, status="draft")
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("campaign-list"), {"status": "running"}).json()

    assert [row["id"] for row in body["results"]] == [running.pk]


def _persona(department):
    persona = PersonaFactory(owner_department=department)
    persona.experience_values.set(ExperienceValue.objects.all()[:2])
    return persona


def _journey(department):
    journey = JourneyFactory(owner_department=department)
    StageFactory.create_batch(2, journey=journey)
    return journey


def _campaign(department):
    return CampaignStepFactory(campaign__owner_department=department).campaign


@pytest.mark.parametrize(
    ("basename", "make", "queries"),
    [
        # session, user, memberships, count, page, experience values
        ("persona", _persona, 6),
        # session, user, memberships, count, page (stage count annotated, persona joined)
        ("journey", _journey, 5),
        ("campaign", _campaign, 5),
    ],
)
def test_list_query_count_does_not_grow_with_rows(
    client, crm, crm_viewer, django_assert_num_queries, basename, make, queries
):
    for _ in range(2):
        make(crm)
    client.force_login(crm_viewer)
    url = reverse(f"{basename}-list")
    client.get(url)  # warm the content-type cache used by the share lookup

    with django_assert_num_queries(queries):
        assert len(client.get(url).json()["results"]) == 2
    for _ in range(3):
        make(crm)
    with django_assert_num_queries(queries):
        assert len(client.get(url).json()["results"]) == 5


@pytest.mark.parametrize(("basename", "make"), [("journey", _journey), ("campaign", _campaign)])
def test_detail_query_count_does_not_grow_with_children(client, crm, crm_viewer, basename, make):
    small = make(crm)
    big = make(crm)
    if basename == "journey":
        StageFactory.create_batch(4, journey=big)
    else:
        for position in range(2, 6):
            CampaignStepFactory(campaign=big, position=position)
    client.force_login(crm_viewer)
    client.get(reverse(f"{basename}-detail", args=[small.pk]))

    with CaptureQueriesContext(connection) as small_queries:
        client.get(reverse(f"{basename}-detail", args=[small.pk]))
    with CaptureQueriesContext(connection) as big_queries:
        client.get(reverse(f"{basename}-detail", args=[big.pk]))

    assert len(big_queries) == len(small_queries)
