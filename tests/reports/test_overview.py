"""The four-circle overview equals a plain-Python count of the raw rows, by local Tokyo day.

Expectations walk the raw rows (``values()`` of the source tables) and place each on its
local day with ``datetime.astimezone``; the report reads the rollups.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.urls import reverse

from customers.models import Customer, CustomerMerge
from experience.models import Event, Order, Survey, SurveyResponse, Touchpoint
from journeys.models import Campaign, Delivery, StaffTask
from reports.catalog import Period, ReportFilters
from reports.charts.overview import loop_figure
from reports.pages.overview import build
from reports.rollups import rollups_rebuild
from reports.selectors.overview import loop_overview
from tests.factories import (
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    EventTypeFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def today() -> dt.date:
    return dt.datetime.now(TOKYO).date()


def at(days_ago: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(today() - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=TOKYO)


def in_period(value, period: Period) -> bool:
    return value is not None and period.start <= value.astimezone(TOKYO).date() <= period.end


@pytest.fixture
def world(crm, sales):
    """Rows of both departments in the last 7 days, the 7 before, and long ago; days chosen
    on the edges (00:00 and 23:59 local)."""
    tp_crm = TouchpointFactory(owner_department=crm)
    tp_sales = TouchpointFactory(owner_department=sales)
    view = EventTypeFactory(name="page_view")
    people = [CustomerFactory() for _ in range(4)]
    for days_ago, touchpoint in [
        (0, tp_crm),
        (1, tp_crm),
        (6, tp_sales),
        (6, None),
        (8, tp_crm),
        (13, tp_sales),
        (30, tp_crm),
    ]:
        EventFactory(
            customer=people[days_ago % 4],
            event_type=view,
            touchpoint=touchpoint,
            occurred_at=at(days_ago),
        )
    EventFactory(customer=people[0], event_type=view, touchpoint=tp_crm, occurred_at=at(7, 0))
    EventFactory(
        customer=people[0],
        event_type=view,
        touchpoint=tp_sales,
        occurred_at=at(6, 0).replace(minute=0),
    )
    # New profiles: auto_now_add, moved back in time.
    for pk, days_ago in zip([c.pk for c in people], (2, 9, 9, 40), strict=True):
        Customer.objects.filter(pk=pk).update(created_at=at(days_ago))
    # Unified profiles: standing merges count, an undone one does not.
    for days_ago, undone in ((1, False), (3, True), (10, False)):
        merge = CustomerMerge.objects.create(winner=people[0], loser=people[1], reason="email")
        CustomerMerge.objects.filter(pk=merge.pk).update(
            merged_at=at(days_ago), undone_at=at(0) if undone else None
        )
    # Answers: NPS survey of CRM, CSAT survey of sales.
    nps = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS)
    csat = SurveyFactory(owner_department=sales, kind=Survey.Kind.CSAT)
    for days_ago, score in ((0, 10), (1, 9), (2, 3), (4, 7), (9, 10), (10, 0)):
        SurveyResponseFactory(survey=nps, customer=people[1], score=score, answered_at=at(days_ago))
    SurveyResponseFactory(survey=csat, customer=people[2], score=5, answered_at=at(2))
    # Deliveries of a CRM campaign; a holdout is never "sent".
    step = CampaignStepFactory(campaign__owner_department=crm)
    step_sales = CampaignStepFactory(campaign__owner_department=sales)
    for days_ago, converted_days_ago, revenue in ((1, 0, 5000), (2, None, 0), (9, 8, 3000)):
        DeliveryFactory(
            step=step,
            customer=people[days_ago % 4],
            status=Delivery.Status.CONVERTED if converted_days_ago is not None else "sent",
            sent_at=at(days_ago),
            converted_at=at(converted_days_ago) if converted_days_ago is not None else None,
            revenue=revenue,
            occurrence=str(days_ago),
        )
    DeliveryFactory(step=step, customer=people[3], status=Delivery.Status.HOLDOUT, occurrence="h")
    delivery = DeliveryFactory(
        step=step_sales, customer=people[2], status="sent", sent_at=at(3), occurrence="s"
    )
    # Staff tasks of sales: created in the period, one done, one created before.
    for days_ago, done_days_ago in ((2, 1), (5, None), (12, 11)):
        task = StaffTask.objects.create(
            campaign=step_sales.campaign,
            delivery=delivery if days_ago == 2 else None,
            department=sales,
            customer=people[2],
            title="Visit",
            status=StaffTask.Status.DONE if done_days_ago is not None else StaffTask.Status.OPEN,
            completed_at=at(done_days_ago) if done_days_ago is not None else None,
        )
        StaffTask.objects.filter(pk=task.pk).update(created_at=at(days_ago))
    # Orders at both touchpoints; a cancelled one does not count.
    for days_ago, touchpoint, total in (
        (0, tp_crm, 1000),
        (3, tp_sales, 2500),
        (4, None, 700),
        (10, tp_crm, 9999),
    ):
        OrderFactory(
            customer=people[0], touchpoint=touchpoint, total=total, ordered_at=at(days_ago)
        )
    OrderFactory(
        customer=people[0], touchpoint=tp_crm, total=8000, ordered_at=at(1), status="cancelled"
    )
    rollups_rebuild()
    return {"crm": crm, "sales": sales}


def expected(period: Period, department_id: int | None = None) -> dict:
    """The loop over ``period`` from the raw rows, in plain Python."""

    def owned(owner_id) -> bool:
        return department_id is None or owner_id == department_id

    touchpoint_owner = dict(Touchpoint.objects.values_list("pk", "owner_department_id"))
    result: dict = dict.fromkeys(
        (
            "events",
            "answers",
            "sent",
            "conversions",
            "attributed_revenue",
            "tasks_created",
            "tasks_done",
            "orders",
            "revenue",
        ),
        0,
    )
    for row in Event.objects.values("occurred_at", "touchpoint_id"):
        if in_period(row["occurred_at"], period) and owned(
            touchpoint_owner.get(row["touchpoint_id"])
        ):
            result["events"] += 1
    if department_id is None:
        result["new_profiles"] = sum(
            in_period(c, period) for c in Customer.objects.values_list("created_at", flat=True)
        )
        result["unified_profiles"] = sum(
            in_period(m["merged_at"], period) and m["undone_at"] is None
            for m in CustomerMerge.objects.values("merged_at", "undone_at")
        )
    promoters = detractors = nps_answers = 0
    for row in SurveyResponse.objects.values(
        "answered_at", "score", "survey__kind", "survey__owner_department_id"
    ):
        if not in_period(row["answered_at"], period) or not owned(
            row["survey__owner_department_id"]
        ):
            continue
        result["answers"] += 1
        if row["survey__kind"] == "nps" and row["score"] is not None:
            nps_answers += 1
            promoters += row["score"] >= 9
            detractors += row["score"] <= 6
    result["nps"] = round((promoters - detractors) * 100 / nps_answers, 1) if nps_answers else None
    for row in Delivery.objects.values(
        "status", "sent_at", "converted_at", "revenue", "campaign__owner_department_id"
    ):
        if row["status"] == "holdout" or not owned(row["campaign__owner_department_id"]):
            continue
        result["sent"] += in_period(row["sent_at"], period)
        if in_period(row["converted_at"], period):
            result["conversions"] += 1
            result["attributed_revenue"] += int(row["revenue"] or 0)
    for row in StaffTask.objects.values("created_at", "completed_at", "status", "department_id"):
        if not owned(row["department_id"]):
            continue
        result["tasks_created"] += in_period(row["created_at"], period)
        result["tasks_done"] += row["status"] == "done" and in_period(row["completed_at"], period)
    for row in Order.objects.values("ordered_at", "status", "total", "touchpoint_id"):
        if row["status"] != "completed" or not in_period(row["ordered_at"], period):
            continue
        if owned(touchpoint_owner.get(row["touchpoint_id"])):
            result["orders"] += 1
            result["revenue"] += int(row["total"])
    return result


def last_week() -> ReportFilters:
    period = Period(today() - dt.timedelta(days=6), today())
    return ReportFilters(period=period, compare=period.previous())


def test_the_loop_equals_a_count_of_the_raw_rows_for_the_period_and_the_comparison(
    world, crm_viewer
):
    filters = last_week()

    data = loop_overview(user=crm_viewer, filters=filters)

    now = expected(filters.period)
    assert now["events"] == 5  # a sanity check of the world: 00:00 of day −6 is inside
    for key, value in now.items():
        assert data.totals.as_dict()[key] == value, key
    for key, value in expected(filters.compare).items():
        assert data.previous.as_dict()[key] == value, key


def test_each_department_row_counts_what_it_owns_and_the_rest_is_unattributed(world, crm_viewer):
    filters = last_week()

    rows = {
        row.name: row.totals.as_dict()
        for row in loop_overview(user=crm_viewer, filters=filters).departments
    }

    for department in (world["crm"], world["sales"]):
        own = expected(filters.period, department.pk)
        for key, value in own.items():
            assert rows[department.name][key] == value, (department.name, key)
    assert rows[""]["events"] == 1  # the event without a touchpoint
    assert rows[""]["orders"] == 1


def test_the_department_filter_restricts_every_figure_and_drops_company_wide_ones(
    world, crm_viewer
):
    filters = last_week()
    sales_only = ReportFilters(
        period=filters.period, compare=filters.compare, department=world["sales"]
    )

    blocks = {block.key: block for block in build(crm_viewer, sales_only)}

    own = expected(filters.period, world["sales"].pk)
    before = expected(filters.compare, world["sales"].pk)
    metrics = {
        m.key: m for key in ("data-in", "action-out", "results") for m in blocks[key].metrics
    }
    assert "new_profiles" not in metrics
    assert blocks["data-in"].note
    for key, metric in metrics.items():
        assert metric.value == own[key], key
        assert metric.previous == before[key], key
    assert [row["department"] for row in blocks["departments"].table.rows] == [world["sales"].name]


def test_the_daily_table_sums_to_the_period_totals(world, crm_viewer):
    filters = last_week()

    blocks = {block.key: block for block in build(crm_viewer, filters)}

    rows = blocks["loop"].table.rows
    assert [row["day"] for row in rows] == [
        filters.period.start + dt.timedelta(days=i) for i in range(7)
    ]
    now = expected(filters.period)
    for key in ("events", "new_profiles", "sent", "tasks_created", "orders", "revenue"):
        assert sum(row[key] for row in rows) == now[key], key
    assert rows[-1]["events"] == 1  # today's event
    assert blocks["loop"].figure is not None


def test_the_page_and_the_api_show_the_same_numbers(world, client, api, crm_viewer):
    client.force_login(crm_viewer)
    response = client.get(reverse("reports:report", args=["overview"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-metric="events"' in html
    assert 'data-testid="subscribe-form"' in html

    api.force_authenticate(crm_viewer)
    payload = api.get("/api/v1/reports/overview/").json()
    metrics = {m["key"]: m for block in payload["blocks"] for m in block["metrics"]}
    now = expected(last_week().period)
    before = expected(last_week().compare)
    for key in ("events", "new_profiles", "answers", "sent", "orders", "revenue", "nps"):
        assert metrics[key]["value"] == now[key], key
        assert metrics[key]["previous"] == before[key], key


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(reverse("reports:report", args=["overview"]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_bad_department_answers_400_naming_the_parameter(client, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(reverse("reports:report", args=["overview"]), {"department": "x"})

    assert response.status_code == 400
    assert "department" in response.content.decode()


def test_the_overview_never_names_a_campaign_touchpoint_or_survey(world, client, sales_editor):
    Campaign.objects.update(name="Secret CRM campaign")
    client.force_login(sales_editor)

    html = client.get(reverse("reports:report", args=["overview"])).content.decode()

    assert "Secret CRM campaign" not in html
    assert "Touchpoint " not in html


def test_loop_figure_has_three_panels_and_one_trace_per_series():
    days = [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]

    figure = loop_figure(
        days, {"Events": [1, 2], "New": [0, 1]}, {"Sent": [3, 4]}, {"Orders": [5, 6]}
    )

    assert [trace.name for trace in figure.data] == ["Events", "New", "Sent", "Orders"]
    assert [trace.yaxis for trace in figure.data] == ["y", "y", "y2", "y3"]
    with pytest.raises(ValueError, match="one value per day"):
        loop_figure(days, {"Events": [1]}, {}, {})


def test_revenue_is_summed_in_yen_without_rounding(world, crm_viewer):
    data = loop_overview(user=crm_viewer, filters=last_week())

    assert data.totals.revenue == 1000 + 2500 + 700
    assert data.totals.attributed_revenue == Decimal(5000)


def test_the_overview_is_one_aggregate_query_per_source_and_period(
    world, crm_viewer, django_assert_num_queries
):
    # 8 sources × (period, comparison) + the department names.
    with django_assert_num_queries(17):
        loop_overview(user=crm_viewer, filters=last_week())
