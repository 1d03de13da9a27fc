"""The API bases: who may call the API at all, /me, the schema, and scoping by construction."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.api import router
from config.org.api import DepartmentScopedReadOnlyViewSet
from config.org.models import Role
from customers.models import Segment
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST_URL_NAMES = [f"{basename}-list" for _prefix, _viewset, basename in router.registry]
DETAIL_URL_NAMES = [f"{basename}-detail" for _prefix, _viewset, basename in router.registry]
CURSOR_LIST_URL_NAMES = {"delivery-list"}


@pytest.fixture
def outsider():
    """Signed in, but a member of no department."""
    return UserFactory(username="outsider")


def test_router_holds_every_circle():
    assert {prefix for prefix, _viewset, _basename in router.registry} == {
        "customers",
        "segments",
        "imports",
        "touchpoints",
        "surveys",
        "event-types",
        "products",
        "personas",
        "journeys",
        "campaigns",
        "deliveries",
        "staff-tasks",
    }


@pytest.mark.parametrize(
    "url",
    [
        *(reverse(name) for name in LIST_URL_NAMES),
        *(reverse(name, kwargs={"pk": 1}) for name in DETAIL_URL_NAMES),
        reverse("api-root"),
        reverse("api-me"),
        reverse("api-schema"),
        reverse("api-docs"),
    ],
)
def test_anonymous_requests_are_refused(api, url):
    response = api.get(url)

    assert response.status_code in (401, 403)


@pytest.mark.parametrize("url_name", LIST_URL_NAMES)
def test_users_without_a_department_are_refused(api, outsider, url_name):
    api.force_authenticate(outsider)

    assert api.get(reverse(url_name)).status_code == 403


@pytest.mark.parametrize("url_name", LIST_URL_NAMES)
def test_members_and_the_administrator_may_list(api, crm_viewer, superuser, url_name):
    for user in (crm_viewer, superuser):
        api.force_authenticate(user)
        response = api.get(reverse(url_name))

        assert response.status_code == 200
        assert {"next", "previous", "results"} <= response.json().keys()
        # Cursor pages (tables of millions) never count; every other list does.
        assert ("count" in response.json()) != (url_name in CURSOR_LIST_URL_NAMES)


def test_me_shows_departments_and_roles(api, crm, sales):
    user = UserFactory(username="hanako", department=crm, department__role=Role.MANAGER)
    user.memberships.create(department=sales, role=Role.VIEWER)
    api.force_authenticate(user)

    response = api.get(reverse("api-me"))

    assert response.status_code == 200
    assert response.json() == {
        "username": "hanako",
        "is_superuser": False,
        "departments": [
            {"id": crm.pk, "slug": "crm", "name": "CRM & digital", "role": "manager"},
            {"id": sales.pk, "slug": "sales", "name": "Sales planning", "role": "viewer"},
        ],
    }


def test_me_answers_users_without_a_department(api, outsider):
    api.force_authenticate(outsider)

    response = api.get(reverse("api-me"))

    assert response.status_code == 200
    assert response.json()["departments"] == []


def test_schema_and_docs_are_served_to_signed_in_staff(client, crm_viewer):
    client.force_login(crm_viewer)

    schema = client.get(reverse("api-schema"))
    docs = client.get(reverse("api-docs"))

    assert schema.status_code == 200
    assert b"/api/v1/segments/" in schema.content
    assert docs.status_code == 200


def test_session_login_reaches_the_api(client, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(reverse("segment-list")).status_code == 200


def test_scoped_viewsets_cannot_override_get_queryset():
    with pytest.raises(TypeError, match="shape_queryset"):

        class Careless(DepartmentScopedReadOnlyViewSet):
            queryset = Segment.objects.all()

            def get_queryset(self):
                return Segment.objects.all()
