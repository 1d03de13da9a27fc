"""The enforced Content-Security-Policy in Chromium: the busiest pages load, their scripts
run (htmx swaps, plotly draws an SVG), and the browser reports no violation.

The ``csp_violations`` fixture (conftest.py) fails any browser test on a violation; here it
is also asserted directly, so this file states the promise on its own.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from config.org.models import Role
from reports.rollups import rollups_rebuild
from tests.factories import DepartmentFactory, EventFactory, TouchpointFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"
SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"


def test_pages_work_under_the_enforced_policy_without_a_violation(
    live_server, page, csp_violations
):
    assert "script-src" in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    crm = DepartmentFactory(name="CRM & digital", slug="crm")
    UserFactory(
        username="admin",
        is_superuser=True,
        is_staff=True,
        department=crm,
        department__role=Role.MANAGER,
    )
    shop = TouchpointFactory(owner_department=crm)
    now = timezone.now()
    for days_ago in (1, 3, 20):
        EventFactory(touchpoint=shop, occurred_at=now - dt.timedelta(days=days_ago))
    rollups_rebuild()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(live_server.url + "/accounts/login/")
    policy = page.context.request.get(live_server.url + "/accounts/login/").headers[
        "content-security-policy"
    ]
    assert re.search(r"script-src 'self' 'nonce-[^']+'", policy)
    assert "unsafe" not in policy
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click(SUBMIT)
    page.wait_for_url(re.compile(r"/$"))

    # The dashboard: htmx loads the header badge after the page (a script that ran).
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    page.locator("#notifications-badge").wait_for(state="attached")

    # A report: plotly draws its figure as SVG, with its styles from app.css.
    page.goto(f"{live_server.url}/reports/overview/?period=30")
    chart = page.locator(".report-block .chart[data-drawn]").first
    chart.wait_for()
    expect(chart.locator("svg.main-svg").first).to_be_attached()
    assert page.locator("style[id^='plotly.js-style']").count() == 0

    # The segment builder: adding a rule is an htmx swap, the live count follows.
    page.goto(live_server.url + "/customers/segments/new/")
    page.select_option("select[name='r-new']", "consent")
    page.click("button[value='add:r']")
    expect(page.locator("select[name='r-0-channel']")).to_be_visible()
    expect(page.locator("#segment-count")).to_have_attribute("data-count", re.compile(r"^\d+$"))

    # The admin, DRF's browsable API and the API docs (Swagger UI draws the operations).
    page.goto(live_server.url + "/admin/org/user/")
    expect(page.locator("#result_list")).to_be_visible()
    page.goto(live_server.url + "/api/v1/me/")
    expect(page.locator(".response-info")).to_be_visible()
    page.goto(live_server.url + "/api/v1/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()

    assert csp_violations == []
    assert errors == []
