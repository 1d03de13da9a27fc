"""events_ingest: item-by-item validation, idempotent storage, identity resolution."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer, Identity
from experience import pipeline
from experience.ingest import MAX_ITEMS, BatchTooLarge, Rejection, events_ingest
from experience.models import Event, ExperienceValue
from tests.factories import EventTypeFactory, IdentityFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def registry():
    EventTypeFactory(name="page_view", property_schema={"path": "string"})
    EventTypeFactory(
        name="add_to_cart",
        property_schema={"sku": "string", "price": "number", "quantity": "integer"},
    )


def now_iso(minutes: int = 0) -> str:
    return (timezone.now() + dt.timedelta(minutes=minutes)).isoformat()


def item(**overrides):
    base = {
        "type": "page_view",
        "occurred_at": now_iso(-1),
        "identifiers": {"cookie": "c-1"},
        "properties": {"path": "/"},
    }
    base.update(overrides)
    return base


def ingest(items, source="web", department=None):
    return events_ingest(items=items, source=source, department=department)


def rejections(result):
    return {(r.index, r.field) for r in result.rejected}


def test_valid_items_are_stored_with_their_fields(crm):
    touchpoint = TouchpointFactory(code="web-shop", owner_department=crm)
    result = ingest(
        [
            item(
                event_id="e-1",
                touchpoint="web-shop",
                values=["convenience", "deal"],
                identifiers={"email": " Hanako@Example.JP "},
            )
        ],
        department=crm,
    )

    assert (result.accepted, result.duplicates, result.rejected) == (1, 0, [])
    event = Event.objects.get()
    assert event.source == "web"
    assert event.event_id == "e-1"
    assert event.touchpoint == touchpoint
    assert event.properties == {"path": "/"}
    assert ExperienceValue.codes_from_bits(event.value_bits) == ["deal", "convenience"]
    assert event.received_at is not None
    assert result.customer_ids == [event.customer_id]
    assert Identity.objects.get(customer=event.customer).value == "hanako@example.jp"


def test_value_bits_default_to_zero():
    ingest([item()])
    assert Event.objects.get().value_bits == 0


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"type": "page_veiw"}, "type", "unknown event type 'page_veiw'"),
        ({"type": None}, "type", "is required"),
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at", "no time zone"),
        ({"occurred_at": "yesterday"}, "occurred_at", "ISO 8601"),
        ({"occurred_at": None}, "occurred_at", "required"),
        ({"event_id": "x" * 101}, "event_id", "longer than 100"),
        ({"event_id": 12}, "event_id", "string"),
        ({"identifiers": {}}, "identifiers", "at least one"),
        ({"identifiers": {"email": "not-an-email"}}, "identifiers.email", "email"),
        ({"identifiers": {"phone": "12"}}, "identifiers.phone", "phone"),
        ({"identifiers": {"passport": "X1"}}, "identifiers.passport", "unknown identifier kind"),
        ({"touchpoint": "nowhere"}, "touchpoint", "unknown touchpoint"),
        ({"properties": {"path": 3}}, "properties.path", "string"),
        ({"properties": []}, "properties", "object"),
        ({"values": ["joy"]}, "values", "joy"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_each_problem_is_named_by_field(overrides, field, reason):
    result = ingest([item(**overrides)])

    assert result.accepted == 0
    assert [(r.index, r.field) for r in result.rejected] == [(0, field)]
    assert reason in result.rejected[0].reason
    assert not Event.objects.exists()


def test_time_window_is_enforced():
    result = ingest(
        [
            item(occurred_at=now_iso(10)),
            item(occurred_at=(timezone.now() - dt.timedelta(days=4 * 365)).isoformat()),
            item(occurred_at=now_iso(3)),  # small clock skew is fine
            item(occurred_at=timezone.now()),  # an aware datetime is fine (staff, imports)
        ]
    )
    assert rejections(result) == {(0, "occurred_at"), (1, "occurred_at")}
    assert "future" in result.rejected[0].reason
    assert result.accepted == 2


def test_inactive_touchpoint_is_refused(crm):
    TouchpointFactory(code="old-shop", is_active=False, owner_department=crm)
    result = ingest([item(touchpoint="old-shop")])
    assert result.rejected == [Rejection(0, "touchpoint", "touchpoint 'old-shop' is not active")]


def test_property_types_are_checked_against_the_schema():
    result = ingest(
        [
            item(type="add_to_cart", properties={"sku": "A", "price": 10, "quantity": 1}),
            item(type="add_to_cart", properties={"sku": "A", "price": "10"}),
            item(type="add_to_cart", properties={"quantity": 1.5, "price": True}),
            item(type="add_to_cart", properties={"sku": "A", "brand_new_prop": [1]}),
        ]
    )
    assert result.accepted == 2
    assert rejections(result) == {
        (1, "properties.price"),
        (2, "properties.quantity"),
        (2, "properties.price"),
    }
    assert Event.objects.filter(properties__brand_new_prop=[1]).exists()


def test_mixed_batch_stores_the_valid_items_and_keeps_their_order():
    result = ingest(
        [
            item(identifiers={"email": "a@example.jp"}),
            item(type="nope"),
            item(identifiers={"email": "b@example.jp"}),
        ]
    )
    assert result.accepted == 2
    assert rejections(result) == {(1, "type")}
    a = Identity.objects.get(value="a@example.jp").customer_id
    b = Identity.objects.get(value="b@example.jp").customer_id
    assert result.customer_ids == [a, b]


def test_replayed_batch_stores_nothing_twice():
    batch = [item(event_id=f"e-{n}", identifiers={"cookie": f"c-{n}"}) for n in range(5)]
    first = ingest(batch)
    customers = Customer.objects.count()

    second = ingest(batch)

    assert (first.accepted, first.duplicates) == (5, 0)
    assert (second.accepted, second.duplicates) == (0, 5)
    assert Event.objects.count() == 5
    assert Customer.objects.count() == customers


def test_event_id_repeated_inside_a_batch_counts_as_a_duplicate():
    result = ingest([item(event_id="same"), item(event_id="same"), item(), item()])
    assert (result.accepted, result.duplicates) == (3, 1)
    assert Event.objects.count() == 3


def test_event_id_is_unique_per_source_only():
    ingest([item(event_id="e-1")], source="web")
    result = ingest([item(event_id="e-1")], source="app")
    assert result.accepted == 1
    assert sorted(Event.objects.values_list("source", flat=True)) == ["app", "web"]


def test_unknown_people_become_anonymous_profiles_and_merge_when_they_identify():
    known = IdentityFactory(kind=Identity.Kind.EMAIL, value="hanako@example.jp").customer
    ingest([item(identifiers={"cookie": "c-anon"}, event_id="1")])
    anonymous = Identity.objects.get(value="c-anon").customer
    assert anonymous.is_anonymous

    ingest([item(identifiers={"cookie": "c-anon", "email": "hanako@example.jp"}, event_id="2")])

    anonymous.refresh_from_db()
    assert anonymous.merged_into_id == known.pk
    assert Identity.objects.get(value="c-anon").customer_id == known.pk
    assert set(Event.objects.values_list("customer_id", flat=True)) == {known.pk}


def test_too_many_items_are_refused_whole():
    with pytest.raises(BatchTooLarge, match=str(MAX_ITEMS)):
        ingest([item() for _ in range(MAX_ITEMS + 1)])
    assert not Event.objects.exists()


def test_pipeline_hears_of_the_stored_events_by_type(monkeypatch):
    heard = []
    monkeypatch.setattr(pipeline, "events_stored", lambda *, touched: heard.append(touched))

    result = ingest(
        [
            item(identifiers={"email": "a@example.jp"}, event_id="1"),
            item(type="add_to_cart", identifiers={"email": "a@example.jp"}, properties={}),
        ]
    )
    ingest([item(identifiers={"email": "a@example.jp"}, event_id="1")])  # a replay: nothing

    customer = result.customer_ids[0]
    assert heard == [{"page_view": {customer}, "add_to_cart": {customer}}]


def test_queues_one_follow_up_task_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        ingest([item(), item(identifiers={"cookie": "c-2"})])
    assert [func for func, _args in queued] == ["experience.tasks.process_stored_events"]


def test_store_path_query_count_is_fixed(django_assert_max_num_queries):
    IdentityFactory(kind=Identity.Kind.EMAIL, value="known@example.jp")
    batch = [item(identifiers={"email": "known@example.jp"}, event_id=f"k{n}") for n in range(50)]
    batch += [item(identifiers={"cookie": f"new-{n}"}, event_id=f"n{n}") for n in range(50)]
    with django_assert_max_num_queries(16):
        result = ingest(batch)
    assert result.accepted == 100
