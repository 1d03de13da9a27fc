"""The circle ② page: touchpoints the user may see, grouped by kind."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from experience.models import ExperienceValue, Touchpoint
from tests.factories import EventFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

URL = reverse("experience:index")


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_page_shows_own_and_shared_touchpoints_but_not_other_departments(
    client, crm, sales, crm_editor
):
    TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=sales, name="Sales visits")
    shared = TouchpointFactory(owner_department=sales, name="Flagship store")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "Web shop" in html
    assert "Flagship store" in html
    assert "Sales visits" not in html


def test_page_groups_by_kind_with_channel_owner_values_and_recent_events(client, crm, crm_editor):
    store = TouchpointFactory(
        owner_department=crm,
        name="Ginza store",
        kind=Touchpoint.Kind.OFFLINE,
        channel=Touchpoint.Channel.STORE,
    )
    store.experience_values.add(ExperienceValue.objects.get(code="reassurance"))
    EventFactory.create_batch(4, touchpoint=store)
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "<h2" in html
    assert ">Offline</h2>" in html
    assert "<td>Store</td>" in html
    assert "<td>CRM &amp; digital</td>" in html
    assert "Reassurance" in html
    assert '<td class="number">4</td>' in html


def test_empty_page_explains_what_to_do(client, crm_editor):
    client.force_login(crm_editor)

    assert "No touchpoints" in client.get(URL).content.decode()


def test_page_query_count_does_not_grow_with_touchpoints(
    client, crm, crm_editor, django_assert_num_queries
):
    values = list(ExperienceValue.objects.all())
    for touchpoint in TouchpointFactory.create_batch(5, owner_department=crm):
        touchpoint.experience_values.set(values[:2])
        EventFactory(touchpoint=touchpoint, occurred_at=timezone.now() - dt.timedelta(days=1))
    client.force_login(crm_editor)
    client.get(URL)

    # session, user, roles, touchpoints, their values, memberships for the header
    with django_assert_num_queries(6):
        client.get(URL)
