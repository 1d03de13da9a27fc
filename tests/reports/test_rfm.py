"""The customers report: RFM grid, its cell pages, "save as segment", dormancy and churn."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.models import Role
from customers.metrics import metrics_rebuild
from customers.models import CustomerMetrics, Segment, SegmentMembership
from customers.segments import segment_count, segment_queryset
from experience.models import Order
from reports.charts.rfm import dormancy_figure, rfm_heatmap_figure
from reports.rollups import day_bounds
from tests.factories import (
    CustomerFactory,
    MembershipFactory,
    OrderFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/customers/"


def blocks(response) -> dict:
    assert response.status_code == 200, response.content
    return {block["key"]: block for block in response.json()["blocks"]}


def metric(block: dict, key: str):
    return next(m for m in block["metrics"] if m["key"] == key)


def cell_url(recency: int, frequency: int) -> str:
    return reverse("reports:rfm_cell", args=[recency, frequency])


@pytest.fixture
def shop():
    """40 buyers with 1–7 orders over the last 800 days (some cancelled), and prospects."""
    rng = random.Random(11)
    now = timezone.now()
    buyers = [CustomerFactory() for _ in range(40)]
    for customer in buyers:
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5, 7])):
            OrderFactory(
                customer=customer,
                ordered_at=now - dt.timedelta(days=rng.randrange(1, 800), hours=rng.randrange(24)),
                total=rng.randrange(1, 50) * 1000,
                status=rng.choice([Order.Status.COMPLETED] * 5 + [Order.Status.CANCELLED]),
            )
    prospects = [CustomerFactory() for _ in range(5)]
    metrics_rebuild(now=now)
    return {"buyers": buyers, "prospects": prospects, "now": now}


def grid_from_metrics() -> dict[tuple[int, int], tuple[int, Decimal]]:
    """(recency, frequency) → (customers, revenue), in plain Python over the metrics rows."""
    cells: dict[tuple[int, int], list] = defaultdict(lambda: [0, Decimal(0)])
    for r, f, revenue in CustomerMetrics.objects.values_list(
        "rfm_recency", "rfm_frequency", "revenue_total"
    ):
        if r is not None and f is not None:
            cells[(r, f)][0] += 1
            cells[(r, f)][1] += revenue
    return {key: (n, revenue) for key, (n, revenue) in cells.items()}


def test_rfm_grid_counts_and_revenue_equal_the_metrics_rows(api, crm_viewer, shop):
    api.force_authenticate(crm_viewer)
    rfm = blocks(api.get(URL))["rfm"]

    expected = grid_from_metrics()
    assert len(rfm["rows"]) == 25
    for row in rfm["rows"]:
        n, revenue = expected.get((row["recency"], row["frequency"]), (0, Decimal(0)))
        assert row["customers"] == n
        assert row["revenue"] == int(revenue)
    assert metric(rfm, "customers")["value"] == sum(n for n, _r in expected.values())
    buyers_with_completed = {
        o.customer_id for o in Order.objects.filter(status=Order.Status.COMPLETED)
    }
    assert metric(rfm, "customers")["value"] == len(buyers_with_completed)


def test_the_grid_page_links_each_cell_to_its_customers(client, crm_viewer, shop):
    client.force_login(crm_viewer)
    html = client.get(reverse("reports:report", args=["customers"])).content.decode()

    assert 'data-testid="rfm-grid"' in html
    for r, f in grid_from_metrics():
        assert f'href="{cell_url(r, f)}"' in html
        assert f'data-cell="{r}-{f}"' in html
    assert 'data-block="dormancy"' in html


def test_a_segment_restricts_the_grid_to_its_members(api, crm_viewer, crm, shop):
    segment = SegmentFactory(owner_department=crm)
    members = shop["buyers"][:15]
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, customer=c) for c in members]
    )
    api.force_authenticate(crm_viewer)
    rfm = blocks(api.get(URL, {"segment": segment.pk}))["rfm"]

    scores = Counter(
        CustomerMetrics.objects.filter(customer__in=members, rfm_recency__isnull=False).values_list(
            "rfm_recency", "rfm_frequency"
        )
    )
    assert {
        (row["recency"], row["frequency"]): row["customers"]
        for row in rfm["rows"]
        if row["customers"]
    } == dict(scores)


def _busiest_cell() -> tuple[int, int]:
    return max(grid_from_metrics().items(), key=lambda item: item[1][0])[0]


def test_the_cell_page_masks_names_without_personal_data_access(
    client, crm_viewer, crm_pii_viewer, shop
):
    r, f = _busiest_cell()
    in_cell = [
        m.customer
        for m in CustomerMetrics.objects.filter(rfm_recency=r, rfm_frequency=f).select_related(
            "customer"
        )
    ]
    client.force_login(crm_viewer)
    html = client.get(cell_url(r, f)).content.decode()
    assert "山田" not in html
    for customer in in_cell:
        assert f"Customer #{customer.pk}" in html
        assert reverse("customers:detail", args=[customer.pk]) in html
    assert 'data-testid="rfm-save"' not in html  # viewers cannot save

    client.force_login(crm_pii_viewer)
    html = client.get(cell_url(r, f)).content.decode()
    assert in_cell[0].full_name in html


def test_the_cell_page_paginates(client, crm_viewer, shop, monkeypatch):
    monkeypatch.setattr("reports.views_rfm.PAGE_SIZE", 2)
    r, f = _busiest_cell()
    client.force_login(crm_viewer)
    html = client.get(cell_url(r, f), {"page": 2}).content.decode()
    assert 'class="pagination"' in html


def test_save_as_segment_creates_a_segment_with_exactly_the_cells_customers(
    client, crm_editor, crm, shop
):
    r, f = _busiest_cell()
    client.force_login(crm_editor)
    response = client.post(cell_url(r, f), {"owner_department": crm.pk})

    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("customers:segment_detail", args=[segment.pk])
    assert segment.owner_department == crm
    assert segment.kind == Segment.Kind.DYNAMIC
    in_cell = set(
        CustomerMetrics.objects.filter(rfm_recency=r, rfm_frequency=f).values_list(
            "customer_id", flat=True
        )
    )
    assert segment_count(segment.rules) == len(in_cell) == grid_from_metrics()[(r, f)][0]
    assert set(segment_queryset(segment.rules).values_list("pk", flat=True)) == in_cell


def test_save_as_segment_within_a_segment_keeps_only_its_members(client, crm_editor, crm, shop):
    source = SegmentFactory(owner_department=crm)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=source, customer=c) for c in shop["buyers"][::2]]
    )
    r, f = _busiest_cell()
    client.force_login(crm_editor)
    client.post(f"{cell_url(r, f)}?segment={source.pk}", {"owner_department": crm.pk})

    saved = Segment.objects.exclude(pk=source.pk).get()
    members = {c.pk for c in shop["buyers"][::2]}
    in_cell = set(
        CustomerMetrics.objects.filter(
            rfm_recency=r, rfm_frequency=f, customer_id__in=members
        ).values_list("customer_id", flat=True)
    )
    assert set(segment_queryset(saved.rules).values_list("pk", flat=True)) == in_cell


def test_an_editor_of_several_departments_chooses_the_owner(client, crm_editor, sales, shop):
    MembershipFactory(user=crm_editor, department=sales, role=Role.EDITOR)
    r, f = _busiest_cell()
    client.force_login(crm_editor)
    html = client.get(cell_url(r, f)).content.decode()
    assert 'name="owner_department"' in html
    assert "<select" in html

    assert client.post(cell_url(r, f), {}).status_code == 400
    client.post(cell_url(r, f), {"owner_department": sales.pk})
    assert Segment.objects.get().owner_department == sales


def test_save_as_segment_is_forbidden_to_viewers(client, crm_viewer, crm, shop):
    client.force_login(crm_viewer)
    response = client.post(cell_url(*_busiest_cell()), {"owner_department": crm.pk})
    assert response.status_code == 403
    assert not Segment.objects.exists()


def test_an_editor_cannot_give_the_segment_to_another_department(client, crm_editor, sales, shop):
    client.force_login(crm_editor)
    response = client.post(cell_url(*_busiest_cell()), {"owner_department": sales.pk})
    assert response.status_code == 400
    assert not Segment.objects.exists()


def test_another_departments_segment_does_not_appear(client, api, crm_viewer, sales, shop):
    hidden = SegmentFactory(owner_department=sales, name="Sales-only buyers")
    client.force_login(crm_viewer)
    html = client.get(reverse("reports:report", args=["customers"])).content.decode()
    assert "Sales-only buyers" not in html
    assert client.get(cell_url(1, 1), {"segment": hidden.pk}).status_code == 404
    api.force_authenticate(crm_viewer)
    assert api.get(URL, {"segment": hidden.pk}).status_code == 400


def test_cells_outside_the_scores_do_not_exist(client, crm_viewer):
    client.force_login(crm_viewer)
    assert client.get(cell_url(0, 1)).status_code == 404
    assert client.get(cell_url(3, 6)).status_code == 404


def states_from_orders(as_of: dt.date) -> dict[int, str]:
    """Each buyer's state at the end of ``as_of`` from the raw completed orders."""
    moment = day_bounds(as_of, as_of)[1]
    last: dict[int, dt.datetime] = {}
    first: dict[int, dt.datetime] = {}
    for order in Order.objects.filter(status=Order.Status.COMPLETED):
        if order.ordered_at < moment:
            last[order.customer_id] = max(
                last.get(order.customer_id, order.ordered_at), order.ordered_at
            )
        first[order.customer_id] = min(
            first.get(order.customer_id, order.ordered_at), order.ordered_at
        )
    states = {}
    for customer_id, when in last.items():
        idle = moment - when
        states[customer_id] = (
            "churned"
            if idle > dt.timedelta(days=365)
            else "dormant"
            if idle > dt.timedelta(days=180)
            else "active"
        )
    return states, first


