"""Acquisition cohorts: Cohort and CohortMonth equal plain Python over the raw orders."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections import defaultdict

import pytest

from experience.models import Order
from reports.cohorts import cohorts_refresh
from reports.models import Cohort, CohortMonth
from tests.factories import CustomerFactory, OrderFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
UTC = dt.UTC


def tokyo(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TOKYO)


def expected_cohorts(orders: list[Order]):
    """Cohorts computed the obvious way: group by customer, sort, look at the first two."""
    by_customer = defaultdict(list)
    for order in orders:
        if order.status == Order.Status.COMPLETED and order.customer.merged_into_id is None:
            by_customer[order.customer_id].append(order)
    cohorts = defaultdict(lambda: {"customers": 0, "repeaters": 0, "repeaters_90d": 0, "rev": 0})
    active = defaultdict(set)
    months = defaultdict(lambda: {"orders": 0, "rev": 0})
    for customer_id, mine in by_customer.items():
        mine.sort(key=lambda order: (order.ordered_at, order.pk))
        first = mine[0]
        local = first.ordered_at.astimezone(TOKYO)
        key = (dt.date(local.year, local.month, 1), first.touchpoint_id)
        cohorts[key]["customers"] += 1
        if len(mine) > 1:
            cohorts[key]["repeaters"] += 1
            if mine[1].ordered_at - first.ordered_at <= dt.timedelta(days=90):
                cohorts[key]["repeaters_90d"] += 1
        for order in mine:
            when = order.ordered_at.astimezone(TOKYO)
            offset = (when.year - local.year) * 12 + when.month - local.month
            cohorts[key]["rev"] += int(order.total)
            months[(*key, offset)]["orders"] += 1
            months[(*key, offset)]["rev"] += int(order.total)
            active[(*key, offset)].add(customer_id)
    return (
        {
            key: (v["customers"], v["repeaters"], v["repeaters_90d"], v["rev"])
            for key, v in cohorts.items()
        },
        {key: (len(active[key]), v["orders"], v["rev"]) for key, v in months.items()},
    )


def stored_cohorts():
    return (
        {
            (row.cohort, row.touchpoint_id): (
                row.customers,
                row.repeaters,
                row.repeaters_90d,
                int(row.revenue),
            )
            for row in Cohort.objects.all()
        },
        {
            (row.cohort, row.touchpoint_id, row.offset): (
                row.customers,
                row.orders,
                int(row.revenue),
            )
            for row in CohortMonth.objects.all()
        },
    )


def test_an_order_late_on_the_last_local_day_belongs_to_that_month():
    web, store = TouchpointFactory(), TouchpointFactory()
    january = CustomerFactory()
    # 23:30 on 31 January in Tokyo is 14:30 UTC: still January.
    OrderFactory(
        customer=january, ordered_at=tokyo(2025, 1, 31, 23, 30), touchpoint=web, total=1000
    )
    # 00:30 on 1 March in Tokyo is still February in UTC: March locally, offset 2.
    OrderFactory(customer=january, ordered_at=tokyo(2025, 3, 1, 0, 30), touchpoint=store, total=500)
    february = CustomerFactory()
    OrderFactory(
        customer=february, ordered_at=dt.datetime(2025, 1, 31, 15, 30, tzinfo=UTC), total=700
    )

    written = cohorts_refresh()

    cohorts, months = stored_cohorts()
    assert cohorts == {
        (dt.date(2025, 1, 1), web.pk): (1, 1, 1, 1500),
        (dt.date(2025, 2, 1), None): (1, 0, 0, 700),
    }
    assert months == {
        (dt.date(2025, 1, 1), web.pk, 0): (1, 1, 1000),
        (dt.date(2025, 1, 1), web.pk, 2): (1, 1, 500),
        (dt.date(2025, 2, 1), None, 0): (1, 1, 700),
    }
    assert written == 5


def test_second_orders_count_within_90_days_up_to_the_90th_day():
    tp = TouchpointFactory()
    start = tokyo(2025, 4, 1, 10)
    on_day_90, on_day_91, never = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (on_day_90, on_day_91, never):
        OrderFactory(customer=customer, ordered_at=start, touchpoint=tp)
    OrderFactory(customer=on_day_90, ordered_at=start + dt.timedelta(days=90))
    OrderFactory(customer=on_day_91, ordered_at=start + dt.timedelta(days=91))
    OrderFactory(
        customer=never, ordered_at=start + dt.timedelta(days=5), status=Order.Status.CANCELLED
    )

    cohorts_refresh()

    cohort = Cohort.objects.get()
    assert (cohort.customers, cohort.repeaters, cohort.repeaters_90d) == (3, 2, 1)


def test_cohorts_equal_plain_python_over_raw_orders():
    rng = random.Random(7)
    touchpoints = [TouchpointFactory(), TouchpointFactory(), None]
    customers = [CustomerFactory() for _ in range(25)]
    winner = customers[0]
    loser = CustomerFactory(merged_into=winner)
    customers.append(loser)
    base = tokyo(2024, 11, 1)
    orders = []
    for customer in customers:
        first = base + dt.timedelta(hours=rng.randrange(24 * 300))
        for _ in range(rng.randrange(1, 6)):
            orders.append(
                OrderFactory(
                    customer=customer,
                    ordered_at=first + dt.timedelta(hours=rng.randrange(24 * 200)),
                    touchpoint=rng.choice(touchpoints),
                    total=rng.randrange(500, 20_000),
                    status=rng.choice([Order.Status.COMPLETED] * 4 + [Order.Status.RETURNED]),
                )
            )
    # Two first orders at the same instant: the lower id is the first.
    twin = CustomerFactory()
    same = tokyo(2025, 6, 30, 23, 59)
    orders.append(OrderFactory(customer=twin, ordered_at=same, touchpoint=touchpoints[0]))
    orders.append(OrderFactory(customer=twin, ordered_at=same, touchpoint=touchpoints[1]))
    for order in orders:
        order.refresh_from_db()

    cohorts_refresh()

    assert stored_cohorts() == expected_cohorts(orders)
    assert not Cohort.objects.filter(customers=0).exists()
    assert Cohort.objects.filter(touchpoint=touchpoints[0], cohort=dt.date(2025, 6, 1)).exists()


def test_refreshing_twice_changes_nothing():
    customer = CustomerFactory()
    OrderFactory(customer=customer, ordered_at=tokyo(2025, 5, 3))
    OrderFactory(customer=customer, ordered_at=tokyo(2025, 7, 3))

    first = cohorts_refresh()
    before = stored_cohorts()
    second = cohorts_refresh()

    assert first == second == 3
    assert stored_cohorts() == before


def test_a_refresh_follows_orders_moved_by_a_merge():
    winner, loser = CustomerFactory(), CustomerFactory()
    OrderFactory(customer=winner, ordered_at=tokyo(2025, 3, 10))
    moved = OrderFactory(customer=loser, ordered_at=tokyo(2025, 1, 10))
    cohorts_refresh()
    assert Cohort.objects.count() == 2

    Order.objects.filter(pk=moved.pk).update(customer=winner)
    loser.merged_into = winner
    loser.save()
    cohorts_refresh()

    cohort = Cohort.objects.get()
    assert (cohort.cohort, cohort.customers, cohort.repeaters) == (dt.date(2025, 1, 1), 1, 1)
    assert CohortMonth.objects.get(offset=2).customers == 1
