"""Data circulation: whose data the segments and campaigns of each department use.

The world below is small enough to list every flow by hand; the expectations are that list.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from customers.models import AttributeDefinition, ImportJob, Segment
from journeys.models import Campaign
from reports.catalog import Period, ReportFilters
from reports.charts.overview import circulation_figure
from reports.pages.circulation import build
from reports.rollups import rollups_rebuild
from reports.selectors.circulation import data_circulation
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    DepartmentFactory,
    EventTypeFactory,
    SegmentFactory,
    SurveyFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db


def and_(*children) -> dict:
    return {"op": "and", "children": list(children)}


@pytest.fixture
def world(crm, sales, superuser):
    analytics = DepartmentFactory(name="Analytics", slug="analytics")
    EventTypeFactory(name="purchase", owner_department=sales)
    EventTypeFactory(name="page_view", owner_department=crm)
    TouchpointFactory(code="store-1", owner_department=sales)
    AttributeDefinition.objects.create(
        key="skin_type", label="Skin type", type="text", owner_department=analytics
    )
    SurveyFactory(owner_department=crm, kind="nps")
    ImportJob.objects.create(
        owner_department=sales,
        kind=ImportJob.Kind.CUSTOMERS,
        status=ImportJob.Status.DONE,
        original_name="pos.csv",
        sha256="0" * 64,
        source="pos",
        mapping={"肌タイプ": "attr:skin_type", "メール": "email"},
    )
    a = SegmentFactory(
        name="Analytics buyers",
        owner_department=analytics,
        rules=and_({"type": "event", "event": "purchase"}),
    )
    b = SegmentFactory(
        name="CRM skin",
        owner_department=crm,
        rules=and_(
            {"type": "segment", "segment": a.pk},
            {
                "op": "not",
                "child": {"type": "attribute", "key": "skin_type", "op": "eq", "value": "dry"},
            },
        ),
    )
    c = SegmentFactory(
        name="CRM visitors",
        owner_department=crm,
        rules=and_({"type": "event", "event": "page_view"}),
    )
    SegmentFactory(
        name="Sales promoters",
        owner_department=sales,
        rules=and_({"type": "nps", "category": "promoter"}),
    )
    e = SegmentFactory(
        name="Sales store buyers",
        owner_department=sales,
        rules=and_({"type": "order", "touchpoint": "store-1"}),
    )
    x = CampaignFactory(
        name="CRM win-back",
        owner_department=crm,
        segment=a,
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "page_view", "unless": ["unknown_event"]},
    )
    y = CampaignFactory(
        name="Sales visit",
        owner_department=sales,
        segment=e,
        audience_rules=and_({"type": "order", "touchpoint": "store-1", "min_count": 2}),
    )
    long_ago = timezone.now() - dt.timedelta(days=100)
    recently = timezone.now() - dt.timedelta(days=3)
    Segment.objects.update(created_at=long_ago)
    Campaign.objects.update(created_at=long_ago)
    Segment.objects.filter(pk=b.pk).update(created_at=recently)
    Campaign.objects.filter(pk=x.pk).update(created_at=recently)
    step = CampaignStepFactory(campaign=x)
    for days_ago in (1, 2, 3, 60):
        DeliveryFactory(
            step=step,
            customer=CustomerFactory(),
            sent_at=timezone.now() - dt.timedelta(days=days_ago),
        )
    DeliveryFactory(step=CampaignStepFactory(campaign=y), sent_at=timezone.now())
    share_grant(obj=a, department=crm, can_edit=False, by=superuser)
    share_grant(obj=c, department=sales, can_edit=True, by=superuser)
    rollups_rebuild()
    return {"analytics": analytics, "crm": crm, "sales": sales, "c": c}


def last_30_days() -> ReportFilters:
    end = timezone.localdate()
    period = Period(end - dt.timedelta(days=29), end)
    return ReportFilters(period=period, compare=period.previous())


def test_every_flow_of_data_between_departments(world, superuser):
    names = {d.pk: d.name for d in (world["analytics"], world["crm"], world["sales"])}

    data = data_circulation(user=superuser, filters=last_30_days())

    flows = {
        (names[f.owner_id], names[f.user_id], f.kind): (f.segments, f.campaigns, f.sent)
        for f in data.flows
    }
    assert flows == {
        ("Sales planning", "Analytics", "event_type"): (1, 0, 0),
        ("Analytics", "CRM & digital", "segment"): (1, 1, 3),
        ("Analytics", "CRM & digital", "attribute"): (1, 0, 0),
        ("Sales planning", "CRM & digital", "import"): (1, 0, 0),
        ("CRM & digital", "CRM & digital", "event_type"): (1, 1, 3),
        ("CRM & digital", "Sales planning", "survey"): (1, 0, 0),
        ("Sales planning", "Sales planning", "touchpoint"): (1, 1, 1),
        ("Sales planning", "Sales planning", "segment"): (0, 1, 1),
    }
    assert data.cross_sent == 3  # the CRM win-back, once, though it crosses in one flow


def test_walls_down_rate_now_and_at_the_end_of_the_comparison_period(world, superuser):
    data = data_circulation(user=superuser, filters=last_30_days())

    # Now: A, B, D, X cross among A, B, C, D, E, X, Y. Before: B and X did not exist yet.
    assert (data.walls_down.crossing, data.walls_down.total) == (4, 7)
    assert (data.walls_down_before.crossing, data.walls_down_before.total) == (2, 5)


def test_the_department_filter_keeps_flows_into_or_out_of_it(world, superuser):
    filters = last_30_days()
    only = ReportFilters(
        period=filters.period, compare=filters.compare, department=world["analytics"]
    )

    data = data_circulation(user=superuser, filters=only)

    assert {(f.owner_id, f.user_id) for f in data.flows} == {
        (world["sales"].pk, world["analytics"].pk),
        (world["analytics"].pk, world["crm"].pk),
    }
    assert (data.walls_down.crossing, data.walls_down.total) == (1, 1)


def test_names_only_of_visible_segments_and_campaigns_counts_of_all(world, sales_editor):
    blocks = {block.key: block for block in build(sales_editor, last_30_days())}

    rows = blocks["flows"].table.rows
    by_pair = {(r["owner"], r["user"], r["kind"]): r for r in rows}
    into_crm = by_pair[("Analytics", "CRM & digital", "Segment")]
    assert (into_crm["segments"], into_crm["campaigns"]) == (1, 1)
    assert into_crm["examples"] == ""  # CRM skin and CRM win-back are not shared with sales
    own = by_pair[("Sales planning", "Sales planning", "Touchpoint")]
    assert own["examples"] == "Sales store buyers, Sales visit"
    crm_own = by_pair[("CRM & digital", "CRM & digital", "Event type")]
    assert crm_own["examples"] == "CRM visitors"  # shared with sales


def test_sharing_per_department_pair(world, superuser):
    blocks = {block.key: block for block in build(superuser, last_30_days())}

    assert sorted(
        (r["owner"], r["shared_with"], r["shared"], r["can_edit"])
        for r in blocks["sharing"].table.rows
    ) == [
        ("Analytics", "CRM & digital", 1, 0),
        ("CRM & digital", "Sales planning", 1, 1),
    ]


def test_the_page_and_the_api_agree(world, client, api, crm_viewer):
    client.force_login(crm_viewer)
    response = client.get(reverse("reports:report", args=["circulation"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Analytics buyers" in html  # shared with CRM
    assert "Sales store buyers" not in html

    api.force_authenticate(crm_viewer)
    payload = api.get("/api/v1/reports/circulation/").json()
    metrics = {m["key"]: m for block in payload["blocks"] for m in block["metrics"]}
    assert metrics["walls_down_rate"]["value"] == pytest.approx(4 / 7)
    assert metrics["walls_down_rate"]["previous"] == pytest.approx(2 / 5)
    assert metrics["cross_sent"]["value"] == 3


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(reverse("reports:report", args=["circulation"]))

    assert response.status_code == 302


def test_circulation_figure_is_a_matrix_of_users_by_owners():
    figure = circulation_figure(["A", "B"], ["A"], [[1, 2]])

    assert list(figure.data[0].x) == ["A", "B"]
    assert [list(row) for row in figure.data[0].z] == [[1, 2]]
    with pytest.raises(ValueError, match="one row per user"):
        circulation_figure(["A"], ["A", "B"], [[1]])


def test_the_query_count_does_not_grow_with_segments_and_campaigns(
    world, superuser, django_assert_num_queries
):
    # Registries (6), visible segments and campaigns (2), segments and campaigns (2),
    # deliveries (1), departments (1), shares (1), one owner lookup per shared model (1).
    with django_assert_num_queries(14):
        data_circulation(user=superuser, filters=last_30_days())
    SegmentFactory.create_batch(5, owner_department=world["crm"], rules=and_())
    CampaignFactory.create_batch(5, owner_department=world["crm"], segment=world["c"])
    with django_assert_num_queries(14):
        data_circulation(user=superuser, filters=last_30_days())
