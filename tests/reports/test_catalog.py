"""The report framework: periods, filters, and one report rendered as a page, a download
and an API answer that agree."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import plotly.graph_objects as go
import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from reports import catalog
from reports.catalog import Block, Column, Metric, Period, ReportSpec, Table
from tests.factories import SegmentFactory

HTMX = {"HX-Request": "true"}


def test_periods_step_back_by_their_own_length_or_a_year():
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 7))

    assert period.days == 7
    assert period.previous() == Period(dt.date(2026, 2, 22), dt.date(2026, 2, 28))
    assert Period(dt.date(2028, 2, 29), dt.date(2028, 3, 1)).year_before() == Period(
        dt.date(2027, 2, 28), dt.date(2027, 3, 1)
    )


def test_period_bounds_are_local_midnights(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    with timezone.override("Asia/Tokyo"):
        lo, hi = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 1)).bounds()

    assert lo == dt.datetime(2026, 2, 28, 15, 0, tzinfo=dt.UTC)
    assert hi == dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.UTC)


def test_a_table_exports_in_column_order_with_plain_values():
    table = Table(
        [Column("day", "Day", "date"), Column("revenue", "Revenue", "yen")],
        [{"revenue": Decimal("1200"), "day": dt.date(2026, 1, 2)}],
    )

    assert table.matrix() == [["Day", "Revenue"], ["2026-01-02", 1200]]


def test_a_report_may_only_name_known_filters():
    with pytest.raises(ValueError, match="colour"):
        catalog.register_report(
            ReportSpec("x", "X", "", build=lambda user, filters: [], filters=("colour",))
        )


def _build(user, filters):
    """A small report whose numbers show which filters reached it."""
    segment = filters.segment_id
    return [
        Block(
            key="days",
            title="Days",
            metrics=[
                Metric("days", "Days", filters.period.days, previous=filters.compare.days)
                if filters.compare
                else Metric("days", "Days", filters.period.days)
            ],
            figure=go.Figure(go.Bar(x=["a"], y=[filters.period.days])),
            table=Table(
                [Column("label", "Label"), Column("value", "Value", "int")],
                [
                    {"label": "=1+1", "value": filters.period.days},
                    {"label": f"segment {segment}", "value": segment or 0},
                ],
            ),
        )
    ]


@pytest.fixture
def sample_report(monkeypatch):
    spec = ReportSpec(
        "sample",
        "Sample report",
        "What the framework does.",
        build=_build,
        filters=("period", "compare", "segment"),
    )
    monkeypatch.setitem(catalog._REPORTS, "sample", spec)
    return spec


def _url():
    return reverse("reports:report", args=["sample"])


@pytest.mark.django_db
def test_a_report_page_shows_its_blocks_and_htmx_gets_only_the_body(
    client, crm_viewer, sample_report
):
    client.force_login(crm_viewer)

    page = client.get(_url(), {"period": "7"})
    body = client.get(_url(), {"period": "90"}, headers=HTMX)

    assert page.status_code == 200
    assert 'data-block="days"' in page.text
    assert 'data-chart-for="chart-days"' in page.text
    assert "<form" in page.text
    assert body.status_code == 200
    assert "<form" not in body.text
    assert 'id="report-body"' in body.text
    assert ">90<" in body.text  # the metric's value
    assert "HX-Request" in page["Vary"]


@pytest.mark.django_db
def test_bad_filters_answer_400_naming_the_parameter(client, crm_viewer, sample_report):
    client.force_login(crm_viewer)

    reversed_dates = client.get(_url(), {"start": "2026-03-05", "end": "2026-03-01"})
    no_period = client.get(_url(), {"period": "13"})
    download = client.get(
        reverse("reports:download", args=["sample", "days", "csv"]), {"end": "yesterday"}
    )

    assert reversed_dates.status_code == 400
    assert "<code>end</code>" in reversed_dates.text
    assert no_period.status_code == 400
    assert "<code>period</code>" in no_period.text
    assert download.status_code == 400
    assert download.text.startswith("end:")


@pytest.mark.django_db
def test_another_departments_segment_is_not_a_valid_filter(
    client, crm_viewer, sales, sample_report
):
    hidden = SegmentFactory(owner_department=sales)
    client.force_login(crm_viewer)

    response = client.get(_url(), {"segment": hidden.pk})

    assert response.status_code == 400
    assert "<code>segment</code>" in response.text
    assert hidden.name not in response.text


@pytest.mark.django_db
def test_the_download_is_the_blocks_table_with_formulas_neutralised(
    client, crm_viewer, sample_report
):
    segment = SegmentFactory(owner_department=crm_viewer.memberships.get().department)
    client.force_login(crm_viewer)
    query = {"start": "2026-01-01", "end": "2026-01-10", "segment": segment.pk}

    response = client.get(reverse("reports:download", args=["sample", "days", "csv"]), query)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    xlsx = client.get(reverse("reports:download", args=["sample", "days", "xlsx"]), query)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active

    assert 'filename="sample-days-20260101-20260110.csv"' in response["Content-Disposition"]
    assert rows == [["Label", "Value"], ["'=1+1", "10"], [f"segment {segment.pk}", str(segment.pk)]]
    assert [cell.value for cell in sheet[2]] == ["=1+1", 10]
    assert sheet["A2"].data_type == "s"


@pytest.mark.django_db
def test_unknown_reports_blocks_and_formats_are_404(client, crm_viewer, sample_report):
    client.force_login(crm_viewer)

    assert client.get(reverse("reports:report", args=["nothing"])).status_code == 404
    assert (
        client.get(reverse("reports:download", args=["sample", "nothing", "csv"])).status_code
        == 404
    )
    assert (
        client.get(reverse("reports:download", args=["sample", "days", "pdf"])).status_code == 404
    )


@pytest.mark.django_db
def test_reports_need_a_login(client, sample_report, api):
    page = client.get(_url())

    assert page.status_code == 302
    assert page["Location"].startswith(reverse("login"))
    assert api.get(reverse("api-report", args=["sample"])).status_code in (401, 403)


@pytest.mark.django_db
def test_the_api_answers_the_same_numbers_as_the_page(api, crm_viewer, sample_report):
    api.force_authenticate(crm_viewer)

    listing = api.get(reverse("api-reports"))
    answer = api.get(
        reverse("api-report", args=["sample"]),
        {"start": "2026-01-01", "end": "2026-01-10", "compare": "year"},
    )
    bad = api.get(reverse("api-report", args=["sample"]), {"compare": "never"})

    assert "sample" in [row["slug"] for row in listing.json()]
    data = answer.json()
    assert data["filters"]["compare_start"] == "2025-01-01"
    block = data["blocks"][0]
    assert block["metrics"][0] == {
        "key": "days",
        "label": "Days",
        "value": 10,
        "unit": "count",
        "previous": 10,
    }
    assert block["rows"][0] == {"label": "=1+1", "value": 10}
    assert bad.status_code == 400
    assert "compare" in bad.json()


@pytest.mark.django_db
def test_a_staff_member_without_a_department_gets_no_report_from_the_api(api, sample_report):
    from tests.factories import UserFactory

    api.force_authenticate(UserFactory())

    assert api.get(reverse("api-report", args=["sample"])).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("slug", [spec.slug for spec in catalog.report_specs()])
def test_every_report_opens_on_an_empty_database(client, api, crm_viewer, slug):
    """A new company has no data yet: every report still opens, with every filter set."""
    client.force_login(crm_viewer)
    api.force_authenticate(crm_viewer)
    query = {"start": "2026-01-01", "end": "2026-03-31", "compare": "year"}

    page = client.get(reverse("reports:report", args=[slug]), query)
    answer = api.get(reverse("api-report", args=[slug]), query)

    assert page.status_code == 200
    assert answer.status_code == 200
    assert answer.json()["filters"]["compare_start"] == "2025-01-01"


def test_the_catalogue_holds_the_eight_reports_in_order():
    assert [spec.slug for spec in catalog.report_specs()] == [
        "overview",
        "cx-value",
        "nps",
        "customers",
        "value",
        "lift",
        "clv",
        "circulation",
    ]


@pytest.mark.django_db
def test_the_strategy_page_links_every_report(client, crm_viewer):
    client.force_login(crm_viewer)

    page = client.get(reverse("reports:index"))

    for spec in catalog.report_specs():
        assert f'href="{reverse("reports:report", args=[spec.slug])}"' in page.text
