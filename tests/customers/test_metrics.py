"""CustomerMetrics: aggregates from the outer circles, RFM quintiles, lead score, stage."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.metrics import metrics_rebuild
from customers.models import Customer, CustomerMetrics
from experience.models import Order, Survey
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    IdentityFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
)

pytestmark = pytest.mark.django_db


def _ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def people():
    """Seven customers whose figures are worked out by hand in the tests below."""
    names = "ABCDEFG"
    customers = {name: CustomerFactory(given_name=name) for name in names}
    orders = {
        "B": [(10, 3000)],
        "C": [(40, 1000), (20, 2000), (5, 4000)],
        "D": [(100, 10000), (80, 10000), (60, 10000), (40, 10000), (20, 10000)],
        "E": [(200, 5000)],
        "F": [(500, 2000), (400, 2000)],
        "G": [(90, 1000), (30, 1000)],
    }
    for name, rows in orders.items():
        for days, total in rows:
            OrderFactory(customer=customers[name], ordered_at=_ago(days), total=total)
    OrderFactory(
        customer=customers["B"], ordered_at=_ago(1), total=99999, status=Order.Status.CANCELLED
    )
    return customers


def test_order_figures_rfm_and_lifecycle_stage(people):
    written = metrics_rebuild()

    assert written == 7
    metrics = {m.customer.given_name: m for m in CustomerMetrics.objects.select_related("customer")}
    c = metrics["C"]
    assert (c.order_count, c.revenue_total, c.average_order_value) == (3, 7000, 2333)
    assert c.first_order_at < c.last_order_at
    assert metrics["B"].order_count == 1  # the cancelled order does not count
    rfm = {name: (m.rfm_recency, m.rfm_frequency, m.rfm_monetary) for name, m in metrics.items()}
    assert rfm == {
        "A": (None, None, None),
        "B": (5, 1, 2),
        "C": (5, 5, 5),
        "D": (4, 5, 5),
        "E": (2, 1, 4),
        "F": (1, 3, 3),
        "G": (3, 3, 1),
    }
    stages = dict(Customer.objects.values_list("given_name", "lifecycle_stage"))
    assert stages == {
        "A": "prospect",
        "B": "first_purchase",
        "C": "loyal",  # only 3 orders, but top R, F and M
        "D": "loyal",
        "E": "dormant",
        "F": "churned",
        "G": "repeat",
    }


def test_events_nps_identities_and_lead_score():
    customer = CustomerFactory()
    IdentityFactory.create_batch(2, customer=customer)
    viewed = EventFactory(
        customer=customer, event_type=EventTypeFactory(name="product_view"), occurred_at=_ago(2)
    )
    carted = EventFactory(
        customer=customer, event_type=EventTypeFactory(name="add_to_cart"), occurred_at=_ago(1)
    )
    opened = EventFactory(
        customer=customer, event_type=EventTypeFactory(name="app_open"), occurred_at=_ago(60)
    )
    EventFactory(customer=customer, event_type=EventTypeFactory(name="page_view"))
    nps = SurveyFactory(kind=Survey.Kind.NPS)
    SurveyResponseFactory(survey=nps, customer=customer, score=3, answered_at=_ago(30))
    SurveyResponseFactory(survey=nps, customer=customer, score=9, answered_at=_ago(3))
    csat = SurveyFactory(kind=Survey.Kind.CSAT)
    SurveyResponseFactory(survey=csat, customer=customer, score=2, answered_at=_ago(1))
    quiet = CustomerFactory()

    metrics_rebuild()

    metrics = CustomerMetrics.objects.get(customer=customer)
    assert metrics.identity_count == 2
    assert metrics.event_count == 4
    assert metrics.last_event_by_type == {
        "product_view": _iso(viewed.occurred_at),
        "add_to_cart": _iso(carted.occurred_at),
        "app_open": _iso(opened.occurred_at),
    }
    assert metrics.last_nps == 9
    assert metrics.lead_score == 1 + 3  # a view and a cart in 30 days; the app open is older
    empty = CustomerMetrics.objects.get(customer=quiet)
    assert (empty.event_count, empty.last_event_by_type, empty.last_nps, empty.lead_score) == (
        0,
        {},
        None,
        0,
    )


def test_incremental_rebuild_touches_only_the_given_customers(people):
    metrics_rebuild()
    a, b = people["A"], people["B"]
    OrderFactory(customer=a, ordered_at=_ago(2), total=8000)
    OrderFactory(customer=b, ordered_at=_ago(2), total=8000)

    assert metrics_rebuild(customer_ids=[a.pk]) == 1

    a.refresh_from_db()
    assert a.lifecycle_stage == "first_purchase"
    assert a.metrics.order_count == 1
    assert a.metrics.rfm_recency is not None
    assert CustomerMetrics.objects.get(customer=b).order_count == 1


def test_merged_profiles_get_no_metrics():
    winner = CustomerFactory()
    CustomerFactory(merged_into=winner)

    assert metrics_rebuild() == 1
    assert list(CustomerMetrics.objects.values_list("customer_id", flat=True)) == [winner.pk]


def test_rebuild_runs_in_a_fixed_number_of_queries(people, django_assert_num_queries):
    # min/max id; per chunk of 20k: savepoint, delete merged, event types, scoring rules,
    # upsert, release; buyer count + 12 boundaries; per chunk: savepoint, RFM, stage, release.
    with django_assert_num_queries(25):
        metrics_rebuild()
    CustomerFactory.create_batch(5)
    with django_assert_num_queries(25):
        metrics_rebuild()


def test_command_rebuilds_some_or_all(people, capsys):
    call_command("rebuild_customer_metrics", "--customer", str(people["C"].pk), verbosity=1)

    assert CustomerMetrics.objects.count() == 1
    assert "Computed metrics of 1 customers" in capsys.readouterr().out
    call_command("rebuild_customer_metrics", verbosity=0)
    assert CustomerMetrics.objects.count() == 7
