"""The four-circle home in Chromium: each demo department signs in and sees live figures.

Screenshots of the home page in English and Japanese land in ``test-results/`` for people
to look at; the folder is git-ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
# Usernames of the demo's department managers (promotion, CRM, sales, analytics).
DEPARTMENT_LOGINS = ("promo", "crm", "sales", "analytics")
# One figure per card, each of which always shows a number once the company has data.
CARD_FIGURES = {
    "customer": "customers_total",
    "experience": "touchpoints_active",
    "platform": "campaigns_active",
    "strategy": "ltv_12m",
}
DIGIT = re.compile(r"\d")
SUBMIT = "form:has(#id_password) button[type=submit]"


@pytest.fixture
def demo_logins() -> dict:
    """Seed the small demo company; return its logins by username."""
    call_command("seed_demo", size="small", verbosity=0)
    from config.demo.seed import DEMO_LOGINS

    return {login.username: login for login in DEMO_LOGINS}


@pytest.fixture
def page_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def log_in(page, live_server, login) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", login.username)
    page.fill("#id_password", login.password)
    page.click(SUBMIT)
    page.wait_for_url(live_server.url + "/")


def expect_live_figures(page) -> None:
    for circle, key in CARD_FIGURES.items():
        expect(page.locator(f'section.circle-card[data-circle="{circle}"]')).to_be_visible()
        expect(page.locator(f'[data-figure="{key}"] dd')).to_contain_text(DIGIT)


def test_every_department_sees_the_four_circles_with_live_figures(
    live_server, page, page_errors, demo_logins
):
    for username in DEPARTMENT_LOGINS:
        login = demo_logins[username]
        assert login.department_slug, f"{username} should be a department login"
        log_in(page, live_server, login)

        expect(page.locator("svg.circles-diagram a.ring")).to_have_count(4)
        expect_live_figures(page)

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/accounts/login/"))

    assert page_errors == []


def test_customer_circle_opens_and_the_page_switches_to_japanese(
    live_server, page, page_errors, demo_logins
):
    SCREENSHOTS.mkdir(exist_ok=True)
    log_in(page, live_server, demo_logins["crm"])
    expect_live_figures(page)
    page.screenshot(path=SCREENSHOTS / "home-en.png", full_page=True)

    page.locator('svg.circles-diagram a.ring[data-circle="customer"]').click()
    page.wait_for_url(live_server.url + "/customers/")
    expect(page.locator("h1")).to_have_text("① Customer")

    page.select_option("#language-select", "ja")
    page.get_by_role("button", name="Change language").click()
    page.wait_for_url(live_server.url + "/customers/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")

    page.goto(live_server.url + "/")
    expect(page.locator("html[lang=ja]")).to_have_count(1)
    expect_live_figures(page)
    page.screenshot(path=SCREENSHOTS / "home-ja.png", full_page=True)

    # Needs locale/ja: msgid "Customer" → msgstr "顧客" (the circle's name in nav and h1).
    expect(page.locator("nav.circle-nav a[data-circle=customer]")).to_contain_text("顧客")
    assert page_errors == []
