"""The CLV report: page, API and downloads agree with plain Python over the prediction rows.

Predictions are written by hand here (the fitting is tested in test_clv/test_predictions),
so every expected figure is a direct computation over known rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import SegmentMembership
from reports.models import ClvFit, CustomerPrediction
from reports.selectors.clv import VALUE_EDGES
from tests.factories import CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/clv/"
PAGE = "/reports/clv/"
PARAMS = {"r": 0.2, "alpha": 5.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 3000.0}
HOLDOUT = {
    "calibration_end": "2026-03-01T00:00:00+09:00",
    "days": 90.5,
    "customers": 7,
    "predicted_total": 10.5,
    "actual_total": 12.0,
    "mae": 0.8,
    "buckets": [
        {"frequency": "0", "customers": 4, "predicted": 0.5, "actual": 0.75},
        {"frequency": "1", "customers": 3, "predicted": 2.83, "actual": 3.0},
    ],
}
# (frequency, p_alive, expected purchases, clv)
ROWS = [
    (0, 1.0, 0.4, 2_000),
    (0, 1.0, 0.3, 1_500),
    (2, 0.95, 2.5, 30_000),
    (3, 0.25, 0.2, 4_999),
    (5, 0.05, 0.01, 100),
    (1, 0.55, 1.2, 12_000),
    (8, 0.999, 6.0, 640_000),
]


@pytest.fixture
def predicted(crm, sales):
    fit = ClvFit.objects.create(
        fitted_at=timezone.now() - dt.timedelta(days=2),
        calibration_end=timezone.now() - dt.timedelta(days=92),
        holdout_days=90,
        horizon_days=365,
        customers=len(ROWS),
        params=PARAMS,
        holdout_check=HOLDOUT,
    )
    customers = []
    for frequency, p_alive, purchases, value in ROWS:
        customer = CustomerFactory()
        customers.append(customer)
        CustomerPrediction.objects.create(
            customer=customer,
            fit=fit,
            frequency=frequency,
            recency_days=10 * frequency,
            age_days=200,
            p_alive=p_alive,
            expected_purchases=purchases,
            expected_value=Decimal(value // max(purchases, 0.01)),
            clv=Decimal(value),
        )
    loyal = SegmentFactory(owner_department=crm, name="Loyal")
    secret = SegmentFactory(owner_department=sales, name="Secret sales list")
    for customer in customers[2:]:
        SegmentMembership.objects.create(segment=loyal, customer=customer)
    for customer in customers[:3]:
        SegmentMembership.objects.create(segment=secret, customer=customer)
    unpredicted = CustomerFactory()  # a member without orders, so without a prediction
    SegmentMembership.objects.create(segment=loyal, customer=unpredicted)
    return {"fit": fit, "customers": customers, "loyal": loyal, "secret": secret}


def blocks(api, user, **query):
    api.force_authenticate(user)
    response = api.get(URL, query)
    assert response.status_code == 200, response.content
    return {block["key"]: block for block in response.json()["blocks"]}


def metrics(block) -> dict:
    return {metric["key"]: metric["value"] for metric in block["metrics"]}


def test_model_block_sums_the_predictions(api, crm_viewer, predicted):
    model = blocks(api, crm_viewer)["model"]

    values = metrics(model)
    assert values["customers"] == len(ROWS)
    assert values["repeat_buyers"] == sum(1 for row in ROWS if row[0] > 0)
    assert values["mean_p_alive"] == pytest.approx(sum(row[1] for row in ROWS) / len(ROWS))
    assert values["likely_lapsed"] == sum(1 for row in ROWS if row[1] < 0.3)
    assert values["expected_purchases"] == pytest.approx(sum(row[2] for row in ROWS), abs=0.05)
    assert values["clv"] == sum(row[3] for row in ROWS)
    table = {row["parameter"]: row["value"] for row in model["rows"]}
    assert table["α"] == PARAMS["alpha"]
    assert table["γ"] == PARAMS["gamma"]
    assert table["Mean chance to drop out after a purchase"] == pytest.approx(0.8 / 3.3)
    assert table["Population mean order value (¥)"] == pytest.approx(6 * 3000 / 3)
    assert model["note"] == ""


def test_holdout_block_shows_the_stored_check(api, crm_viewer, predicted):
    holdout = blocks(api, crm_viewer)["holdout"]

    values = metrics(holdout)
    assert values["predicted_total"] == 10.5
    assert values["actual_total"] == 12.0
    assert values["error_pct"] == pytest.approx(-12.5)
    assert values["mae"] == 0.8
    assert [row["frequency"] for row in holdout["rows"]] == ["0", "1"]
    assert holdout["rows"][1]["actual"] == 3.0


def test_histograms_bin_every_prediction_once(api, crm_viewer, predicted):
    data = blocks(api, crm_viewer)

    p_alive = data["p-alive"]["rows"]
    assert len(p_alive) == 10
    for index, row in enumerate(p_alive):
        members = [r for r in ROWS if min(int(r[1] * 10), 9) == index]
        assert row["customers"] == len(members), row
        assert row["one_time"] == sum(1 for r in members if r[0] == 0)
    assert p_alive[9]["one_time"] == 2  # one-time buyers are alive by definition

    value = data["value"]["rows"]
    edges = [*VALUE_EDGES, float("inf")]
    for index, row in enumerate(value):
        members = [r for r in ROWS if edges[index] <= r[3] < edges[index + 1]]
        assert row["customers"] == len(members), row
        assert row["clv"] == sum(r[3] for r in members)
    assert sum(row["customers"] for row in value) == len(ROWS)


def test_segments_block_lists_only_visible_segments(api, crm_viewer, sales_editor, predicted):
    rows = blocks(api, crm_viewer)["segments"]["rows"]

    assert [row["segment"] for row in rows] == ["Loyal"]
    loyal = ROWS[2:]
    assert rows[0]["members"] == len(loyal) + 1
    assert rows[0]["predicted"] == len(loyal)
    assert rows[0]["clv"] == sum(r[3] for r in loyal)
    assert rows[0]["mean_clv"] == round(sum(r[3] for r in loyal) / len(loyal))
    assert rows[0]["mean_p_alive"] == pytest.approx(sum(r[1] for r in loyal) / len(loyal))

    sales_rows = blocks(api, sales_editor)["segments"]["rows"]
    assert [row["segment"] for row in sales_rows] == ["Secret sales list"]


def test_segment_filter_restricts_the_customer_figures(api, crm_viewer, predicted):
    data = blocks(api, crm_viewer, segment=predicted["loyal"].pk)

    loyal = ROWS[2:]
    values = metrics(data["model"])
    assert values["customers"] == len(loyal)
    assert values["clv"] == sum(r[3] for r in loyal)
    assert sum(row["customers"] for row in data["p-alive"]["rows"]) == len(loyal)
    assert "does not apply" in data["holdout"]["note"]


def test_department_filter_keeps_only_that_departments_segments(api, superuser, crm, predicted):
    rows = blocks(api, superuser, department=crm.pk)["segments"]["rows"]
    assert [row["segment"] for row in rows] == ["Loyal"]
    assert len(blocks(api, superuser)["segments"]["rows"]) == 2


def test_another_departments_segment_is_a_bad_filter(api, crm_viewer, predicted):
    api.force_authenticate(crm_viewer)
    response = api.get(URL, {"segment": predicted["secret"].pk})
    assert response.status_code == 400
    assert "segment" in response.content.decode()


def test_a_failed_refit_is_explained_and_the_last_good_fit_shown(api, crm_viewer, predicted):
    ClvFit.objects.create(
        fitted_at=timezone.now(),
        calibration_end=timezone.now(),
        error="too few repeat buyers to fit BG/NBD (3; at least 10)",
    )
    model = blocks(api, crm_viewer)["model"]
    assert "too few repeat buyers" in model["note"]
    assert {row["parameter"]: row["value"] for row in model["rows"]}["r"] == PARAMS["r"]


def test_without_a_fit_the_report_says_so(api, crm_viewer):
    data = blocks(api, crm_viewer)
    assert "No model has been fitted yet" in data["model"]["note"]
    assert metrics(data["model"])["customers"] == 0
    assert data["holdout"]["rows"] == []


def test_page_renders_for_a_viewer(client, crm_viewer, predicted):
    client.force_login(crm_viewer)
    response = client.get(PAGE)
    html = response.content.decode()
    assert response.status_code == 200
    for key in ("model", "holdout", "p-alive", "value", "segments"):
        assert f'data-block="{key}"' in html
    assert 'data-chart-for="chart-holdout"' in html
    assert "Secret sales list" not in html
    # No customer is named anywhere in the report.
    for customer in predicted["customers"]:
        assert customer.given_name not in html


def test_download_matches_the_table(client, crm_viewer, predicted):
    client.force_login(crm_viewer)
    response = client.get("/reports/clv/value.csv")
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = content.strip().splitlines()
    assert len(lines) == 1 + len(VALUE_EDGES)


def test_anonymous_is_sent_to_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.url


def test_chart_builders_take_plain_data():
    from reports.charts import clv as charts

    holdout = charts.holdout_figure(["0", "1", "7+"], [0.1, 0.6, 1.5], [0.2, 0.5, 1.4])
    assert [list(trace.y) for trace in holdout.data] == [[0.2, 0.5, 1.4], [0.1, 0.6, 1.5]]
    histogram = charts.histogram_figure(["a", "b"], [3, 0], [1, 2], x_title="P(alive)")
    assert histogram.layout.barmode == "stack"
    assert [list(trace.y) for trace in histogram.data] == [[1, 2], [3, 0]]
    bars = charts.segment_value_figure(["Top", "Second"], [200.0, 100.0])
    assert list(bars.data[0].y) == ["Second", "Top"]  # highest drawn at the top
    with pytest.raises(ValueError, match="same length"):
        charts.holdout_figure(["0"], [0.1, 0.2], [0.1])
