"""A report in Chromium: an analyst changes the period, the plotly figure redraws without a
page load, and the figure's data downloads as CSV with the same filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone

from config.org.models import Role
from reports.rollups import rollups_rebuild
from tests.factories import (
    DepartmentFactory,
    EventFactory,
    TouchpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"
SUBMIT = "form:has(#id_password) :is([type=submit], button:not([type]))"
REPORT = "overview"


FIGURE_X = "id => JSON.stringify(document.getElementById(id).data.map(t => Array.from(t.x || [])))"


def figure_x(page, chart_id: str) -> str:
    """The x values of every trace of a drawn plotly figure, as JSON text."""
    return page.evaluate(FIGURE_X, chart_id)


def test_a_filter_change_redraws_the_figure_and_the_csv_follows_the_filters(page, live_server):
    crm = DepartmentFactory(name="CRM & digital", slug="crm")
    UserFactory(username="analyst", department=crm, department__role=Role.VIEWER)
    shop = TouchpointFactory(owner_department=crm)
    now = timezone.now()
    for days_ago in (1, 3, 20, 60):
        EventFactory(touchpoint=shop, occurred_at=now - dt.timedelta(days=days_ago))
    rollups_rebuild()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", PASSWORD)
    page.click(SUBMIT)
    page.wait_for_url(re.compile(r"/$"))
    page.goto(f"{live_server.url}/reports/{REPORT}/?period=7")
    chart = page.locator(".report-block .chart[data-drawn]").first
    chart.wait_for()
    chart_id = chart.get_attribute("id")
    before = figure_x(page, chart_id)
    page.evaluate("window.reportMarker = 'same page'")

    page.select_option("select[name=period]", "90")
    page.wait_for_url(re.compile(r"period=90"))
    page.locator(f"#{chart_id}[data-drawn]").wait_for()
    page.wait_for_function(
        f"([id, old]) => document.getElementById(id)?.data && ({FIGURE_X})(id) !== old",
        arg=[chart_id, before],
    )

    block = chart.locator("xpath=ancestor::section[1]")
    header = [cell.strip() for cell in block.locator("thead th").all_text_contents()]
    with page.expect_download() as download_info:
        block.locator("a", has_text="CSV").click()
    download = download_info.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))

    assert figure_x(page, chart_id) != before
    assert page.evaluate("window.reportMarker") == "same page", "the filter reloaded the page"
    assert "period=90" in download.url
    assert download.suggested_filename.endswith(".csv")
    assert rows[0] == header
    assert len(rows) > 1
    assert errors == []
