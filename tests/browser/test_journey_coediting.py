"""Co-editing a journey in two Chromium contexts: a CRM marketer edits a cell while a sales
planner has the same journey open; the planner sees the marketer's presence, the cell being
edited and then the saved text, without reloading."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from config.org.models import Role
from config.org.services import share_grant
from journeys.models import Stage
from tests.factories import (
    DepartmentFactory,
    JourneyFactory,
    PersonaFactory,
    StageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"
SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"
LIVE_TIMEOUT = 5_000  # polls come every 1.5 s; the issue asks for changes within 2 s


def open_as(browser, live_server, username: str, errors: list[str]):
    context = browser.new_context(
        locale="en-US", timezone_id="Asia/Tokyo", viewport={"width": 1400, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click(SUBMIT)
    page.wait_for_url(re.compile(r"/$"))
    return context, page


def test_marketer_edits_and_sales_planner_sees_presence_and_text_live(live_server, browser):
    crm = DepartmentFactory(name="CRM & digital", slug="crm")
    sales = DepartmentFactory(name="Sales planning", slug="sales")
    UserFactory(
        username="marketer",
        first_name="Mika",
        last_name="Mori",
        department=crm,
        department__role=Role.EDITOR,
    )
    UserFactory(
        username="planner",
        first_name="Sota",
        last_name="Sato",
        department=sales,
        department__role=Role.EDITOR,
    )
    manager = UserFactory(username="crm-manager", department=crm, department__role=Role.MANAGER)
    persona = PersonaFactory(owner_department=crm, name="First-time app buyer")
    journey = JourneyFactory(owner_department=crm, persona=persona, name="First app purchase")
    awareness = StageFactory(journey=journey, position=1, name="Awareness", actions="Sees an ad")
    StageFactory(journey=journey, position=2, name="Purchase")
    share_grant(obj=journey, department=sales, can_edit=True, by=manager)
    url = f"{live_server.url}/platform/journeys/{journey.pk}/"
    cell = f"#cell-stage-{awareness.pk}-actions"
    errors: list[str] = []

    marketer_context, marketer = open_as(browser, live_server, "marketer", errors)
    planner_context, planner = open_as(browser, live_server, "planner", errors)
    try:
        planner.goto(url)
        marketer.goto(url)
        expect(planner.locator(cell)).to_contain_text("Sees an ad")
        # The data overlay and the emotion curve arrive right after the grid.
        expect(planner.locator("#map-overlay table")).to_be_visible()
        expect(planner.locator("#emotion-chart .main-svg").first).to_be_visible()

        # The planner sees the marketer arrive…
        marketer_badge = planner.locator("#presence-bar .presence[data-name='Mika Mori']")
        expect(marketer_badge).to_be_visible(timeout=LIVE_TIMEOUT)

        # …and the cell the marketer starts editing is marked, without a reload.
        marketer.locator(cell).get_by_role("button", name="Edit Actions").click()
        editor = marketer.locator(f"form{cell}")
        expect(editor.locator("textarea")).to_have_value("Sees an ad")
        expect(planner.locator(cell)).to_have_class(
            re.compile(r"\bis-being-edited\b"), timeout=LIVE_TIMEOUT
        )
        expect(planner.locator(cell)).to_have_attribute(
            "data-editing-by", "Mika Mori", timeout=LIVE_TIMEOUT
        )

        editor.locator("textarea").fill("Sees the app ad on the train")
        editor.get_by_role("button", name="Save").click()
        expect(marketer.locator(f"div{cell}")).to_contain_text("Sees the app ad on the train")

        # The planner's grid shows the saved text and the marker goes away.
        expect(planner.locator(cell)).to_contain_text(
            "Sees the app ad on the train", timeout=LIVE_TIMEOUT
        )
        expect(planner.locator(cell)).not_to_have_class(
            re.compile(r"\bis-being-edited\b"), timeout=LIVE_TIMEOUT
        )
        assert Stage.objects.get(pk=awareness.pk).actions == "Sees the app ad on the train"

        # An emotion the marketer changes redraws the planner's curve.
        emotion = f"#cell-stage-{awareness.pk}-emotion"
        marketer.locator(emotion).get_by_role("button", name="Edit Emotion").click()
        marketer.locator(f"form{emotion} select").select_option("-2")
        marketer.locator(f"form{emotion}").get_by_role("button", name="Save").click()
        expect(planner.locator(emotion)).to_contain_text("−2", timeout=LIVE_TIMEOUT)
        # A function, not an expression: Playwright evaluates a bare expression with eval,
        # which the page's Content-Security-Policy refuses.
        planner.wait_for_function(
            "() => (document.getElementById('emotion-chart').data || []).some("
            "trace => trace.type === 'scatter' && trace.y[0] === -2)",
            timeout=LIVE_TIMEOUT,
        )
    finally:
        marketer_context.close()
        planner_context.close()
    assert errors == []


def test_the_second_saver_of_a_cell_sees_both_versions(live_server, browser):
    crm = DepartmentFactory(name="CRM & digital", slug="crm")
    sales = DepartmentFactory(name="Sales planning", slug="sales")
    UserFactory(username="marketer", department=crm, department__role=Role.EDITOR)
    UserFactory(username="planner", department=sales, department__role=Role.EDITOR)
    manager = UserFactory(username="crm-manager", department=crm, department__role=Role.MANAGER)
    journey = JourneyFactory(owner_department=crm, persona=PersonaFactory(owner_department=crm))
    awareness = StageFactory(journey=journey, position=1, name="Awareness", actions="Sees an ad")
    share_grant(obj=journey, department=sales, can_edit=True, by=manager)
    url = f"{live_server.url}/platform/journeys/{journey.pk}/"
    cell = f"#cell-stage-{awareness.pk}-actions"
    errors: list[str] = []

    marketer_context, marketer = open_as(browser, live_server, "marketer", errors)
    planner_context, planner = open_as(browser, live_server, "planner", errors)
    try:
        for page in (marketer, planner):
            page.goto(url)
            page.locator(cell).get_by_role("button", name="Edit Actions").click()
            expect(page.locator(f"form{cell} textarea")).to_have_value("Sees an ad")
        marketer.locator(f"form{cell} textarea").fill("Sees the app ad")
        marketer.locator(f"form{cell}").get_by_role("button", name="Save").click()
        expect(marketer.locator(f"div{cell}")).to_contain_text("Sees the app ad")

        planner.locator(f"form{cell} textarea").fill("Hears about it in the store")
        planner.locator(f"form{cell}").get_by_role("button", name="Save").click()

        conflict = planner.locator(f"{cell}.map-cell-conflict")
        expect(conflict.get_by_test_id("conflict-theirs")).to_have_text("Sees the app ad")
        expect(conflict.get_by_test_id("conflict-mine")).to_have_text("Hears about it in the store")
        assert Stage.objects.get(pk=awareness.pk).actions == "Sees the app ad"

        conflict.get_by_role("button", name="Save merge").click()
        expect(planner.locator(f"div{cell}.map-cell-text")).to_contain_text(
            "Hears about it in the store"
        )
        saved = Stage.objects.get(pk=awareness.pk).actions
        assert "Sees the app ad" in saved
        assert "Hears about it in the store" in saved
    finally:
        marketer_context.close()
        planner_context.close()
    assert errors == []