def rates(states: dict[int, str]) -> tuple[float | None, float | None, int]:
    buyers = len(states)
    if not buyers:
        return None, None, 0
    count = Counter(states.values())
    return (
        round(count["dormant"] * 100 / buyers, 1),
        round(count["churned"] * 100 / buyers, 1),
        buyers,
    )


def test_dormant_and_churn_rates_equal_the_raw_orders(api, crm_viewer, shop):
    today = timezone.localdate()
    end = today - dt.timedelta(days=100)
    start = end - dt.timedelta(days=89)
    api.force_authenticate(crm_viewer)
    block = blocks(
        api.get(URL, {"period": "custom", "start": start.isoformat(), "end": end.isoformat()})
    )["dormancy"]

    states, first = states_from_orders(end)
    dormant, churned, buyers = rates(states)
    assert metric(block, "dormant_rate")["value"] == dormant
    assert metric(block, "churn_rate")["value"] == churned
    assert metric(block, "buyers")["value"] == buyers
    previous_states, _first = states_from_orders(start - dt.timedelta(days=1))
    p_dormant, p_churned, p_buyers = rates(previous_states)
    assert metric(block, "dormant_rate")["previous"] == p_dormant
    assert metric(block, "churn_rate")["previous"] == p_churned
    assert metric(block, "buyers")["previous"] == p_buyers

    by_month: dict[str, dict[int, str]] = defaultdict(dict)
    for customer_id, state in states.items():
        month = timezone.localtime(first[customer_id]).date().replace(day=1)
        by_month[month.isoformat()][customer_id] = state
    assert {row["month"] for row in block["rows"]} == set(by_month)
    for row in block["rows"]:
        dormant, churned, buyers = rates(by_month[row["month"]])
        assert (row["dormant_rate"], row["churn_rate"], row["buyers"]) == (
            dormant,
            churned,
            buyers,
        )


