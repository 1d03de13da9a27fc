"""The cheaper SQL of segment counts and syncs (issue 8, B2/B3) answers exactly as before.

Attribute equality and ``in`` evaluate the JSON once per row (SQLite) yet stay two-valued
for missing keys and JSON null; the membership sync binds the changed ids as one parameter
per statement, however many there are.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import AttributeDefinition, Segment, SegmentMembership
from customers.segments import segment_membership_sync, segment_queryset, segment_refresh
from tests.factories import ConsentFactory, CustomerFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _ids(rules: dict) -> set[int]:
    return set(segment_queryset(rules).values_list("pk", flat=True))


def _attribute(op: str, value, key: str = "rank") -> dict:
    return {"type": "attribute", "key": key, "op": op, "value": value}


def test_attribute_in_eq_ne_with_missing_keys_json_null_and_numbers(crm):
    AttributeDefinition.objects.create(
        owner_department=crm, key="rank", label="Rank", type=AttributeDefinition.Type.TEXT
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="visits", label="Visits", type=AttributeDefinition.Type.NUMBER
    )
    gold = CustomerFactory(attributes={"rank": "gold", "visits": 3})
    silver = CustomerFactory(attributes={"rank": "silver", "visits": 3.0})
    null = CustomerFactory(attributes={"rank": None, "visits": None})
    bare = CustomerFactory(attributes={})
    text_three = CustomerFactory(attributes={"rank": "3", "visits": "3"})
    everyone = {gold.pk, silver.pk, null.pk, bare.pk, text_three.pk}

    assert _ids(_attribute("in", ["gold", "silver"])) == {gold.pk, silver.pk}
    assert _ids(_attribute("eq", "gold")) == {gold.pk}
    # "ne" is "not eq": JSON null and a missing key are not gold, so they are included.
    assert _ids(_attribute("ne", "gold")) == everyone - {gold.pk}
    assert _ids({"op": "not", "child": _attribute("in", ["gold", "silver"])}) == (
        everyone - {gold.pk, silver.pk}
    )
    # Numbers compare as numbers (3 equals 3.0), never with the text "3".
    assert _ids(_attribute("eq", 3, key="visits")) == {gold.pk, silver.pk}
    assert _ids(_attribute("in", [3, 4], key="visits")) == {gold.pk, silver.pk}
    assert _ids(_attribute("eq", "3", key="rank")) == {text_three.pk}


def test_sync_binds_the_changed_ids_as_one_parameter(crm):
    segment = SegmentFactory(
        owner_department=crm,
        kind=Segment.Kind.DYNAMIC,
        rules={"type": "consent", "channel": "email", "status": "granted"},
    )
    customers = CustomerFactory.create_batch(30)
    for customer in customers[:10]:
        ConsentFactory(customer=customer, channel="email", status="granted")
    segment_refresh(segment=segment)
    for customer in customers[10:20]:
        ConsentFactory(customer=customer, channel="email", status="granted")
    # Many more ids than SQLite's default parameter limit once, unknown ids included.
    ids = [c.pk for c in customers] + list(range(10**8, 10**8 + 40_000))

    with CaptureQueriesContext(connection) as captured:
        outcome = segment_membership_sync(customer_ids=ids)

    assert outcome[segment.pk] == (10, 0)
    members = set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )
    assert members == {c.pk for c in customers[:20]}
    segment.refresh_from_db()
    assert segment.member_count == 20
    id_set = "json_each(" if connection.vendor == "sqlite" else "unnest("
    writes = [q["sql"] for q in captured if q["sql"].startswith(("INSERT", "DELETE"))]
    assert writes
    assert all(id_set in sql for sql in writes)
