"""Circle ②'s timeline sources: events, orders and survey answers of one customer."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from customers.timeline import TimelineFilters, timeline_page
from experience.models import Event
from experience.timeline import events_fetch, orders_fetch, surveys_fetch
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """Entries are worded in the active language; another test may have left Japanese on."""
    with translation.override("en"):
        yield


T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
EXPERIENCE = frozenset({"events", "orders", "surveys"})


def test_events_orders_and_answers_merge_newest_first(crm_viewer):
    customer = CustomerFactory()
    event = EventFactory(customer=customer, occurred_at=T0)
    order = OrderFactory(customer=customer, ordered_at=T0 + dt.timedelta(hours=1), total=12800)
    answer = SurveyResponseFactory(
        customer=customer, answered_at=T0 + dt.timedelta(hours=2), score=3, comment="遅かった"
    )
    EventFactory(occurred_at=T0 + dt.timedelta(hours=3))  # someone else

    entries, next_cursor = timeline_page(
        customer.pk, filters=TimelineFilters(viewer=crm_viewer, sources=EXPERIENCE)
    )

    assert [(entry.source, entry.id) for entry in entries] == [
        ("surveys", answer.pk),
        ("orders", order.pk),
        ("events", event.pk),
    ]
    assert entries[0].title == "NPS answer: 3 / 10"
    assert "遅かった" in entries[0].detail
    assert entries[1].title == f"Order {order.number}: ¥12,800"
    assert next_cursor is None


def test_keyset_pages_have_no_gaps_or_repeats_with_tied_timestamps(crm_viewer):
    customer = CustomerFactory()
    event_type = EventTypeFactory()
    Event.objects.bulk_create(
        Event(customer=customer, event_type=event_type, source="t", occurred_at=T0)
        for _ in range(7)
    )
    for index in range(5):
        OrderFactory(customer=customer, ordered_at=T0 - dt.timedelta(minutes=index % 2))
    filters = TimelineFilters(viewer=crm_viewer, sources=EXPERIENCE)

    seen, before = [], None
    while True:
        entries, before = timeline_page(customer.pk, before=before, limit=3, filters=filters)
        seen.extend((entry.source, entry.id) for entry in entries)
        if before is None:
            break

    assert len(seen) == len(set(seen)) == 12


def test_channel_and_department_filters_follow_the_touchpoint(crm, sales, crm_viewer):
    customer = CustomerFactory()
    store = TouchpointFactory(owner_department=sales, channel="store", kind="offline")
    web = TouchpointFactory(owner_department=crm, channel="web")
    in_store = EventFactory(customer=customer, touchpoint=store, occurred_at=T0)
    EventFactory(customer=customer, touchpoint=web, occurred_at=T0)

    by_channel = events_fetch(
        customer.pk,
        before=None,
        limit=10,
        filters=TimelineFilters(viewer=crm_viewer, channel="store"),
    )
    by_department = events_fetch(
        customer.pk,
        before=None,
        limit=10,
        filters=TimelineFilters(viewer=crm_viewer, department_id=sales.pk),
    )

    assert [entry.id for entry in by_channel] == [in_store.pk]
    assert [entry.id for entry in by_department] == [in_store.pk]
    assert by_channel[0].department == "Sales planning"
    assert by_channel[0].channel_label == "Store"


def test_names_of_other_departments_touchpoints_and_surveys_stay_hidden(crm, sales, crm_viewer):
    customer = CustomerFactory()
    theirs = TouchpointFactory(owner_department=sales, name="Ginza store (sales)")
    ours = TouchpointFactory(owner_department=crm, name="Web shop")
    OrderFactory(customer=customer, touchpoint=theirs, ordered_at=T0)
    OrderFactory(customer=customer, touchpoint=ours, ordered_at=T0 - dt.timedelta(days=1))
    SurveyResponseFactory(
        customer=customer, survey=SurveyFactory(owner_department=sales, name="Sales-only survey")
    )
    filters = TimelineFilters(viewer=crm_viewer)

    orders = orders_fetch(customer.pk, before=None, limit=10, filters=filters)
    answers = surveys_fetch(customer.pk, before=None, limit=10, filters=filters)

    assert "Ginza store" not in orders[0].detail
    assert "Web shop" in orders[1].detail
    assert "Sales-only survey" not in answers[0].detail
    assert answers[0].department == "Sales planning"


def test_a_source_reads_only_the_page_it_is_asked_for(crm_viewer, django_assert_num_queries):
    customer = CustomerFactory()
    event_type = EventTypeFactory()
    Event.objects.bulk_create(
        Event(customer=customer, event_type=event_type, source="t", occurred_at=T0)
        for _ in range(30)
    )
    filters = TimelineFilters(viewer=crm_viewer)
    crm_viewer.department_ids  # noqa: B018 - memberships are loaded once per request

    with django_assert_num_queries(1):
        entries = events_fetch(customer.pk, before=None, limit=5, filters=filters)

    assert len(entries) == 5
