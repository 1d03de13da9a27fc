"""The customer-level read models (RFM cells, dormancy snapshots, CLV summaries) give the
customers and CLV reports exactly what the direct queries over every customer give, and the
pages read them instead of the 1M-row tables."""

# ruff: noqa: F811  (the fixtures imported by name from the reports' own tests)

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer, SegmentMembership
from experience.models import Order
from reports.customer_rollups import (
    clv_summary_store,
    customer_rollups_refresh,
    snapshot_days,
)
from reports.models import ClvSummary, DormancyDay, RfmCell
from reports.selectors import circle_figures
from reports.selectors.clv import clv_summary_current
from reports.selectors.rfm import dormancy_by_month
from reports.tasks import slow_rollups_task
from tests.factories import CustomerFactory
from tests.reports.test_clv_report import predicted  # noqa: F401  (a fixture, used by name)
from tests.reports.test_rfm import shop  # noqa: F401  (a fixture, used by name)

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/reports/customers/"
CLV = "/api/v1/reports/clv/"
QUERIES = [
    {},
    {"period": "7"},
    {"period": "30"},
    {"period": "365"},
    {"period": "90", "compare": "year"},
    {"period": "365", "compare": "none"},
]


def body(api, url: str, query: dict) -> tuple[list, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url, query)
    assert response.status_code == 200, response.content
    return response.json()["blocks"], [q["sql"] for q in captured.captured_queries]


def reads(sqls: list[str], table: str) -> bool:
    return any(table in sql for sql in sqls)


@pytest.mark.parametrize("query", QUERIES)
def test_customers_report_from_the_read_models_equals_the_direct_one(api, crm_manager, shop, query):
    api.force_authenticate(crm_manager)
    direct, direct_sql = body(api, CUSTOMERS, query)
    assert reads(direct_sql, "customers_customermetrics")
    customer_rollups_refresh()
    stored, stored_sql = body(api, CUSTOMERS, query)
    assert stored == direct
    assert not reads(stored_sql, "customers_customermetrics")
    assert not reads(stored_sql, "experience_order")


def test_a_segment_filter_still_counts_only_its_members(api, crm_manager, crm, shop):
    from tests.factories import SegmentFactory

    segment = SegmentFactory(owner_department=crm)
    for customer in shop["buyers"][::3]:
        SegmentMembership.objects.create(segment=segment, customer=customer)
    api.force_authenticate(crm_manager)
    query = {"segment": segment.pk}
    direct, _sql = body(api, CUSTOMERS, query)
    customer_rollups_refresh()
    filtered, filtered_sql = body(api, CUSTOMERS, query)
    assert filtered == direct
    assert reads(filtered_sql, "customers_segmentmembership")
    everyone, _sql = body(api, CUSTOMERS, {})
    assert everyone != filtered


def test_a_day_not_kept_falls_back_to_the_direct_query(api, crm_manager, shop):
    api.force_authenticate(crm_manager)
    query = {"period": "custom", "start": "2025-01-01", "end": "2025-02-10"}
    direct, _sql = body(api, CUSTOMERS, query)
    customer_rollups_refresh()
    again, sql = body(api, CUSTOMERS, query)
    assert again == direct
    assert reads(sql, "customers_customermetrics")  # dormancy only: the grid is stored


def test_several_as_of_days_in_one_query_equal_each_day_alone(shop):
    today = timezone.localdate()
    days = [*snapshot_days(today), today - dt.timedelta(days=500)]
    together = dormancy_by_month(days)
    assert together == {day: dormancy_by_month([day])[day] for day in days}
    assert any(together[day] for day in days)


def test_an_empty_company_is_stored_as_empty(api, crm_manager):
    customer_rollups_refresh()
    assert RfmCell.objects.count() == 1  # the "computed, nothing" marker
    api.force_authenticate(crm_manager)
    stored, sql = body(api, CUSTOMERS, {})
    assert not reads(sql, "customers_customermetrics")
    rfm = next(block for block in stored if block["key"] == "rfm")
    assert {m["key"]: m["value"] for m in rfm["metrics"]}["customers"] == 0


def test_the_refresh_replaces_the_tables_whole(shop):
    customer_rollups_refresh()
    first = list(RfmCell.objects.values_list("recency", "frequency", "customers"))
    customer_rollups_refresh()
    assert list(RfmCell.objects.values_list("recency", "frequency", "customers")) == first
    assert DormancyDay.objects.count() == len(snapshot_days(timezone.localdate()))


def test_the_slow_schedule_and_the_command_build_them(shop):
    assert slow_rollups_task()["customers"] > 0
    RfmCell.objects.all().delete()
    DormancyDay.objects.all().delete()
    call_command("rebuild_rollups", "--customers", verbosity=0)
    assert RfmCell.objects.exists()
    assert DormancyDay.objects.exists()


def test_clv_report_from_the_stored_summary_equals_the_direct_one(api, crm_manager, predicted):
    api.force_authenticate(crm_manager)
    direct, direct_sql = body(api, CLV, {})
    assert reads(direct_sql, "reports_customerprediction")
    clv_summary_store(predicted["fit"])
    stored, stored_sql = body(api, CLV, {})
    assert stored == direct
    assert not reads(stored_sql, "reports_customerprediction")
    assert not reads(stored_sql, "customers_segmentmembership")


