"""Segment API: CRUD with path-named rule errors, count, members, contains, scoping."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.org.services import share_grant
from customers.models import Segment, SegmentMembership
from customers.segments import segment_refresh
from tests.factories import ConsentFactory, CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

EMAIL = {"type": "consent", "channel": "email", "status": "granted"}


def test_create_validates_and_stores_the_rule_tree(api, crm, crm_editor):
    api.force_authenticate(crm_editor)

    response = api.post(
        reverse("segment-list"),
        {
            "name": "Opt-ins",
            "rules": {"op": "and", "children": [EMAIL]},
            "owner_department": crm.pk,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rules"] == {"op": "and", "children": [EMAIL]}
    assert body["owner_department"]["id"] == crm.pk
    assert Segment.objects.get(pk=body["id"]).created_by == crm_editor


def test_bad_rules_answer_400_naming_the_path(api, crm, crm_editor):
    api.force_authenticate(crm_editor)
    rules = {"op": "or", "children": [EMAIL, {"type": "metric", "field": "order_count"}]}

    response = api.post(
        reverse("segment-list"),
        {"name": "Bad", "rules": rules, "owner_department": crm.pk},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"rules": ["rules.children[1].op: is required"]}
    assert not Segment.objects.exists()


def test_creating_for_a_department_one_only_views_answers_403(api, crm, crm_viewer):
    api.force_authenticate(crm_viewer)

    response = api.post(
        reverse("segment-list"),
        {"name": "X", "rules": {}, "owner_department": crm.pk},
        format="json",
    )

    assert response.status_code == 403


def test_update_by_viewer_403_by_other_department_404_by_shared_editor_200(
    api, crm, sales, crm_viewer, sales_editor, crm_manager
):
    segment = SegmentFactory(owner_department=crm, rules=EMAIL)
    url = reverse("segment-detail", args=[segment.pk])

    api.force_authenticate(crm_viewer)
    assert api.patch(url, {"name": "New"}, format="json").status_code == 403
    api.force_authenticate(sales_editor)
    assert api.patch(url, {"name": "New"}, format="json").status_code == 404

    share_grant(obj=segment, department=sales, can_edit=True, by=crm_manager)
    response = api.patch(
        url, {"name": "New", "rules": {"type": "nps", "category": "promoter"}}, format="json"
    )
    assert response.status_code == 200, response.content
    segment.refresh_from_db()
    assert segment.name == "New"
    assert segment.rules == {"type": "nps", "category": "promoter"}


def test_delete(api, crm, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    api.force_authenticate(crm_editor)

    assert api.delete(reverse("segment-detail", args=[segment.pk])).status_code == 204
    assert not Segment.objects.filter(pk=segment.pk).exists()


def test_count_members_and_contains(api, crm, crm_viewer):
    inside = CustomerFactory(family_name="山田", given_name="花子")
    outside = CustomerFactory()
    ConsentFactory(customer=inside, channel="email")
    segment = SegmentFactory(owner_department=crm, rules=EMAIL)
    segment_refresh(segment=segment)
    ConsentFactory(customer=outside, channel="email")  # matches now, not yet materialised
    api.force_authenticate(crm_viewer)

    count = api.get(reverse("segment-count", args=[segment.pk])).json()
    assert count["count"] == 2
    assert count["member_count"] == 1
    assert count["computed_at"]

    members = api.get(reverse("segment-members", args=[segment.pk])).json()
    assert members["count"] == 1
    assert members["results"][0]["customer"] == inside.pk
    assert members["results"][0]["name"] == "山***"

    url = reverse("segment-contains", args=[segment.pk])
    assert api.get(url, {"customer": outside.pk}).json() == {"member": True}
    assert api.get(url, {"customer": outside.pk + 1000}).json() == {"member": False}
    assert api.get(url, {"customer": "x"}).status_code == 400


def test_static_contains_uses_the_snapshot(api, crm, crm_viewer):
    listed = CustomerFactory()
    segment = SegmentFactory(owner_department=crm, kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=segment, customer=listed)
    api.force_authenticate(crm_viewer)

    url = reverse("segment-contains", args=[segment.pk])
    assert api.get(url, {"customer": listed.pk}).json() == {"member": True}


def test_another_departments_segment_endpoints_answer_404(api, sales, crm_viewer):
    segment = SegmentFactory(owner_department=sales)
    api.force_authenticate(crm_viewer)

    for name in ("segment-detail", "segment-count", "segment-members", "segment-contains"):
        assert api.get(reverse(name, args=[segment.pk]), {"customer": 1}).status_code == 404
