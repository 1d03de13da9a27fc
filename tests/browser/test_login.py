"""Signing in through the real login page in Chromium."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from config.org.models import Role
from tests.factories import UserFactory

LOGIN_PATH = "/accounts/login/"
# The login form's own submit button, whatever else the page (a language switch) may hold.
SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"


@pytest.fixture
def hanako(crm):
    return UserFactory(username="hanako", department=crm, department__role=Role.MANAGER)


def sign_in(page, live_server, *, username: str, password: str) -> None:
    page.goto(live_server.url + LOGIN_PATH)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click(SUBMIT)


def test_staff_user_signs_in_and_lands_on_home(live_server, page, hanako):
    sign_in(page, live_server, username="hanako", password="correct-horse-battery")

    page.wait_for_url(lambda url: urlsplit(url).path == "/")
    assert urlsplit(page.url).path == "/"


def test_wrong_password_shows_error_and_stays_on_login(live_server, page, hanako):
    sign_in(page, live_server, username="hanako", password="wrong-horse-battery")

    expect(page.get_by_text("Please enter a correct username and password")).to_be_visible()
    assert urlsplit(page.url).path == LOGIN_PATH


def test_anonymous_visit_to_home_redirects_to_login(live_server, page):
    page.goto(live_server.url + "/")

    url = urlsplit(page.url)
    assert url.path == LOGIN_PATH
    assert parse_qs(url.query)["next"] == ["/"]