def test_stored_segment_values_keep_visibility_and_follow_the_refresh(
    api, crm_manager, sales_editor, crm, predicted
):
    clv_summary_store(predicted["fit"])
    for user in (crm_manager, sales_editor):
        api.force_authenticate(user)
        stored = body(api, CLV, {})[0]
        ClvSummary.objects.update(segments_at=None)  # the live query, for comparison
        assert body(api, CLV, {})[0] == stored
        ClvSummary.objects.update(segments_at=timezone.now())
    api.force_authenticate(crm_manager)
    query = {"department": crm.pk}
    stored = body(api, CLV, query)[0]
    segments = next(block for block in stored if block["key"] == "segments")
    assert "Loyal" in [row["segment"] for row in segments["rows"]]
    ClvSummary.objects.update(segments_at=None)
    assert body(api, CLV, query)[0] == stored
    # Memberships move between refits: the 15-minute refresh recomputes the values.
    SegmentMembership.objects.filter(segment=predicted["loyal"]).delete()
    customer_rollups_refresh()
    segments = next(block for block in body(api, CLV, {})[0] if block["key"] == "segments")
    assert "Loyal" not in [row["segment"] for row in segments["rows"]]


def test_clv_segment_filter_does_not_use_the_summary(api, crm_manager, predicted):
    api.force_authenticate(crm_manager)
    query = {"segment": predicted["loyal"].pk}
    direct, sqls = body(api, CLV, query)
    # Totals and both histograms in one pass over the members' predictions, plus the
    # per-segment values.
    assert sum("reports_customerprediction" in sql for sql in sqls) == 2
    clv_summary_store(predicted["fit"])
    assert body(api, CLV, query)[0] == direct


def test_a_refit_stores_its_summary_and_rebuild_adds_a_missing_one(predicted):
    from reports.customer_rollups import clv_summary_rebuild
    from reports.selectors.clv import prediction_totals_direct

    assert clv_summary_current() is None
    assert clv_summary_rebuild() == 1
    summary = clv_summary_current()
    assert summary.fit == predicted["fit"]
    assert summary.customers == prediction_totals_direct().customers
    assert clv_summary_rebuild() == 0
    assert ClvSummary.objects.count() == 1


def test_predictions_refresh_stores_the_summary_of_its_fit(shop):
    from reports.predictions import predictions_refresh
    from reports.selectors.clv import prediction_totals_direct

    fit = predictions_refresh()
    if fit.error:
        pytest.skip(f"the small world does not fit: {fit.error}")
    summary = clv_summary_current()
    assert summary.fit == fit
    totals = prediction_totals_direct()
    assert (summary.customers, summary.clv, summary.likely_lapsed) == (
        totals.customers,
        totals.clv,
        totals.likely_lapsed,
    )


def test_monthly_orders_from_the_rollup_equal_the_raw_orders(shop):
    from reports.rollups import rollups_rebuild
    from reports.selectors import monthly_orders

    now = shop["now"]
    rollups_rebuild()
    rows = monthly_orders(now=now)
    completed = Order.objects.filter(status=Order.Status.COMPLETED)
    for row in rows:
        lo = timezone.make_aware(dt.datetime.combine(row.month, dt.time.min))
        following = (row.month + dt.timedelta(days=32)).replace(day=1)
        hi = timezone.make_aware(dt.datetime.combine(following, dt.time.min))
        in_month = [o.total for o in completed.filter(ordered_at__gte=lo, ordered_at__lt=hi)]
        assert (row.orders, row.revenue) == (len(in_month), int(sum(in_month)))
    assert sum(row.orders for row in rows) > 0


@pytest.mark.parametrize(
    ("circle", "raw_table"), [("strategy", "experience_order"), ("customer", "customers_identity")]
)
def test_a_home_card_reads_its_stored_headline_while_fresh(crm_manager, shop, circle, raw_table):
    now = timezone.now()
    customer_rollups_refresh(now=now)
    live = circle_figures(circle, user=crm_manager, now=now + dt.timedelta(hours=1))
    assert live.as_of is None  # no snapshot from the last 30 minutes: computed live

    with CaptureQueriesContext(connection) as captured:
        stored = circle_figures(circle, user=crm_manager, now=now + dt.timedelta(minutes=5))

    assert not reads([q["sql"] for q in captured.captured_queries], raw_table)
    assert stored.as_of == now
    assert [(f.key, f.value) for f in stored.figures] == [(f.key, f.value) for f in live.figures]
    assert any(f.value for f in stored.figures)


def test_the_customer_card_says_when_its_stored_count_was_taken(client, crm_editor, shop):
    taken = timezone.now()
    customer_rollups_refresh(now=taken)
    before = Customer.objects.filter(merged_into__isnull=True).count()
    CustomerFactory()  # arrives after the refresh: counted by the next one
    client.force_login(crm_editor)

    html = client.get(reverse("reports:circle_figures", args=["customer"])).content.decode()

    assert re.search(rf'data-figure="customers_total">.*?<dd>{before:,}\b', html, re.S)
    local = timezone.localtime(taken)  # shown in the user's time zone (Asia/Tokyo)
    assert f"As of {local:%H:%M} (refreshed every 15 minutes)" in html
