"""A campaign's life in Chromium: a CRM editor creates a one-off email to a segment, writes
it, previews it with a real customer and asks for approval; a CRM manager approves it, it is
scheduled for its time, and the calendar shows it on that day."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from playwright.sync_api import expect

from config.org.models import Role
from customers.models import SegmentMembership
from journeys.models import Campaign
from tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    IdentityFactory,
    SegmentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"
SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click(SUBMIT)
    page.wait_for_url(re.compile(r"/$"))


def test_create_preview_approve_schedule_and_see_it_on_the_calendar(live_server, browser):
    crm = DepartmentFactory(name="CRM & digital", slug="crm")
    UserFactory(username="editor", department=crm, department__role=Role.EDITOR)
    UserFactory(username="manager", department=crm, department__role=Role.MANAGER)
    segment = SegmentFactory(owner_department=crm, name="Sofa buyers")
    customer = CustomerFactory(family_name="Yamada", given_name="Hanako", language="en")
    IdentityFactory(customer=customer, value="hanako@example.jp")
    SegmentMembership.objects.create(segment=segment, customer=customer)
    send_at = (dt.datetime.now(TOKYO) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    errors: list[str] = []

    # --- the editor ---------------------------------------------------------------------
    editor_context = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo")
    editor_context.set_default_timeout(15_000)
    page = editor_context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "editor")
    page.goto(live_server.url + "/platform/")
    page.locator("nav.subnav").get_by_role("link", name="Campaigns").click()
    page.get_by_role("button", name="New campaign").click()

    page.fill("#id_name", "Friday sofa news")
    page.select_option("#id_kind", "one_off")
    page.select_option("#id_channel", "email")
    page.select_option("#id_segment", label="Sofa buyers")
    page.fill("#id_starts_at", send_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/platform/campaigns/\d+/edit/$"))
    campaign = Campaign.objects.get(name="Friday sofa news")
    assert campaign.starts_at == send_at

    step = page.get_by_test_id("step-1")
    step.locator("#id_step1-a_en_subject").fill("New sofas for {{ customer.first_name }}")
    step.locator("#id_step1-a_en_body").fill("Hello {{ customer.first_name }}, come and sit.")
    step.locator("#id_step1-a_ja_subject").fill("{{ customer.family_name }}様へ新作ソファ")
    step.locator("#id_step1-a_ja_body").fill("{{ customer.family_name }}様、ぜひお試しください。")
    step.get_by_role("button", name="Save step").click()
    expect(page.locator("p.notice")).to_have_text("Step saved.")

    page.get_by_role("link", name="Back to the campaign").click()
    page.wait_for_url(re.compile(rf"/platform/campaigns/{campaign.pk}/$"))
    # Preview with a real member of the segment: the editor may not see names, so masked.
    page.select_option("#preview-customer", str(customer.pk))
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_test_id("preview-subject")).to_have_text("New sofas for H***")
    expect(page.get_by_test_id("preview-body")).to_contain_text("Hello H***, come and sit.")
    # …and by an identifier typed in.
    page.select_option("#preview-customer", "")
    page.fill("#preview-q", "hanako@example.jp")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_test_id("message-preview")).to_contain_text(f"Customer #{customer.pk}")

    page.get_by_role("button", name="Request approval").click()
    expect(page.locator("p.notice")).to_contain_text("Approval requested")
    expect(page.locator("hgroup")).to_contain_text("Waiting for approval")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    editor_context.close()

    # --- the manager -------------------------------------------------------------------------
    manager_context = browser.new_context(locale="en-US", timezone_id="Asia/Tokyo")
    manager_context.set_default_timeout(15_000)
    page = manager_context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, "manager")
    page.goto(live_server.url + "/platform/campaigns/")
    approvals = page.locator("section.approvals")
    expect(approvals).to_contain_text("Friday sofa news")
    approvals.get_by_role("link", name="Friday sofa news").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("p.notice")).to_have_text("Approved.")
    expect(page.get_by_test_id("campaign-status")).to_have_text("Scheduled")
    expect(page.get_by_test_id("next-run")).to_have_text(send_at.strftime("%Y-%m-%d %H:%M"))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.next_run_at == send_at

    page.locator("nav.subnav").get_by_role("link", name="Calendar").click()
    if send_at.month != dt.datetime.now(TOKYO).month:
        page.get_by_test_id("calendar-next").click()
        expect(page).to_have_url(re.compile(rf"month={send_at:%Y-%m}"))
    day = page.locator(f"td[data-date='{send_at:%Y-%m-%d}']")
    expect(day).to_contain_text("10:00 Friday sofa news")
    day.get_by_role("link", name=re.compile("Friday sofa news")).click()
    page.wait_for_url(re.compile(rf"/platform/campaigns/{campaign.pk}/$"))
    manager_context.close()
    assert errors == []
