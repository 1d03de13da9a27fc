"""Every department-scoped API endpoint answers through ``DepartmentScopedViewSet``.

One set of tests for the shared mechanism, run against each endpoint built on it: a
department lists its own and shared records, another department's record is a 404, a
shared record says whom it is shared with, and filters cannot reach past the scope.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.org.services import share_grant
from tests.factories import (
    CampaignFactory,
    JourneyFactory,
    PersonaFactory,
    SegmentFactory,
    SurveyFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

SCOPED = [
    ("segment", SegmentFactory),
    ("touchpoint", TouchpointFactory),
    ("survey", SurveyFactory),
    ("persona", PersonaFactory),
    ("journey", JourneyFactory),
    ("campaign", CampaignFactory),
]


@pytest.mark.parametrize("can_edit", [False, True])
@pytest.mark.parametrize(("basename", "factory"), SCOPED)
def test_department_lists_own_and_shared_records_only(
    api, crm, sales, crm_viewer, sales_editor, basename, factory, can_edit
):
    own = factory(owner_department=crm)
    shared = factory(owner_department=sales)
    factory(owner_department=sales)
    share_grant(obj=shared, department=crm, can_edit=can_edit, by=sales_editor)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse(f"{basename}-list")).json()

    assert body["count"] == 2
    assert {row["id"] for row in body["results"]} == {own.pk, shared.pk}


@pytest.mark.parametrize(("basename", "factory"), SCOPED)
def test_another_departments_record_answers_404(api, sales, crm_viewer, basename, factory):
    other = factory(owner_department=sales)
    api.force_authenticate(crm_viewer)

    assert api.get(reverse(f"{basename}-detail", args=[other.pk])).status_code == 404


@pytest.mark.parametrize(("basename", "factory"), SCOPED)
def test_shared_record_detail_is_readable(
    api, crm, sales, crm_viewer, sales_editor, basename, factory
):
    shared = factory(owner_department=sales)
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse(f"{basename}-detail", args=[shared.pk])).json()

    assert body["id"] == shared.pk
    assert body["shared_with"] == [
        {"department": {"id": crm.pk, "slug": "crm", "name": "CRM & digital"}, "can_edit": False}
    ]


@pytest.mark.parametrize(("basename", "factory"), SCOPED)
def test_owner_filter_stays_within_what_the_user_sees(
    api, crm, sales, crm_viewer, basename, factory
):
    factory(owner_department=sales)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse(f"{basename}-list"), {"owner_department": sales.pk}).json()

    assert body["count"] == 0
