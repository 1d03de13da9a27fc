"""Building a segment in the visual rule builder on demo data, watching the live count."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from config.demo.seed import DEMO_LOGINS
from customers.models import Segment

pytestmark = pytest.mark.django_db(transaction=True)

SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"


def test_build_a_segment_and_watch_the_count_change(live_server, page):
    call_command("seed_demo", size="small", verbosity=0)
    crm = next(login for login in DEMO_LOGINS if login.username == "crm")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", crm.username)
    page.fill("#id_password", crm.password)
    page.click(SUBMIT)
    page.wait_for_url(re.compile(r"/$"))

    page.goto(live_server.url + "/customers/segments/new/")
    page.fill("#id_name", "Email opt-ins who bought")
    page.select_option("#id_owner_department", label="CRM & digital marketing")
    count = page.locator("#segment-count")

    page.select_option("select[name='r-new']", "consent")
    page.click("button[value='add:r']")
    expect(page.locator("select[name='r-0-channel']")).to_have_value("email")
    expect(count).to_have_attribute("data-count", re.compile(r"^\d+$"))
    first = count.get_attribute("data-count")

    page.select_option("select[name='r-new']", "metric")
    page.click("button[value='add:r']")
    expect(page.locator("select[name='r-1-field']")).to_have_value("order_count")
    expect(count).not_to_have_attribute("data-count", first)
    second = count.get_attribute("data-count")
    assert int(second) < int(first)

    page.fill("input[name='r-1-value']", "2")
    page.keyboard.press("Tab")
    expect(count).not_to_have_attribute("data-count", second)

    page.click("form#segment-form > button[type=submit]")
    page.wait_for_url(re.compile(r"/customers/segments/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Email opt-ins who bought")
    expect(page.locator(".rules-text")).to_contain_text("email consent granted AND order count ≥ 2")
    assert Segment.objects.get(name="Email opt-ins who bought").rules["children"][1]["value"] == 2
