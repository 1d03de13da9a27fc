"""Writes of the touchpoint catalogue: validation naming the field, rights, audit."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from config.org.models import AuditLog
from config.org.services import share_grant
from experience.models import Touchpoint
from experience.services import touchpoint_create, touchpoint_update
from tests.factories import TouchpointFactory

pytestmark = pytest.mark.django_db


def fields(department, **overrides) -> dict:
    return {
        "code": "ginza-store",
        "name": "Ginza store",
        "channel": Touchpoint.Channel.STORE,
        "kind": Touchpoint.Kind.OFFLINE,
        "description": "Our flagship.",
        "experience_values": ["reassurance", "fun"],
        "owner_department": department,
        "is_active": True,
        **overrides,
    }


def test_editor_creates_a_touchpoint_with_values_and_it_is_audited(crm, crm_editor):
    touchpoint = touchpoint_create(by=crm_editor, **fields(crm))

    assert touchpoint.owner_department == crm
    assert sorted(v.code for v in touchpoint.experience_values.all()) == ["fun", "reassurance"]
    entry = AuditLog.objects.get(action="touchpoint.create")
    assert entry.actor == crm_editor
    assert entry.target_id == str(touchpoint.pk)
    assert entry.detail["experience_values"] == ["fun", "reassurance"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"code": "Not a slug!"}, "code"),
        ({"name": ""}, "name"),
        ({"channel": "pigeon"}, "channel"),
        ({"kind": "virtual"}, "kind"),
        ({"experience_values": ["luxury"]}, "experience_values"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(crm, crm_editor, override, field):
    with pytest.raises(ValidationError) as error:
        touchpoint_create(by=crm_editor, **fields(crm, **override))

    assert field in error.value.message_dict
    assert not Touchpoint.objects.exists()
    assert not AuditLog.objects.exists()


def test_code_must_be_unique(crm, crm_editor):
    TouchpointFactory(code="ginza-store")

    with pytest.raises(ValidationError) as error:
        touchpoint_create(by=crm_editor, **fields(crm))

    assert "code" in error.value.message_dict


def test_editor_cannot_give_a_touchpoint_to_another_department(crm, sales, crm_editor):
    with pytest.raises(ValidationError) as error:
        touchpoint_create(by=crm_editor, **fields(sales))

    assert "owner_department" in error.value.message_dict


def test_viewer_cannot_create(crm, crm_viewer):
    with pytest.raises(ValidationError) as error:
        touchpoint_create(by=crm_viewer, **fields(crm))

    assert "owner_department" in error.value.message_dict


def test_update_changes_fields_and_values_and_is_audited(crm, crm_manager):
    touchpoint = TouchpointFactory(owner_department=crm, code="web", name="Web")

    touchpoint_update(
        touchpoint=touchpoint,
        by=crm_manager,
        name="Web shop",
        code="web",
        experience_values=["convenience"],
        is_active=False,
    )

    touchpoint.refresh_from_db()
    assert touchpoint.name == "Web shop"
    assert not touchpoint.is_active
    assert [v.code for v in touchpoint.experience_values.all()] == ["convenience"]
    assert AuditLog.objects.filter(action="touchpoint.update").count() == 1


def test_viewer_and_other_departments_cannot_update(crm, sales, crm_viewer, sales_editor):
    touchpoint = TouchpointFactory(owner_department=crm, name="Web")

    for user in (crm_viewer, sales_editor):
        with pytest.raises(PermissionDenied):
            touchpoint_update(touchpoint=touchpoint, by=user, name="Mine")

    touchpoint.refresh_from_db()
    assert touchpoint.name == "Web"


def test_edit_share_lets_the_other_department_update(crm, sales, sales_editor):
    touchpoint = TouchpointFactory(owner_department=crm, name="Web")
    share_grant(obj=touchpoint, department=sales, can_edit=True, by=None)

    touchpoint_update(touchpoint=touchpoint, by=sales_editor, name="Web shop")

    touchpoint.refresh_from_db()
    assert touchpoint.name == "Web shop"
