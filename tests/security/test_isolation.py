"""Another department's records are unreachable: lists, detail, search, exports, API, htmx
partials and the admin never show Sales a CRM record.

Every CRM record of the world carries :data:`MARKER` in its name. The same requests made by
a CRM viewer must show the marker (so the check can fail); made by a Sales editor they must
not, whatever the status.
"""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.security.conftest import MARKER

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# Search for part of the marker: a page echoing the query must not count as a leak.
TERM = MARKER[:6].lower()


def _text(response) -> str:
    if response.get("Content-Type", "").startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    ):
        book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
        return "\n".join(
            str(cell)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for cell in row
            if cell is not None
        )
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _requests(refs: dict) -> list[tuple[str, str, dict]]:
    """(label, url, headers) of every place a CRM record could show up."""
    pages = [
        ("segment list", reverse("customers:segment_list"), {}),
        ("segment search", reverse("customers:segment_list") + f"?q={TERM}", {}),
        ("segment list htmx", reverse("customers:segment_list") + f"?q={TERM}", HTMX),
        ("segment detail", reverse("customers:segment_detail", args=[refs["segment"]]), {}),
        ("segment CSV", reverse("customers:segment_export", args=[refs["segment"]]), {}),
        (
            "segment XLSX",
            reverse("customers:segment_export", args=[refs["segment"]]) + "?format=xlsx",
            {},
        ),
        ("imports", reverse("customers:imports"), {}),
        ("import detail", reverse("customers:import_detail", args=[refs["import_job"]]), {}),
        ("touchpoints", reverse("experience:index"), {}),
        ("touchpoint", reverse("experience:touchpoint", args=[refs["touchpoint"]]), {}),
        ("surveys", reverse("experience:surveys"), {}),
        ("survey", reverse("experience:survey", args=[refs["survey"]]), {}),
        ("situation rules", reverse("experience:situation_rules"), {}),
        ("campaigns", reverse("journeys:campaigns"), {}),
        ("campaign search", reverse("journeys:campaigns") + f"?q={TERM}", {}),
        ("campaigns htmx", reverse("journeys:campaigns") + f"?q={TERM}", HTMX),
        ("campaign", reverse("journeys:campaign_detail", args=[refs["campaign"]]), {}),
        ("platform", reverse("journeys:index"), {}),
        ("persona", reverse("journeys:persona_detail", args=[refs["persona"]]), {}),
        ("journey", reverse("journeys:journey_detail", args=[refs["journey"]]), {}),
        (
            "journey CSV",
            reverse("journeys:journey_export_csv", args=[refs["journey"]]),
            {},
        ),
        (
            "comments htmx",
            reverse("journeys:comments", args=["persona", refs["persona"]]),
            HTMX,
        ),
        ("tasks", reverse("journeys:tasks"), {}),
    ]
    api = [
        (f"API {name}", reverse(f"{name}-list"), {})
        for name in (
            "segment",
            "import-job",
            "touchpoint",
            "survey",
            "persona",
            "journey",
            "campaign",
            "staff-task",
        )
    ]
    api += [
        ("API segment search", reverse("segment-list") + f"?search={TERM}", {}),
        ("API segment", reverse("segment-detail", args=[refs["segment"]]), {}),
        ("API persona", reverse("persona-detail", args=[refs["persona"]]), {}),
        ("API campaign", reverse("campaign-detail", args=[refs["campaign"]]), {}),
        ("API persona comments", reverse("persona-comments", args=[refs["persona"]]), {}),
    ]
    return pages + api


def _staff_with_view_permissions(user) -> None:
    """Make ``user`` admin staff holding view permission on every department-scoped model."""
    from django.contrib import admin

    codenames = [
        f"view_{model._meta.model_name}"
        for model, model_admin in admin.site._registry.items()
        if getattr(model_admin, "staff_may_use", False)
    ]
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


def _admin_requests(refs: dict) -> list[tuple[str, str, dict]]:
    found = []
    for label, key in (
        ("segment", "segment"),
        ("importjob", "import_job"),
        ("touchpoint", "touchpoint"),
        ("survey", "survey"),
        ("situationrule", "rule"),
        ("persona", "persona"),
        ("journey", "journey"),
        ("campaign", "campaign"),
    ):
        app = {
            "segment": "customers",
            "importjob": "customers",
            "touchpoint": "experience",
            "survey": "experience",
            "situationrule": "experience",
        }.get(label, "journeys")
        found.append((f"admin {label} list", reverse(f"admin:{app}_{label}_changelist"), {}))
        found.append(
            (
                f"admin {label} search",
                reverse(f"admin:{app}_{label}_changelist") + f"?q={TERM}",
                {},
            )
        )
        found.append(
            (
                f"admin {label} change",
                reverse(f"admin:{app}_{label}_change", args=[refs[key]]),
                {},
            )
        )
    return found


def _marker_seen(user, requests) -> dict[str, int]:
    """Label → status of every response that contains the marker."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    seen = {}
    for label, url, headers in requests:
        response = client.get(url, headers=headers)
        assert response.status_code != 500, f"{label} {url}: server error"
        if MARKER in _text(response):
            seen[label] = response.status_code
    return seen


def test_crm_records_never_reach_another_department(world, crm_pii_viewer, sales_editor):
    """The control is a CRM viewer with ``view_pii``: exports list the (CRM) customer by name."""
    requests = _requests(world.refs)

    leaked = _marker_seen(sales_editor, requests)
    shown = _marker_seen(crm_pii_viewer, requests)

    assert leaked == {}, "CRM records shown to Sales"
    assert sorted({label for label, _url, _h in requests} - set(shown)) == [], (
        "the marker must show for CRM, or this test proves nothing"
    )


def test_admin_shows_staff_only_their_departments_records(world, crm_viewer, sales_editor):
    for user in (crm_viewer, sales_editor):
        _staff_with_view_permissions(user)
    requests = _admin_requests(world.refs)

    leaked = _marker_seen(sales_editor, requests)
    shown = _marker_seen(crm_viewer, requests)

    assert leaked == {}, "CRM records shown to Sales staff in the admin"
    assert sorted({label for label, _url, _h in requests} - set(shown)) == []
