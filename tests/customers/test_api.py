"""Customers API: company-wide profiles with masked personal data; scoped segments."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.org.models import AuditLog
from config.org.services import share_grant
from customers.models import Customer, Identity, Segment
from tests.factories import CustomerFactory, IdentityFactory, SegmentFactory, UserFactory

pytestmark = pytest.mark.django_db


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


# --- writes, identities, consents, lookup -----------------------------------------------


def test_editor_creates_a_customer_and_gets_it_masked_without_view_pii(api, crm_editor):
    api.force_authenticate(crm_editor)

    response = api.post(
        reverse("customer-list"),
        {"family_name": "山田", "given_name": "花子", "birth_date": "1985-04-01"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["family_name"] == "山***"
    assert body["birth_date"] is None
    customer = Customer.objects.get(pk=body["id"])
    assert customer.family_name == "山田"
    assert AuditLog.objects.filter(action="customer.create", actor=crm_editor).exists()


def test_viewer_cannot_create_or_change_customers(api, crm_viewer):
    customer = CustomerFactory()
    api.force_authenticate(crm_viewer)

    assert api.post(reverse("customer-list"), {"family_name": "x"}).status_code == 403
    url = reverse("customer-detail", args=[customer.pk])
    assert api.patch(url, {"family_name": "x"}, format="json").status_code == 403
    consents = reverse("customer-consents", args=[customer.pk])
    assert api.post(consents, {"channel": "email", "status": "granted"}).status_code == 403
    assert api.get(consents).status_code == 200


def test_patch_validates_through_the_service_naming_the_field(api, crm_editor):
    customer = CustomerFactory(family_name="山田")
    api.force_authenticate(crm_editor)
    url = reverse("customer-detail", args=[customer.pk])

    bad = api.patch(url, {"family_name_kana": "Yamada"}, format="json")
    good = api.patch(url, {"family_name_kana": "ヤマダ", "city": "渋谷区"}, format="json")

    assert bad.status_code == 400
    assert "family_name_kana" in bad.json()
    assert good.status_code == 200
    customer.refresh_from_db()
    assert (customer.family_name, customer.family_name_kana, customer.city) == (
        "山田",
        "ヤマダ",
        "渋谷区",
    )


def test_another_departments_editor_changes_and_reads_customers_company_wide(api, sales_editor):
    customer = CustomerFactory()
    api.force_authenticate(sales_editor)

    assert api.get(reverse("customer-detail", args=[customer.pk])).status_code == 200
    response = api.patch(
        reverse("customer-detail", args=[customer.pk]), {"city": "大阪市"}, format="json"
    )
    assert response.status_code == 200


def test_identities_are_added_normalised_and_removed(api, crm_editor):
    customer = CustomerFactory()
    taken = IdentityFactory(kind="email", value="taken@example.jp")
    api.force_authenticate(crm_editor)
    url = reverse("customer-identities", args=[customer.pk])

    added = api.post(url, {"kind": "phone", "value": "090-1234-5678"}, format="json")
    clash = api.post(url, {"kind": "email", "value": "TAKEN@example.jp"}, format="json")
    invalid = api.post(url, {"kind": "email", "value": "nope"}, format="json")

    assert added.status_code == 201
    assert added.json()["value"] == "+***"
    identity = Identity.objects.get(customer=customer)
    assert identity.value == "+819012345678"
    assert clash.status_code == 400
    assert f"#{taken.customer_id}" in str(clash.json())
    assert invalid.json() == {"value": ["not a valid email address"]}
    remove = reverse("customer-remove-identity", args=[customer.pk, identity.pk])
    assert api.delete(remove).status_code == 204
    assert not Identity.objects.filter(customer=customer).exists()
    other = reverse("customer-remove-identity", args=[customer.pk, taken.pk])
    assert api.delete(other).status_code == 404


def test_consents_are_set_with_history(api, crm_editor):
    customer = CustomerFactory()
    api.force_authenticate(crm_editor)
    url = reverse("customer-consents", args=[customer.pk])

    api.post(url, {"channel": "email", "status": "granted", "source": "store"}, format="json")
    response = api.post(url, {"channel": "email", "status": "withdrawn"}, format="json")
    bad = api.post(url, {"channel": "fax", "status": "granted"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "withdrawn"
    assert [(c["status"], c["source"], c["changed_by"]) for c in body["changes"]] == [
        ("withdrawn", "api", "crm-editor"),
        ("granted", "store", "crm-editor"),
    ]
    assert bad.status_code == 400
    assert "channel" in bad.json()
    listed = api.get(url).json()
    assert [c["channel"] for c in listed] == ["email"]


def test_lookup_by_any_identifier(api, crm_viewer):
    identity = IdentityFactory(kind="phone", value="+819012345678", customer__family_name="山田")
    api.force_authenticate(crm_viewer)
    url = reverse("customer-lookup")

    found = api.get(url, {"kind": "phone", "value": "090-1234-5678"})
    missing = api.get(url, {"kind": "email", "value": "nobody@example.jp"})
    invalid = api.get(url, {"kind": "email", "value": "nope"})
    unknown_kind = api.get(url, {"kind": "fax", "value": "1"})

    assert found.status_code == 200
    assert found.json()["id"] == identity.customer_id
    assert found.json()["family_name"] == "山***"
    assert missing.status_code == 404
    assert invalid.status_code == 400
    assert unknown_kind.status_code == 400
    assert not AuditLog.objects.filter(action="customer.view_pii").exists()


def test_unmasked_lookup_is_audit_logged(api, crm_pii_viewer):
    identity = IdentityFactory(
        kind="email", value="hanako@example.jp", customer__family_name="山田"
    )
    api.force_authenticate(crm_pii_viewer)

    body = api.get(
        reverse("customer-lookup"), {"kind": "email", "value": "Hanako@Example.jp"}
    ).json()

    assert body["family_name"] == "山田"
    entry = AuditLog.objects.get(action="customer.view_pii")
    assert entry.detail == {"via": "api-lookup"}
    assert entry.target_id == str(identity.customer_id)


def test_users_without_membership_cannot_look_up(api):
    api.force_authenticate(UserFactory())

    response = api.get(reverse("customer-lookup"), {"kind": "email", "value": "a@example.jp"})

    assert response.status_code == 403
