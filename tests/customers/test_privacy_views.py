"""Pages and API of data-subject requests: who may, the download, the confirmed erasure."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from config.org.models import AuditLog, Role
from customers.models import Customer, ErasedIdentifier, Identity
from customers.privacy import identifier_digest
from tests.factories import CustomerFactory, EventFactory, IdentityFactory, UserFactory

pytestmark = pytest.mark.django_db

DENIED_ROLES = ["crm_viewer", "crm_editor", "crm_manager", "crm_pii_viewer", "sales_editor"]
ALLOWED_ROLES = ["subject_handler", "superuser"]


@pytest.fixture
def subject_handler(crm):
    """A CRM manager who may also read personal data: may handle subject requests."""
    user = UserFactory(username="crm-privacy", department=crm, department__role=Role.MANAGER)
    user.user_permissions.add(Permission.objects.get(codename="view_pii"))
    return user


@pytest.fixture
def person():
    customer = CustomerFactory(family_name="山田", given_name="花子", city="渋谷区")
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    EventFactory(customer=customer, properties={"path": "/wedding"})
    return customer


def _urls(customer) -> dict[str, tuple[str, str]]:
    return {
        "page-export": ("get", reverse("customers:subject_export", args=[customer.pk])),
        "page-erase-form": ("get", reverse("customers:subject_erase", args=[customer.pk])),
        "page-erase": ("post", reverse("customers:subject_erase", args=[customer.pk])),
        "api-export": ("get", f"/api/v1/customers/{customer.pk}/personal-data/"),
        "api-erase": ("post", f"/api/v1/customers/{customer.pk}/erase/"),
    }


@pytest.mark.parametrize("role", DENIED_ROLES)
def test_staff_who_may_not_handle_requests_get_403_everywhere_and_nothing_changes(
    role, request, client, api, person
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    api.force_authenticate(user)
    for name, (method, url) in _urls(person).items():
        caller = api if name.startswith("api") else client
        data = {"confirm": str(person.pk), "reason": "x"} if method == "post" else None
        response = getattr(caller, method)(url, data)
        assert response.status_code == 403, (role, name)
    person.refresh_from_db()
    assert person.erased_at is None
    assert person.family_name == "山田"
    assert not AuditLog.objects.filter(
        action__in=["customer.subject_export", "customer.erase"]
    ).exists()


def test_anonymous_visitors_are_sent_to_sign_in_and_the_api_refuses_them(client, api, person):
    for name, (method, url) in _urls(person).items():
        caller = api if name.startswith("api") else client
        response = getattr(caller, method)(url)
        if name.startswith("api"):
            assert response.status_code == 403, name
        else:
            assert response.status_code == 302, name
            assert reverse("login") in response["Location"]


@pytest.mark.parametrize("role", ALLOWED_ROLES)
def test_managers_with_personal_data_access_and_the_administrator_download_everything(
    role, request, client, person
):
    client.force_login(request.getfixturevalue(role))
    detail = client.get(reverse("customers:detail", args=[person.pk]))
    assert b'data-testid="subject-export"' in detail.content
    assert b'data-testid="subject-erase"' in detail.content
    response = client.get(reverse("customers:subject_export", args=[person.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["customer"]["family_name"] == "山田"
    assert data["identities"][0]["value"] == "hanako@example.jp"
    assert data["sections"]["events"][0]["properties"] == {"path": "/wedding"}
    assert AuditLog.objects.filter(
        action="customer.subject_export", target_id=str(person.pk)
    ).exists()


def test_the_profile_offers_no_personal_data_actions_to_others(client, crm_manager, person):
    client.force_login(crm_manager)
    response = client.get(reverse("customers:detail", args=[person.pk]))
    assert response.status_code == 200
    assert b"subject-erase" not in response.content


def test_erasure_needs_the_customer_number_typed_then_erases_and_shows_an_erased_person(
    client, subject_handler, person
):
    client.force_login(subject_handler)
    url = reverse("customers:subject_erase", args=[person.pk])
    assert client.get(url).status_code == 200
    wrong = client.post(url, {"confirm": str(person.pk + 1), "reason": "asked by email"})
    assert wrong.status_code == 400
    person.refresh_from_db()
    assert person.erased_at is None
    response = client.post(url, {"confirm": f"#{person.pk}", "reason": "asked by email"})
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[person.pk])
    person.refresh_from_db()
    assert person.erased_at is not None
    assert (person.family_name, person.given_name, person.city) == ("", "", "")
    assert not Identity.objects.filter(customer=person).exists()
    assert ErasedIdentifier.objects.filter(
        kind="email", digest=identifier_digest("email", "hanako@example.jp")
    ).exists()
    assert AuditLog.objects.get(action="customer.erase").detail["reason"] == "asked by email"

    page = client.get(response["Location"]).content.decode()
    assert f"Erased person #{person.pk}" in page
    assert "was erased" in page  # the message
    listing = client.get(reverse("customers:index")).content.decode()
    assert f"Erased person #{person.pk}" in listing


def test_the_api_exports_and_erases_for_those_who_may(api, subject_handler, person):
    api.force_authenticate(subject_handler)
    response = api.get(f"/api/v1/customers/{person.pk}/personal-data/")
    assert response.status_code == 200
    assert response.json()["customer"]["id"] == person.pk
    assert set(response.json()["sections"]) >= {"events", "orders", "deliveries"}

    response = api.post(
        f"/api/v1/customers/{person.pk}/erase/", {"reason": "x" * 201}, format="json"
    )
    assert response.status_code == 400
    assert "reason" in response.json()
    response = api.post(
        f"/api/v1/customers/{person.pk}/erase/", {"reason": "ticket 7"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == person.pk
    assert body["profiles"] == [person.pk]
    assert body["erased_at"]
    assert Customer.objects.get(pk=person.pk).family_name == ""
    again = api.post(f"/api/v1/customers/{person.pk}/erase/", {}, format="json")
    assert again.status_code == 200
    assert again.json()["erased_at"] == body["erased_at"]
    missing = api.get("/api/v1/customers/999999999/personal-data/")
    assert missing.status_code == 404
    assert api.get("/api/v1/customers/abc/personal-data/").status_code == 404
