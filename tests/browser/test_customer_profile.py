"""The customer 360 page in Chromium: masked for a viewer, paged timeline, unmasked for CRM."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db.models import Count
from playwright.sync_api import expect

from customers.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)
SUBMIT = "form:has(#id_password) button[type=submit]"


@pytest.fixture
def demo_logins() -> dict:
    call_command("seed_demo", size="small", verbosity=0)
    from config.demo.seed import DEMO_LOGINS

    return {login.username: login for login in DEMO_LOGINS}


def log_in(page, live_server, login) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", login.username)
    page.fill("#id_password", login.password)
    page.click(SUBMIT)
    page.wait_for_url(live_server.url + "/")


def busy_customer() -> Customer:
    """A named customer with more than one page of events."""
    return (
        Customer.objects.filter(merged_into__isnull=True, identities__isnull=False)
        .exclude(family_name="")
        .annotate(n=Count("events", distinct=True))
        .filter(n__gt=60)
        .order_by("-n")
        .first()
    )


def test_viewer_sees_a_masked_profile_and_pages_the_timeline_then_crm_sees_the_name(
    live_server, page, demo_logins
):
    customer = busy_customer()
    assert customer is not None, "the small demo should have a customer with 60+ events"
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, live_server, demo_logins["sales-viewer"])
    page.goto(live_server.url + "/customers/")
    # A viewer finds the person by an identifier they already know; the row stays masked.
    page.fill("#customer-search", customer.identities.first().value)
    page.keyboard.press("Enter")
    expect(page.locator("#customer-results tbody tr")).to_have_count(1)
    page.get_by_role("link", name=f"Customer #{customer.pk}", exact=True).first.click()
    page.wait_for_url(re.compile(rf"/customers/{customer.pk}/$"))

    name = page.get_by_test_id("customer-name")
    expect(name).to_have_text(f"{customer.full_name[:1]}***")
    expect(page.get_by_test_id("identifier").first).to_contain_text("***")
    expect(page.locator("body")).not_to_contain_text(customer.full_name)
    entries = page.locator("#timeline .timeline-entry")
    expect(entries).to_have_count(50)
    first_page_newest = entries.first.locator("time").get_attribute("datetime")

    page.get_by_test_id("timeline-older").click()
    expect(page).to_have_url(re.compile(r"before="))
    expect(entries.first.locator("time")).not_to_have_attribute("datetime", first_page_newest)
    assert entries.count() > 0
    expect(page.get_by_role("link", name="Newest")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))
    log_in(page, live_server, demo_logins["crm"])
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    expect(page.get_by_test_id("customer-name")).to_have_text(customer.full_name)
    assert errors == []
