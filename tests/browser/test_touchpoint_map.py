"""The touchpoint map and the activity panel in Chromium: htmx filters and a recorded call."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from config.org.models import Department, Role
from experience.models import Event, Touchpoint
from tests.factories import CustomerFactory, DepartmentFactory, TouchpointFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct-horse-battery"
SUBMIT = "form:has(#id_password) button[type=submit]"


@pytest.fixture
def crm_editor():
    crm = DepartmentFactory(name="CRM & digital", slug="crm", kind=Department.Kind.CRM_DIGITAL)
    TouchpointFactory(owner_department=crm, name="Web shop", kind=Touchpoint.Kind.ONLINE)
    TouchpointFactory(
        owner_department=crm,
        name="Ginza store",
        code="ginza",
        kind=Touchpoint.Kind.OFFLINE,
        channel=Touchpoint.Channel.STORE,
    )
    TouchpointFactory(
        owner_department=crm,
        name="Call centre",
        code="call-centre",
        kind=Touchpoint.Kind.OFFLINE,
        channel=Touchpoint.Channel.CALL_CENTER,
    )
    return UserFactory(username="crm-editor", department=crm, department__role=Role.EDITOR)


@pytest.fixture
def page_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click(SUBMIT)
    page.wait_for_url(live_server.url + "/")


def test_filtering_the_map_by_kind_swaps_the_table_without_a_reload(
    live_server, page, page_errors, crm_editor
):
    log_in(page, live_server, crm_editor)
    page.goto(live_server.url + "/experience/")
    rows = page.locator("#touchpoint-map tbody tr[data-touchpoint]")
    expect(rows).to_have_count(3)
    page.evaluate("window.__sameDocument = true")

    page.select_option("#id_kind", "offline")

    expect(rows).to_have_count(2)
    expect(page.locator("#touchpoint-map")).not_to_contain_text("Web shop")
    expect(page).to_have_url(re.compile(r"kind=offline"))
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped, no reload
    assert page_errors == []


def test_recording_a_call_on_a_profile_puts_it_on_the_timeline(
    live_server, page, page_errors, crm_editor
):
    customer = CustomerFactory()
    log_in(page, live_server, crm_editor)
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    panel = page.locator("#activity-panel")
    expect(panel).to_contain_text("Record a visit, call or meeting")

    panel.locator("#id_activity-kind").select_option("call")
    panel.locator("#id_activity-touchpoint").select_option(label="Call centre")
    panel.locator("#id_activity-note").fill("Asked about wedding bouquets")
    panel.locator("#id_activity-outcome").fill("Sent a brochure")
    panel.get_by_label(re.compile("Reassurance")).check()
    page.evaluate("window.__sameDocument = true")
    panel.get_by_role("button", name="Record").click()

    expect(panel.locator(".success-message")).to_contain_text("Recorded.")
    expect(page.locator("#timeline")).to_contain_text("Asked about wedding bouquets")
    assert page.evaluate("window.__sameDocument") is True
    event = Event.objects.get(customer=customer, source="staff")
    assert event.event_type.name == "call"
    assert event.touchpoint.code == "call-centre"
    assert page_errors == []
