"""The value report (LTV, F2, retention) against plain Python over the raw orders."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from customers.models import SegmentMembership
from experience.models import Order, Touchpoint
from reports.catalog import Period
from reports.charts.value import f2_figure, ltv_figure, retention_figure
from reports.cohorts import cohorts_refresh
from reports.selectors.value import period_months
from tests.factories import CustomerFactory, OrderFactory, SegmentFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
URL = "/api/v1/reports/value/"
FIRST_QUARTER = {"period": "custom", "start": "2024-01-01", "end": "2024-03-31"}


def tokyo(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def month_index(when: dt.date | dt.datetime) -> int:
    return when.year * 12 + when.month - 1


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


@pytest.fixture
def shop(crm, sales):
    """Customers acquired online (CRM's web shop) and in a store of sales planning, with
    first orders from January to June 2024 and repeat orders up to a year and a half later."""
    web = TouchpointFactory(owner_department=crm, channel=Touchpoint.Channel.WEB, name="Web shop")
    store = TouchpointFactory(
        owner_department=sales, channel=Touchpoint.Channel.STORE, name="Secret Ginza store"
    )
    plan = [
        # (first order, touchpoint, later orders as (days after, total), first total)
        (tokyo(2024, 1, 31, 23, 30), web, [(20, 4000), (200, 9000)], 3000),
        (tokyo(2024, 1, 5, 9), web, [(120, 2000)], 5000),
        (tokyo(2024, 1, 9, 9), store, [], 12000),
        (tokyo(2024, 2, 1, 0, 30), store, [(3, 1000), (40, 1000), (400, 8000)], 7000),
        (tokyo(2024, 2, 14, 18), web, [(91, 2500)], 2500),
        (tokyo(2024, 3, 3, 12), store, [(90, 6000)], 6000),
        (tokyo(2024, 3, 20, 12), web, [], 1500),
        (tokyo(2024, 4, 2, 12), web, [(10, 1000), (100, 1000)], 4000),
        (tokyo(2024, 5, 15, 12), store, [], 9000),
        (tokyo(2024, 6, 30, 23, 59), web, [(1, 500)], 800),
    ]
    customers = []
    for first_at, touchpoint, later, total in plan:
        customer = CustomerFactory()
        customers.append(customer)
        OrderFactory(customer=customer, ordered_at=first_at, touchpoint=touchpoint, total=total)
        for days, amount in later:
            OrderFactory(
                customer=customer,
                ordered_at=first_at + dt.timedelta(days=days),
                touchpoint=web,
                total=amount,
            )
    # Not counted: a cancelled order before a customer's first completed order.
    OrderFactory(
        customer=customers[1], ordered_at=tokyo(2023, 12, 1), status=Order.Status.CANCELLED
    )
    cohorts_refresh()
    return {"web": web, "store": store, "customers": customers}


def expected(*, months: list[dt.date], customers=None, channel: str = "", today: dt.date):
    """Every figure of the report, computed directly from the completed orders."""
    orders = defaultdict(list)
    for order in Order.objects.filter(status=Order.Status.COMPLETED).select_related("touchpoint"):
        if customers is None or order.customer_id in customers:
            orders[order.customer_id].append(order)
    cohorts = defaultdict(list)  # month → [(customer orders sorted, channel)]
    for mine in orders.values():
        mine.sort(key=lambda order: (order.ordered_at, order.pk))
        first = mine[0]
        local = first.ordered_at.astimezone(TOKYO)
        month = dt.date(local.year, local.month, 1)
        first_channel = first.touchpoint.channel if first.touchpoint else ""
        if month in months and (not channel or first_channel == channel):
            cohorts[month].append((mine, first_channel))

    def offset(order, month):
        return month_index(order.ordered_at.astimezone(TOKYO)) - month_index(month)

    f2, ltv, retention = [], [], []
    totals = {"customers": 0, "repeaters": 0, "repeaters_90d": 0, "revenue_12": 0}
    for month in sorted(cohorts):
        members = cohorts[month]
        size = len(members)
        repeat = sum(1 for mine, _c in members if len(mine) > 1)
        repeat_90 = sum(
            1
            for mine, _c in members
            if len(mine) > 1 and mine[1].ordered_at - mine[0].ordered_at <= dt.timedelta(days=90)
        )
        f2.append(
            (month.strftime("%Y-%m"), size, repeat, repeat / size, repeat_90, repeat_90 / size)
        )
        done = month_index(today) - month_index(month)
        row = {"cohort": month.strftime("%Y-%m"), "customers": size}
        for n in (3, 6, 12):
            revenue = sum(
                int(o.total) for mine, _c in members for o in mine if offset(o, month) < n
            )
            row[f"ltv_{n}"] = half_up(Decimal(revenue) / size) if done >= n else None
        row["ltv_to_date"] = half_up(
            Decimal(sum(int(o.total) for mine, _c in members for o in mine)) / size
        )
        ltv.append(row)
        shares = {}
        for k in range(min(done + 1, 24)):
            active = sum(1 for mine, _c in members if any(offset(o, month) == k for o in mine))
            shares[f"m{k}"] = active / size
        retention.append(shares)
        totals["customers"] += size
        totals["repeaters"] += repeat
        totals["repeaters_90d"] += repeat_90
        totals["revenue_12"] += sum(
            int(o.total) for mine, _c in members for o in mine if offset(o, month) < 12
        )
    curves = defaultdict(list)
    for curve_channel in sorted({c for members in cohorts.values() for _m, c in members}):
        chosen = {m: [mine for mine, c in cohorts[m] if c == curve_channel] for m in cohorts}
        chosen = {m: people for m, people in chosen.items() if people}
        horizon = max(month_index(today) - month_index(m) for m in chosen)
        cumulative = Decimal(0)
        for k in range(horizon):
            # Month k's revenue per customer over the cohorts that have completed month k.
            mature = [m for m in chosen if month_index(today) - month_index(m) > k]
            revenue = sum(
                int(o.total)
                for m in mature
                for mine in chosen[m]
                for o in mine
                if offset(o, m) == k
            )
            cumulative += Decimal(revenue) / sum(len(chosen[m]) for m in mature)
            curves[curve_channel].append((k, half_up(cumulative)))
    size = totals["customers"]
    headline = {
        "customers": size,
        "f2_rate": totals["repeaters"] / size if size else None,
        "f2_rate_90d": totals["repeaters_90d"] / size if size else None,
        "ltv_12": half_up(Decimal(totals["revenue_12"]) / size) if size else None,
    }
    return {"f2": f2, "ltv": ltv, "retention": retention, "curves": curves, "headline": headline}


def blocks(response) -> dict:
    assert response.status_code == 200, response.content
    return {block["key"]: block for block in response.json()["blocks"]}


def assert_report_matches(answer: dict, want: dict) -> None:
    f2 = answer["f2"]["rows"]
    assert [
        (
            r["cohort"],
            r["customers"],
            r["repeaters"],
            r["f2_rate"],
            r["repeaters_90d"],
            r["f2_rate_90d"],
        )
        for r in f2
    ] == [pytest.approx(row) for row in want["f2"]]
    assert answer["ltv-cohort"]["rows"] == want["ltv"]
    retention = [
        {key: value for key, value in row.items() if key.startswith("m") and value is not None}
        for row in answer["retention"]["rows"]
    ]
    assert retention == [pytest.approx(row) for row in want["retention"]]
    labels = {str(label): value for value, label in Touchpoint.Channel.choices}
    curves = defaultdict(list)
    for row in answer["ltv-channel"]["rows"]:
        curves[labels[row["channel"]]].append((row["offset"], row["ltv"]))
    assert dict(curves) == dict(want["curves"])
    metrics = {metric["key"]: metric["value"] for metric in answer["headline"]["metrics"]}
    assert metrics == pytest.approx(want["headline"])


def test_the_report_equals_a_direct_computation_from_orders(api, crm_viewer, shop):
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, {**FIRST_QUARTER, "compare": "none"}))

    months = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    want = expected(months=months, today=timezone.localdate())
    assert_report_matches(answer, want)
    # The late-January order (23:30 local) is a January first order; the one at 00:30 on
    # 1 February is February's.
    assert [row["customers"] for row in answer["f2"]["rows"]] == [3, 2, 2]


def test_the_headline_compares_with_the_previous_periods_cohorts(api, crm_viewer, shop):
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, {"period": "custom", "start": "2024-04-01", "end": "2024-06-30"}))
    today = timezone.localdate()
    now = expected(
        months=period_months(Period(dt.date(2024, 4, 1), dt.date(2024, 6, 30))), today=today
    )
    before = expected(
        months=period_months(Period(dt.date(2024, 1, 1), dt.date(2024, 3, 31))), today=today
    )
    metrics = {m["key"]: (m["value"], m["previous"]) for m in answer["headline"]["metrics"]}
    assert metrics == {
        key: pytest.approx((now["headline"][key], before["headline"][key]))
        for key in now["headline"]
    }


def test_the_channel_filter_keeps_customers_acquired_there(api, crm_viewer, shop):
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, {**FIRST_QUARTER, "compare": "none", "channel": "store"}))

    months = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    want = expected(months=months, channel="store", today=timezone.localdate())
    assert_report_matches(answer, want)
    assert sum(row["customers"] for row in answer["f2"]["rows"]) == 3


def test_a_segment_restricts_the_figures_to_its_members(api, crm_viewer, crm, shop):
    segment = SegmentFactory(owner_department=crm)
    members = shop["customers"][::2]
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, customer=customer) for customer in members
    )
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, {**FIRST_QUARTER, "compare": "none", "segment": segment.pk}))

    months = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    want = expected(months=months, customers={c.pk for c in members}, today=timezone.localdate())
    assert_report_matches(answer, want)
    assert answer["headline"]["metrics"][0]["value"] == 4


def test_young_cohorts_have_no_ltv_for_months_not_yet_over(api, crm_viewer):
    today = timezone.localdate()
    this_month = today.replace(day=1)
    customer = CustomerFactory()
    OrderFactory(customer=customer, ordered_at=timezone.now() - dt.timedelta(minutes=5), total=900)
    cohorts_refresh()
    api.force_authenticate(crm_viewer)

    answer = blocks(api.get(URL, {"period": "30", "compare": "none"}))

    (row,) = answer["ltv-cohort"]["rows"]
    assert row == {
        "cohort": this_month.strftime("%Y-%m"),
        "customers": 1,
        "ltv_3": None,
        "ltv_6": None,
        "ltv_12": None,
        "ltv_to_date": 900,
    }
    assert answer["retention"]["rows"] == [
        {"cohort": this_month.strftime("%Y-%m"), "customers": 1, "m0": 1.0}
    ]
    assert answer["ltv-channel"]["rows"] == []


def test_the_page_renders_for_a_viewer_without_naming_touchpoints(client, crm_viewer, shop):
    client.force_login(crm_viewer)
    response = client.get("/reports/value/", FIRST_QUARTER)

    assert response.status_code == 200
    html = response.content.decode()
    for key in ("headline", "ltv-channel", "ltv-cohort", "f2", "retention"):
        assert f'data-block="{key}"' in html
    assert "2024-02" in html
    assert "Store" in html
    assert "Secret Ginza store" not in html


def test_htmx_gets_the_report_body(client, crm_viewer, shop):
    client.force_login(crm_viewer)
    response = client.get("/reports/value/", FIRST_QUARTER, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="report-body"')


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/reports/value/")
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_a_bad_filter_answers_400_naming_it(client, crm_viewer, sales):
    other = SegmentFactory(owner_department=sales)
    client.force_login(crm_viewer)
    assert "channel" in client.get("/reports/value/", {"channel": "pigeon"}).content.decode()
    response = client.get("/reports/value/", {"segment": other.pk})
    assert response.status_code == 400
    assert "segment" in response.content.decode()


def test_the_download_is_the_f2_table(client, crm_viewer, shop):
    client.force_login(crm_viewer)
    response = client.get("/reports/value/f2.csv", FIRST_QUARTER)
    assert response.status_code == 200
    lines = b"".join(response.streaming_content if response.streaming else [response.content])
    text = lines.decode("utf-8-sig")
    assert "2024-01" in text
    assert "2024-03" in text


# --- Pure chart builders --------------------------------------------------------------------


def test_the_retention_heatmap_keeps_unreached_months_blank():
    figure = retention_figure(["2024-01", "2024-02"], 2, [[1.0, 0.5], [1.0, None]])
    (trace,) = figure.data
    assert trace.type == "heatmap"
    assert [list(row) for row in trace.z] == [[1.0, 0.5], [1.0, None]]
    with pytest.raises(ValueError, match="one row per cohort"):
        retention_figure(["2024-01"], 3, [[1.0]])


def test_f2_bars_and_ltv_lines_take_plain_data():
    bars = f2_figure(["2024-01"], [0.5], [0.25])
    assert [list(trace.y) for trace in bars.data] == [[0.5], [0.25]]
    with pytest.raises(ValueError, match="same length"):
        f2_figure(["2024-01"], [0.5], [])
    lines = ltv_figure({"Store": [(0, 1000), (1, 1500)], "Website": [(0, 800)]})
    assert [trace.name for trace in lines.data] == ["Store", "Website"]
    assert list(lines.data[0].y) == [1000, 1500]


def test_period_months_are_the_months_starting_in_the_period():
    assert period_months(Period(dt.date(2025, 11, 23), dt.date(2026, 11, 22)))[0] == dt.date(
        2025, 12, 1
    )
    assert len(period_months(Period(dt.date(2025, 11, 23), dt.date(2026, 11, 22)))) == 12
    assert period_months(Period(dt.date(2026, 3, 5), dt.date(2026, 3, 20))) == [dt.date(2026, 3, 1)]
