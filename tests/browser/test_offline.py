"""Every page works offline: nothing is fetched from anywhere but our own server.

htmx, Pico CSS, plotly.js and the API docs' Swagger UI are served from ``static/``; a CDN
would leave shop-floor tablets without a network with broken pages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from tests.factories import OrderFactory, SegmentFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = (
    reverse("home"),
    reverse("customers:index"),
    reverse("customers:segment_list"),
    reverse("experience:index"),
    reverse("journeys:index"),
    reverse("reports:index"),
    reverse("reports:report", args=["overview"]),
    reverse("reports:report", args=["nps"]),
    reverse("api-docs"),
)


def test_pages_request_nothing_outside_the_server(page, live_server):
    OrderFactory()  # so the strategy page draws its plotly chart
    SegmentFactory()
    UserFactory(username="admin-offline", is_superuser=True, is_staff=True)
    origin = urlsplit(live_server.url).netloc
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", "admin-offline")
    page.fill("#id_password", "correct-horse-battery")
    page.click("form:has(#id_password) button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    for path in PAGES:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")

    foreign = [
        url
        for url in requested
        if urlsplit(url).scheme in {"http", "https"} and urlsplit(url).netloc != origin
    ]
    assert foreign == []
    assert any(url.endswith("plotly-cartesian.min.js") for url in requested)
    assert any("swagger-ui" in url for url in requested)
