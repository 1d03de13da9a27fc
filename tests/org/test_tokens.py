"""API tokens: the secret shown once, only its digest stored, managers create and revoke."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from config.org.authentication import IntegrationPrincipal
from config.org.models import ApiToken, AuditLog
from config.org.tokens import api_token_authenticate, api_token_create, api_token_revoke
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = reverse("org:tokens")


@pytest.fixture
def sales_manager(sales):
    return UserFactory(username="sales-manager", department=sales, department__role="manager")


# --- services ----------------------------------------------------------------------------


def test_secret_has_prefix_and_only_its_digest_is_stored(crm, crm_manager):
    token, secret = api_token_create(
        name="Web shop", department=crm, source="web-shop", by=crm_manager
    )

    assert secret.startswith(f"cc_{token.prefix}_")
    assert len(token.prefix) == 8
    assert len(secret) > 3 + 8 + 1 + 40
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = ApiToken.objects.filter(pk=token.pk).values()[0]
    assert secret not in [str(value) for value in stored.values()]
    assert AuditLog.objects.filter(action="api_token.create", actor=crm_manager).exists()


def test_only_managers_of_the_department_create_tokens(crm, sales, crm_editor, crm_manager):
    with pytest.raises(PermissionDenied):
        api_token_create(name="x", department=crm, source="web", by=crm_editor)
    with pytest.raises(PermissionDenied):
        api_token_create(name="x", department=sales, source="web", by=crm_manager)


def test_authenticate_accepts_the_secret_and_refuses_wrong_or_revoked_ones(crm, crm_manager):
    token, secret = api_token_create(name="App", department=crm, source="app", by=crm_manager)

    assert api_token_authenticate(secret) == token
    assert api_token_authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert api_token_authenticate("cc_nothing") is None
    assert api_token_authenticate("") is None
    api_token_revoke(token=token, by=crm_manager)
    assert api_token_authenticate(secret) is None
    assert AuditLog.objects.filter(action="api_token.revoke").count() == 1


def test_last_used_is_written_at_most_once_a_minute(crm, django_assert_num_queries):
    token, secret = api_token_create(name="App", department=crm, source="app", by=None)
    api_token_authenticate(secret)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None

    with django_assert_num_queries(1):  # the look-up only: no write
        api_token_authenticate(secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first

    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    api_token_authenticate(secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first - dt.timedelta(seconds=1)


def test_principal_is_an_editor_of_the_token_department_only(crm, sales):
    token, _secret = api_token_create(name="App", department=crm, source="app", by=None)
    principal = IntegrationPrincipal(token)

    assert principal.is_authenticated
    assert not principal.is_superuser
    assert principal.department_ids == [crm.pk]
    assert principal.has_role(crm.pk, "editor")
    assert not principal.has_role(crm.pk, "manager")
    assert not principal.has_role(sales.pk, "viewer")
    assert str(principal) == f"token:{token.prefix}"


def test_each_token_has_its_own_rate_limit_bucket(crm, rf):
    first, _secret = api_token_create(name="Web", department=crm, source="web", by=None)
    second, _secret = api_token_create(name="App", department=crm, source="app", by=None)
    throttle = UserRateThrottle()

    def key(token):
        request = Request(rf.post("/api/v1/events"))
        request.user = IntegrationPrincipal(token)
        return throttle.get_cache_key(request, view=None)

    assert key(first) != key(second)


# --- the settings page -------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("user", ["crm_viewer", "crm_editor"])
def test_viewers_and_editors_are_refused(client, request, user):
    client.force_login(request.getfixturevalue(user))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "x", "source": "web"}).status_code == 403


def test_manager_creates_a_token_and_sees_the_secret_once(client, crm, crm_manager):
    client.force_login(crm_manager)

    response = client.post(URL, {"name": "Web shop", "department": crm.pk, "source": "web-shop"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get()
    secret = response.context["secret"]
    assert secret.startswith(f"cc_{token.prefix}_")
    assert secret in response.content.decode()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert token.created_by == crm_manager
    again = client.get(URL).content.decode()
    assert token.prefix in again
    assert secret not in again


def test_manager_cannot_create_a_token_for_another_department(client, crm, sales, crm_manager):
    client.force_login(crm_manager)

    response = client.post(URL, {"name": "Web", "department": sales.pk, "source": "web"})

    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_bad_source_is_reported_on_the_field(client, crm, crm_manager):
    client.force_login(crm_manager)

    response = client.post(URL, {"name": "Web", "department": crm.pk, "source": "Web Shop!"})

    assert response.status_code == 400
    assert "source" in response.context["form"].errors


def test_list_shows_only_tokens_of_managed_departments(client, crm, sales, crm_manager):
    api_token_create(name="CRM web", department=crm, source="web", by=None)
    api_token_create(name="Sales POS", department=sales, source="pos", by=None)
    client.force_login(crm_manager)

    html = client.get(URL).content.decode()

    assert "CRM web" in html
    assert "Sales POS" not in html


def test_manager_revokes_with_htmx(client, crm, crm_manager):
    token, secret = api_token_create(name="Web", department=crm, source="web", by=None)
    client.force_login(crm_manager)

    response = client.post(reverse("org:token_revoke", args=[token.pk]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert "Revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_authenticate(secret) is None


def test_another_departments_manager_cannot_revoke(client, crm, sales_manager):
    token, _secret = api_token_create(name="Web", department=crm, source="web", by=None)
    client.force_login(sales_manager)

    response = client.post(reverse("org:token_revoke", args=[token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoke_needs_post(client, crm, crm_manager):
    token, _secret = api_token_create(name="Web", department=crm, source="web", by=None)
    client.force_login(crm_manager)
    assert client.get(reverse("org:token_revoke", args=[token.pk])).status_code == 405


def test_superuser_manages_every_department(client, crm, sales, superuser):
    api_token_create(name="Sales POS", department=sales, source="pos", by=None)
    client.force_login(superuser)

    assert "Sales POS" in client.get(URL).content.decode()
    response = client.post(URL, {"name": "CRM", "department": crm.pk, "source": "crm"})
    assert response.status_code == 200
    assert ApiToken.objects.filter(department=crm).exists()


def test_page_query_count_is_fixed(client, crm, crm_manager, django_assert_num_queries):
    for n in range(5):
        api_token_create(name=f"T{n}", department=crm, source="web", by=crm_manager)
    client.force_login(crm_manager)
    client.get(URL)
    # session, user, roles, manager check, tokens, header memberships, form departments
    with django_assert_num_queries(7):
        client.get(URL)
