"""Experience API: scoped touchpoints and surveys; company-wide event types and products."""

from __future__ import annotations

import pytest
from django.urls import reverse

from experience.models import EventType, ExperienceValue, Touchpoint
from tests.factories import (
    EventTypeFactory,
    ProductFactory,
    SurveyFactory,
    TouchpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _touchpoint_with_values(department):
    touchpoint = TouchpointFactory(owner_department=department)
    touchpoint.experience_values.set(ExperienceValue.objects.all()[:2])
    return touchpoint


def test_touchpoint_rows_carry_experience_value_codes(api, crm, crm_viewer):
    touchpoint = _touchpoint_with_values(crm)
    api.force_authenticate(crm_viewer)

    row = api.get(reverse("touchpoint-list")).json()["results"][0]

    assert row["id"] == touchpoint.pk
    assert row["experience_values"] == ["deal", "convenience"]
    assert row["owner_department"]["slug"] == "crm"


def test_touchpoints_filter_by_channel(api, crm, crm_viewer):
    store = TouchpointFactory(owner_department=crm, channel=Touchpoint.Channel.STORE)
    TouchpointFactory(owner_department=crm, channel=Touchpoint.Channel.WEB)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("touchpoint-list"), {"channel": "store"}).json()

    assert [row["id"] for row in body["results"]] == [store.pk]


def test_surveys_filter_by_touchpoint(api, crm, crm_viewer):
    touchpoint = TouchpointFactory(owner_department=crm)
    survey = SurveyFactory(owner_department=crm, touchpoint=touchpoint)
    SurveyFactory(owner_department=crm)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("survey-list"), {"touchpoint": touchpoint.pk}).json()

    assert [row["id"] for row in body["results"]] == [survey.pk]


@pytest.mark.parametrize("basename", ["event-type", "product"])
def test_catalogue_is_company_wide_for_members_only(api, crm_viewer, basename):
    EventTypeFactory(name="purchase")
    ProductFactory()
    api.force_authenticate(crm_viewer)
    listed = api.get(reverse(f"{basename}-list"))
    api.force_authenticate(UserFactory())
    refused = api.get(reverse(f"{basename}-list"))

    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert refused.status_code == 403


def test_products_filter_by_category(api, crm_viewer):
    flowers = ProductFactory(category="flowers")
    ProductFactory(category="gifts")
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("product-list"), {"category": "flowers"}).json()

    assert [row["sku"] for row in body["results"]] == [flowers.sku]


def _event_type(department):
    return EventTypeFactory(name=f"event-{EventType.objects.count()}", owner_department=department)


@pytest.mark.parametrize(
    ("basename", "make", "queries"),
    [
        # session, user, memberships, count, page, experience values
        ("touchpoint", _touchpoint_with_values, 6),
        # session, user, memberships, count, page
        ("survey", lambda department: SurveyFactory(owner_department=department), 5),
        ("product", lambda department: ProductFactory(), 5),
        ("event-type", _event_type, 5),
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
