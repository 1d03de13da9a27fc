"""The event type registry: schemas, property checks, and the registry page."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from experience.event_types import validate_properties, validate_schema
from experience.models import EventType
from tests.factories import EventFactory, EventTypeFactory

URL = reverse("experience:event_types")

SCHEMA = {
    "sku": "string",
    "price": "number",
    "quantity": "integer",
    "gift": "boolean",
    "delivery_at": "datetime",
    "options": "object",
    "tags": "array",
}


# --- validate_schema / validate_properties (no database) --------------------------------


def test_schema_of_known_types_is_valid():
    validate_schema(SCHEMA)
    validate_schema({})


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"price": "float"}, "price"),
        ({"9lives": "string"}, "9lives"),
        ({"ok": "string", "bad": {"type": "x"}}, "bad"),
    ],
)
def test_schema_errors_name_the_property(schema, named):
    with pytest.raises(ValidationError) as info:
        validate_schema(schema)
    assert named in " ".join(info.value.messages)


def test_schema_must_be_an_object():
    with pytest.raises(ValidationError):
        validate_schema(["sku"])


def test_valid_properties_pass_and_unknown_ones_are_accepted():
    properties = {
        "sku": "FL-1",
        "price": 3200.5,
        "quantity": 2,
        "gift": False,
        "delivery_at": "2026-11-22T10:00:00+09:00",
        "options": {"wrap": True},
        "tags": ["rose"],
        "new_field_from_the_app": "kept",
    }
    assert validate_properties(SCHEMA, properties) == []
    assert validate_properties(SCHEMA, {"price": None}) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("price", "3200"),
        ("price", True),  # a boolean is not a number
        ("quantity", 2.5),
        ("quantity", True),
        ("gift", "yes"),
        ("delivery_at", "2026-11-22T10:00:00"),  # no time zone
        ("delivery_at", "tomorrow"),
        ("options", []),
        ("tags", "rose"),
        ("sku", 12),
    ],
)
def test_wrong_types_are_reported_with_their_path(name, value):
    problems = validate_properties(SCHEMA, {name: value})
    assert len(problems) == 1
    assert problems[0][0] == f"properties.{name}"
    assert SCHEMA[name] in problems[0][1]


def test_number_accepts_integers():
    assert validate_properties({"price": "number"}, {"price": 3200}) == []


# --- the registry page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.django_db
def test_member_sees_the_registry_with_recent_volume(client, crm, crm_viewer):
    page_view = EventTypeFactory(
        name="page_view", description="A page was shown", property_schema={"path": "string"}
    )
    EventFactory.create_batch(3, event_type=page_view)
    client.force_login(crm_viewer)

    response = client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "A page was shown" in html
    assert "<code>path</code>: string" in html
    assert '<td class="number">3</td>' in html
    assert response.context["form"] is None  # viewers read only


@pytest.mark.django_db
def test_user_without_department_is_refused(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_editor_adds_an_event_type(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        URL,
        {
            "name": "store_visit",
            "description": "Visit",
            "owner_department": crm.pk,
            "property_schema": '{"store": "string", "minutes": "integer"}',
        },
    )

    assert response.status_code == 302
    created = EventType.objects.get(name="store_visit")
    assert created.owner_department == crm
    assert created.property_schema == {"store": "string", "minutes": "integer"}


@pytest.mark.django_db
def test_schema_error_names_the_property_and_stores_nothing(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(URL, {"name": "store_visit", "property_schema": '{"minutes": "int"}'})

    assert response.status_code == 400
    assert "minutes" in str(response.context["form"].errors["property_schema"])
    assert not EventType.objects.filter(name="store_visit").exists()


@pytest.mark.django_db
def test_viewer_cannot_add(client, crm_viewer):
    client.force_login(crm_viewer)
    response = client.post(URL, {"name": "x", "property_schema": "{}"})
    assert response.status_code == 403
    assert not EventType.objects.filter(name="x").exists()


@pytest.mark.django_db
def test_another_department_cannot_edit_an_owned_type(client, crm, sales, sales_editor):
    owned = EventTypeFactory(name="crm_only", owner_department=crm)
    client.force_login(sales_editor)
    url = reverse("experience:event_type_edit", args=[owned.pk])

    assert client.get(url).status_code == 403
    response = client.post(url, {"description": "hijacked", "property_schema": "{}"})
    assert response.status_code == 403
    owned.refresh_from_db()
    assert owned.description == ""


@pytest.mark.django_db
def test_editor_cannot_give_a_type_to_a_department_they_do_not_edit(client, sales, crm_editor):
    client.force_login(crm_editor)
    response = client.post(
        URL, {"name": "grab", "owner_department": sales.pk, "property_schema": "{}"}
    )
    assert response.status_code == 400
    assert not EventType.objects.filter(name="grab").exists()


@pytest.mark.django_db
def test_owner_edits_schema_but_not_the_name(client, crm, crm_editor):
    owned = EventTypeFactory(name="purchase", owner_department=crm)
    client.force_login(crm_editor)
    url = reverse("experience:event_type_edit", args=[owned.pk])

    response = client.post(
        url,
        {
            "name": "renamed",
            "owner_department": crm.pk,
            "description": "Bought",
            "property_schema": '{"total": "number"}',
        },
    )

    assert response.status_code == 302
    owned.refresh_from_db()
    assert owned.name == "purchase"
    assert owned.property_schema == {"total": "number"}


@pytest.mark.django_db
def test_any_editor_may_refine_an_unowned_type(client, sales_editor):
    shared = EventTypeFactory(name="page_view")
    client.force_login(sales_editor)
    url = reverse("experience:event_type_edit", args=[shared.pk])

    response = client.post(url, {"description": "Seen", "property_schema": '{"path": "string"}'})

    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.property_schema == {"path": "string"}


@pytest.mark.django_db
def test_registry_query_count_does_not_grow_with_types(
    client, crm, crm_viewer, django_assert_num_queries
):
    for n in range(5):
        EventTypeFactory(name=f"type_{n}", owner_department=crm)
    client.force_login(crm_viewer)
    client.get(URL)
    # session, user, roles, event counts, types with owners, header memberships
    with django_assert_num_queries(6):
        client.get(URL)


@pytest.mark.django_db
def test_admin_form_refuses_a_bad_schema(admin_client):
    response = admin_client.post(
        reverse("admin:experience_eventtype_add"),
        {"name": "bad_type", "description": "", "property_schema": '{"price": "money"}'},
    )
    assert response.status_code == 200
    assert "price" in response.content.decode()
    assert not EventType.objects.filter(name="bad_type").exists()
