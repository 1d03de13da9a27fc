"""Event and order conditions that circle ② registers into segment rule trees."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.segments import SegmentRuleError, segment_queryset, validate_rules
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    OrderFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def members(rules) -> set[int]:
    return set(segment_queryset(rules, now=NOW).values_list("pk", flat=True))


def test_event_at_least_n_times_within_a_window():
    cart = EventTypeFactory(name="add_to_cart")
    view = EventTypeFactory(name="page_view")
    twice_recent = CustomerFactory()
    EventFactory.create_batch(2, customer=twice_recent, event_type=cart, occurred_at=ago(3))
    once_recent = CustomerFactory()
    EventFactory(customer=once_recent, event_type=cart, occurred_at=ago(3))
    EventFactory(customer=once_recent, event_type=cart, occurred_at=ago(40))
    views_only = CustomerFactory()
    EventFactory.create_batch(3, customer=views_only, event_type=view, occurred_at=ago(1))

    assert members({"type": "event", "event": "add_to_cart"}) == {twice_recent.pk, once_recent.pk}
    assert members({"type": "event", "event": "add_to_cart", "min_count": 2, "within_days": 7}) == {
        twice_recent.pk
    }
    assert members({"type": "event", "event": "add_to_cart", "min_count": 2}) == {
        twice_recent.pk,
        once_recent.pk,
    }
    not_twice = {
        "op": "not",
        "child": {"type": "event", "event": "add_to_cart", "min_count": 2, "within_days": 7},
    }
    assert members(not_twice) == {once_recent.pk, views_only.pk}


def test_event_at_a_touchpoint(crm):
    cart = EventTypeFactory(name="add_to_cart")
    app = TouchpointFactory(owner_department=crm, code="app")
    web = TouchpointFactory(owner_department=crm, code="web-shop")
    in_app = CustomerFactory()
    EventFactory(customer=in_app, event_type=cart, touchpoint=app)
    on_web = CustomerFactory()
    EventFactory(customer=on_web, event_type=cart, touchpoint=web)

    assert members({"type": "event", "event": "add_to_cart", "touchpoint": "app"}) == {in_app.pk}


def test_completed_orders_condition(crm):
    app = TouchpointFactory(owner_department=crm, code="app")
    app_buyer = CustomerFactory()
    OrderFactory(customer=app_buyer, touchpoint=app, ordered_at=ago(10))
    returned = CustomerFactory()
    OrderFactory(customer=returned, touchpoint=app, status="returned", ordered_at=ago(10))
    old_buyer = CustomerFactory()
    OrderFactory.create_batch(2, customer=old_buyer, ordered_at=ago(500))

    assert members({"type": "order", "touchpoint": "app", "within_days": 365}) == {app_buyer.pk}
    assert members({"type": "order", "min_count": 2}) == {old_buyer.pk}


def test_unknown_event_type_and_bad_count_are_named():
    EventTypeFactory(name="page_view")

    with pytest.raises(SegmentRuleError, match=r"rules\.event: 'nope' is not one of: page_view"):
        validate_rules({"type": "event", "event": "nope"})
    with pytest.raises(SegmentRuleError, match=r"rules\.min_count: must be at least 1"):
        validate_rules({"type": "event", "event": "page_view", "min_count": 0})
