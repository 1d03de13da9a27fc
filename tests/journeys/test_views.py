"""The circle ③ page: personas, journeys and campaigns the user may see."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.org.services import share_grant
from journeys.maps.discussion import comment_add
from journeys.maps.services import cell_save
from journeys.models import Campaign
from tests.factories import CampaignFactory, JourneyFactory, PersonaFactory

pytestmark = pytest.mark.django_db

URL = reverse("journeys:index")


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_page_shows_own_and_shared_records_but_not_other_departments(
    client, crm, sales, crm_editor, sales_editor
):
    CampaignFactory(owner_department=crm, name="Spring mail", status=Campaign.Status.RUNNING)
    CampaignFactory(owner_department=sales, name="Secret sales push")
    shared = CampaignFactory(owner_department=sales, name="Store revisit")
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    persona = PersonaFactory(owner_department=sales, name="Busy parent")
    share_grant(obj=persona, department=crm, can_edit=True, by=sales_editor)
    JourneyFactory(persona=persona, name="First purchase path")
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "Spring mail" in html
    assert "Store revisit" in html
    assert "Secret sales push" not in html
    assert "Busy parent" in html
    assert "First purchase path" not in html
    assert '<span class="badge status-running">Running</span>' in html
    assert html.count("Shared with you") == 2


def test_empty_page_explains_what_to_do(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "No personas yet" in html
    assert "No journeys yet" in html
    assert "No campaigns yet" in html


def test_page_query_count_is_fixed(client, crm, crm_editor, django_assert_num_queries):
    for persona in PersonaFactory.create_batch(3, owner_department=crm):
        JourneyFactory(persona=persona)
    CampaignFactory.create_batch(5, owner_department=crm)
    client.force_login(crm_editor)
    client.get(URL)

    # session, user, roles, personas, journeys, activity (revisions, comments), campaigns,
    # memberships for the header
    with django_assert_num_queries(9):
        client.get(URL)


def test_activity_shows_changes_and_comments_on_visible_maps_only(
    client, crm, sales, crm_editor, sales_editor
):
    ours = JourneyFactory(persona=PersonaFactory(owner_department=crm), name="Gift path")
    theirs = JourneyFactory(persona=PersonaFactory(owner_department=sales), name="Sales secret")
    cell_save(
        record=ours, field="description", value="For gift givers", base_version=0, by=crm_editor
    )
    cell_save(record=theirs, field="description", value="Hidden", base_version=0, by=sales_editor)
    comment_add(by=crm_editor, journey=ours, body="Looks right to me")
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "Looks right to me" in html
    link = reverse("journeys:journey_detail", args=[ours.pk])
    assert html.count(f'href="{link}"') >= 2
    assert "Description" in html
    assert "Sales secret" not in html


def test_editors_may_start_personas_and_journeys_and_viewers_may_not(
    client, crm_editor, crm_viewer
):
    client.force_login(crm_editor)
    editor_html = client.get(URL).content.decode()
    client.force_login(crm_viewer)
    viewer_html = client.get(URL).content.decode()

    for name in ("journeys:persona_new", "journeys:journey_new"):
        assert reverse(name) in editor_html
        assert reverse(name) not in viewer_html
