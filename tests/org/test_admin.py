"""Admin scoping: department staff see and change only what their departments may.

Another department's record answers like a missing one: the admin redirects to its index.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from config.org.models import AuditLog, Role
from config.org.services import audit_record, share_grant
from customers.models import Segment
from journeys.models import Stage
from tests.factories import SegmentFactory, StageFactory, UserFactory

pytestmark = pytest.mark.django_db


def _staff(department, role, *models):
    """A staff user of ``department`` holding every admin permission on ``models``."""
    user = UserFactory(is_staff=True, department=department, department__role=role)
    codenames = [
        f"{action}_{model._meta.model_name}"
        for model in models
        for action in ("view", "add", "change", "delete")
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def crm_staff(crm):
    return _staff(crm, Role.EDITOR, Segment, Stage)


def test_staff_changelist_lists_only_their_departments_segments(client, crm, sales, crm_staff):
    SegmentFactory(owner_department=crm, name="CRM lapsed buyers")
    SegmentFactory(owner_department=sales, name="Sales key accounts")
    client.force_login(crm_staff)

    response = client.get(reverse("admin:customers_segment_changelist"))

    assert response.status_code == 200
    assert "CRM lapsed buyers" in response.content.decode()
    assert "Sales key accounts" not in response.content.decode()


def test_staff_cannot_open_or_change_another_departments_segment(client, sales, crm_staff):
    other = SegmentFactory(owner_department=sales, name="Sales key accounts")
    client.force_login(crm_staff)
    url = reverse("admin:customers_segment_change", args=[other.pk])

    opened = client.get(url)
    posted = client.post(url, {"name": "Taken over", "kind": "dynamic", "rules": "{}"})

    assert opened.status_code == 302
    assert opened.url == reverse("admin:index")
    assert posted.status_code == 302
    assert posted.url == reverse("admin:index")
    other.refresh_from_db()
    assert other.name == "Sales key accounts"


def test_view_only_share_is_shown_but_cannot_be_changed_or_deleted(
    client, crm, sales, crm_staff, sales_editor
):
    shared = SegmentFactory(owner_department=sales, name="Shared to read")
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    client.force_login(crm_staff)
    change_url = reverse("admin:customers_segment_change", args=[shared.pk])

    page = client.get(change_url)
    posted = client.post(change_url, {"name": "Changed", "kind": "dynamic", "rules": "{}"})
    deleted = client.post(reverse("admin:customers_segment_delete", args=[shared.pk]))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert Segment.objects.filter(pk=shared.pk, name="Shared to read").exists()


def test_edit_share_lets_staff_change_the_record_but_not_its_owner(
    client, crm, sales, crm_staff, sales_editor
):
    shared = SegmentFactory(owner_department=sales, name="Co-edited")
    share_grant(obj=shared, department=crm, can_edit=True, by=sales_editor)
    client.force_login(crm_staff)
    url = reverse("admin:customers_segment_change", args=[shared.pk])

    response = client.post(
        url, {"name": "Co-edited v2", "kind": "dynamic", "rules": "{}", "owner_department": crm.pk}
    )

    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.name == "Co-edited v2"
    assert shared.owner_department == sales


def test_viewer_cannot_change_their_own_departments_segment(client, crm):
    viewer = _staff(crm, Role.VIEWER, Segment)
    segment = SegmentFactory(owner_department=crm, name="Read only for viewers")
    client.force_login(viewer)

    response = client.post(
        reverse("admin:customers_segment_change", args=[segment.pk]),
        {"name": "Changed", "kind": "dynamic", "rules": "{}"},
    )

    assert response.status_code == 403
    assert client.get(reverse("admin:customers_segment_add")).status_code == 403


def test_add_form_offers_only_departments_the_user_edits_for(client, crm, sales, crm_staff):
    client.force_login(crm_staff)

    form = client.get(reverse("admin:customers_segment_add")).context["adminform"].form
    choices = list(form.fields["owner_department"].queryset)

    assert choices == [crm]


def test_child_rows_are_scoped_through_their_parent(client, crm, sales, crm_staff):
    StageFactory(journey__persona__owner_department=crm, name="CRM awareness")
    other = StageFactory(journey__persona__owner_department=sales, name="Sales visit")
    client.force_login(crm_staff)

    listing = client.get(reverse("admin:journeys_stage_changelist"))
    opened = client.get(reverse("admin:journeys_stage_change", args=[other.pk]))

    assert "CRM awareness" in listing.content.decode()
    assert "Sales visit" not in listing.content.decode()
    assert opened.status_code == 302
    assert opened.url == reverse("admin:index")


def test_audit_log_cannot_be_added_changed_or_deleted(client, superuser):
    entry = audit_record(actor=superuser, action="customer.view_pii")
    client.force_login(superuser)

    listing = client.get(reverse("admin:org_auditlog_changelist"), {"action": "customer.view_pii"})
    page = client.get(reverse("admin:org_auditlog_change", args=[entry.pk]))
    added = client.get(reverse("admin:org_auditlog_add"))
    changed = client.post(
        reverse("admin:org_auditlog_change", args=[entry.pk]), {"action": "tampered"}
    )
    deleted = client.post(reverse("admin:org_auditlog_delete", args=[entry.pk]), {"post": "yes"})

    assert listing.status_code == 200
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert added.status_code == 403
    assert changed.status_code == 403
    assert deleted.status_code == 403
    assert AuditLog.objects.get(pk=entry.pk).action == "customer.view_pii"


def test_admin_site_header_names_the_product(client, superuser):
    client.force_login(superuser)

    assert "Customer Circle administration" in client.get(reverse("admin:index")).content.decode()
