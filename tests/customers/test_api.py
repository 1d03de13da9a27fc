"""Customers API: company-wide profiles with masked personal data; scoped segments."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from config.org.models import AuditLog
from config.org.services import share_grant
from customers.models import Segment
from tests.factories import CustomerFactory, IdentityFactory, SegmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_any_department_member_lists_customers(api, crm_viewer):
    CustomerFactory.create_batch(3)
    api.force_authenticate(crm_viewer)

    response = api.get(reverse("customer-list"), {"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_users_without_a_membership_get_403_on_customers(api):
    api.force_authenticate(UserFactory())

    assert api.get(reverse("customer-list")).status_code == 403


def test_anonymous_gets_403_on_customers(api):
    assert api.get(reverse("customer-list")).status_code == 403


def test_customer_list_rows_carry_no_personal_data(api, crm_viewer):
    CustomerFactory(family_name="山田", given_name="花子")
    api.force_authenticate(crm_viewer)

    row = api.get(reverse("customer-list")).json()["results"][0]

    assert "山田" not in str(row)
    assert "family_name" not in row


def test_customer_detail_nests_identities_masked_without_view_pii(api, crm_viewer):
    identity = IdentityFactory(value="hanako@example.jp", customer__family_name="山田")
    api.force_authenticate(crm_viewer)

    response = api.get(reverse("customer-detail", args=[identity.customer_id]))

    body = response.json()
    assert response.status_code == 200
    assert body["pii_masked"] is True
    assert body["family_name"] == "山***"
    assert body["identities"] == [
        {
            "id": identity.pk,
            "kind": "email",
            "value": "h***@example.jp",
            "source": "test",
            "first_seen_at": body["identities"][0]["first_seen_at"],
            "last_seen_at": None,
        }
    ]
    assert not AuditLog.objects.filter(action="customer.view_pii").exists()


def test_unmasked_customer_detail_is_audit_logged(api, superuser):
    identity = IdentityFactory(value="hanako@example.jp", customer__family_name="山田")
    api.force_authenticate(superuser)

    body = api.get(reverse("customer-detail", args=[identity.customer_id])).json()

    assert body["pii_masked"] is False
    assert body["family_name"] == "山田"
    assert body["identities"][0]["value"] == "hanako@example.jp"
    entry = AuditLog.objects.get(action="customer.view_pii")
    assert entry.actor == superuser
    assert entry.target_id == str(identity.customer_id)


def test_customers_filter_by_lifecycle_stage(api, crm_viewer):
    loyal = CustomerFactory(lifecycle_stage="loyal")
    CustomerFactory(lifecycle_stage="prospect")
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("customer-list"), {"lifecycle_stage": "loyal"}).json()

    assert [row["id"] for row in body["results"]] == [loyal.pk]


def test_customer_list_query_count_does_not_grow_with_rows(
    client, crm_viewer, django_assert_num_queries
):
    CustomerFactory.create_batch(2)
    client.force_login(crm_viewer)
    url = reverse("customer-list")

    # session, user, memberships, count, page
    with django_assert_num_queries(5):
        assert len(client.get(url).json()["results"]) == 2
    CustomerFactory.create_batch(3)
    with django_assert_num_queries(5):
        assert len(client.get(url).json()["results"]) == 5


def test_department_lists_own_and_shared_segments_only(api, crm, sales, crm_viewer, sales_editor):
    own = SegmentFactory(owner_department=crm)
    shared = SegmentFactory(owner_department=sales)
    SegmentFactory(owner_department=sales)
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("segment-list")).json()

    assert {row["id"] for row in body["results"]} == {own.pk, shared.pk}
    assert body["count"] == 2


def test_another_departments_segment_answers_404(api, sales, crm_viewer):
    other = SegmentFactory(owner_department=sales)
    api.force_authenticate(crm_viewer)

    assert api.get(reverse("segment-detail", args=[other.pk])).status_code == 404
    assert api.get(reverse("segment-detail", args=[other.pk + 1000])).status_code == 404


def test_segment_detail_shows_rules_and_shares(api, crm, sales, crm_viewer, sales_editor):
    segment = SegmentFactory(owner_department=crm, rules={"all": []}, kind=Segment.Kind.STATIC)
    share_grant(obj=segment, department=sales, can_edit=True, by=sales_editor)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("segment-detail", args=[segment.pk])).json()

    assert body["rules"] == {"all": []}
    assert body["kind"] == "static"
    assert body["owner_department"] == {"id": crm.pk, "slug": "crm", "name": "CRM & digital"}
    assert body["shared_with"] == [
        {
            "department": {"id": sales.pk, "slug": "sales", "name": "Sales planning"},
            "can_edit": True,
        }
    ]


def test_segments_filter_by_kind_and_owner(api, crm, sales, crm_viewer, sales_editor):
    static = SegmentFactory(owner_department=crm, kind=Segment.Kind.STATIC)
    SegmentFactory(owner_department=crm, kind=Segment.Kind.DYNAMIC)
    shared = SegmentFactory(owner_department=sales, kind=Segment.Kind.STATIC)
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    api.force_authenticate(crm_viewer)

    by_kind = api.get(reverse("segment-list"), {"kind": "static"}).json()
    by_owner = api.get(reverse("segment-list"), {"owner_department": sales.pk}).json()

    assert {row["id"] for row in by_kind["results"]} == {static.pk, shared.pk}
    assert [row["id"] for row in by_owner["results"]] == [shared.pk]


def test_segment_list_query_count_does_not_grow_with_rows(
    client, crm, sales, crm_viewer, django_assert_num_queries
):
    share_grant(obj=SegmentFactory(owner_department=sales), department=crm, can_edit=False, by=None)
    SegmentFactory(owner_department=crm)
    client.force_login(crm_viewer)
    url = reverse("segment-list")
    client.get(url)  # warm the content-type cache used by the share lookup

    with django_assert_num_queries(5):
        assert len(client.get(url).json()["results"]) == 2
    SegmentFactory.create_batch(3, owner_department=crm)
    with django_assert_num_queries(5):
        assert len(client.get(url).json()["results"]) == 5