def test_dormancy_today_agrees_with_the_lifecycle_stages(api, crm_viewer, shop):
    api.force_authenticate(crm_viewer)
    block = blocks(api.get(URL, {"period": "30"}))["dormancy"]
    states, _first = states_from_orders(timezone.localdate())
    assert metric(block, "dormant_rate")["value"] == rates(states)[0]
    assert metric(block, "churn_rate")["value"] == rates(states)[1]


def test_the_page_renders_for_a_viewer_and_anonymous_is_sent_to_login(client, crm_viewer):
    assert client.get(reverse("reports:report", args=["customers"])).status_code == 302
    assert client.get(cell_url(1, 1)).status_code == 302
    client.force_login(crm_viewer)
    response = client.get(reverse("reports:report", args=["customers"]))
    assert response.status_code == 200
    csv = client.get(reverse("reports:download", args=["customers", "rfm", "csv"]))
    assert csv.status_code == 200


def test_chart_builders():
    figure = rfm_heatmap_figure([[1, 2], [3, 4]], [[10.0, 20.0], [30.0, 40.0]], [1, 2], [5, 4])
    assert figure.data[0].type == "heatmap"
    assert [list(row) for row in figure.data[0].z] == [[1, 2], [3, 4]]
    # z[i][j] is recency y[i] and frequency x[j]: R2 F5 holds 3 customers
    assert list(figure.data[0].y) == ["1", "2"]
    assert list(figure.data[0].x) == ["5", "4"]
    with pytest.raises(ValueError, match="one row per recency"):
        rfm_heatmap_figure([[1, 2]], [[1.0, 2.0]], [1, 2], [1, 2])
    bars = dormancy_figure([dt.date(2024, 1, 1)], [10.0], [20.0])
    assert [trace.type for trace in bars.data] == ["bar", "bar"]
