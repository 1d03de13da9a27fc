"""Property: identity resolution ends in the same people whatever order the data arrives in.

Observations (each 1–3 identifiers of one person, written the way forms and shops write
them) go through the real write path, ``experience.ingest.events_ingest``, which resolves
each batch with ``customers.identity.resolve_customers`` and merges profiles that one
observation proves to be one person. The same observations are applied twice to the same
empty world: once one by one in the drawn order, once in a drawn permutation, in drawn
batches. Each run is rolled back before the next.

The expected partition is computed here, without the project's normaliser: every pool
entry below lists its stored form by hand, and identifiers observed together are one
person (connected components).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import event, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from customers.models import Customer, Identity
from experience.ingest import events_ingest
from experience.models import Event, EventType, Order

pytestmark = pytest.mark.django_db

Key = tuple[str, str]

# (kind, stored form, ways people write it). Email and phone fold case, width and
# separators; app, POS and cookie IDs are case-sensitive, so "APP-7" and "app-7" differ.
POOL: list[tuple[str, str, list[str]]] = [
    (
        "email",
        "hanako@example.jp",
        [
            "hanako@example.jp",
            "Hanako@Example.JP",
            "  HANAKO@example.jp ",
            "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ",
        ],
    ),
    ("email", "taro@example.com", ["taro@example.com", "TARO@EXAMPLE.COM"]),
    ("email", "jiro@example.jp", ["jiro@example.jp", "Jiro@example.JP "]),
    (
        "phone",
        "+819012345678",
        ["090-1234-5678", "+81 90 1234 5678", "09012345678", "０９０ー１２３４ー５６７８"],
    ),
    ("phone", "+81312345678", ["(03) 1234-5678", "03-1234-5678", "+81-3-1234-5678"]),
    ("app", "APP-7", [" APP-7 ", "APP-7"]),
    ("app", "app-7", ["app-7"]),
    ("pos", "0001234", ["0001234", " 0001234"]),
    ("pos", "1234", ["1234"]),
    ("cookie", "ck-A", ["ck-A"]),
    ("cookie", "ck-a", ["ck-a", " ck-a "]),
    ("cookie", "ck-b", ["ck-b"]),
]
KINDS = sorted({kind for kind, _stored, _raw in POOL})


@st.composite
def observations(draw, universe: list[int]) -> dict[str, tuple[str, str]]:
    """One person's identifiers: kind → (stored form, raw form as sent)."""
    entries = draw(
        st.lists(st.sampled_from(universe), min_size=1, max_size=3, unique_by=lambda i: POOL[i][0])
    )
    seen = {}
    for index in entries:
        kind, stored, variants = POOL[index]
        seen[kind] = (stored, draw(st.sampled_from(variants)))
    return seen


@st.composite
def batch_sizes(draw, total: int) -> list[int]:
    sizes, left = [], total
    while left:
        size = draw(st.integers(1, left))
        sizes.append(size)
        left -= size
    return sizes


def expected_people(observed: list[dict]) -> set[frozenset[Key]]:
    """Connected components of identifiers seen together: one set per person."""
    parent: dict[Key, Key] = {}

    def find(key: Key) -> Key:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for observation in observed:
        keys = [(kind, stored) for kind, (stored, _raw) in observation.items()]
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
        find(keys[0])
    groups: dict[Key, set[Key]] = {}
    for key in parent:
        groups.setdefault(find(key), set()).add(key)
    return {frozenset(group) for group in groups.values()}


def apply(observed: list[dict], order: list[int], sizes: list[int]) -> None:
    """Send the observations in this order and batching through the ingestion service; after
    each batch the shop books an order on each profile it resolved to."""
    occurred = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    start = 0
    for size in sizes:
        indexes = order[start : start + size]
        start += size
        items = [
            {
                "type": "prop-seen",
                "occurred_at": occurred,
                "event_id": f"obs-{index}",
                "identifiers": {kind: raw for kind, (_s, raw) in observed[index].items()},
            }
            for index in indexes
        ]
        result = events_ingest(items=items, source="props", department=None)
        assert result.rejected == []
        assert result.accepted == len(items)
        Order.objects.bulk_create(
            Order(
                customer_id=customer_id,
                number=f"obs-{index}",
                ordered_at=timezone.now(),
                total=1000,
            )
            for index, customer_id in zip(indexes, result.customer_ids, strict=True)
        )


def people_now(observed: list[dict]) -> set[frozenset[Key]]:
    """Check the invariants of the stored state; return the partition it holds."""
    owners: dict[Key, int] = {}
    for kind, value, customer_id in Identity.objects.values_list("kind", "value", "customer_id"):
        assert (kind, value) not in owners  # the unique constraint, as a sanity check
        owners[(kind, value)] = customer_id
    observed_keys = {(kind, stored) for o in observed for kind, (stored, _raw) in o.items()}
    # No duplicate profile or identifier for a case/format variant: exactly the stored forms.
    assert set(owners) == observed_keys

    customers = {
        pk: (merged_into, anonymous)
        for pk, merged_into, anonymous in Customer.objects.values_list(
            "pk", "merged_into_id", "is_anonymous"
        )
    }
    live = {pk for pk, (merged_into, _a) in customers.items() if merged_into is None}
    # Every identifier belongs to exactly one live customer, and every live one holds some.
    assert set(owners.values()) == live
    # Following ``merged_into`` from a merged-away profile ends at a live one, without a
    # cycle. Chains are by design (customer_merge_winner and person_profiles follow them,
    # and undo goes back one merge at a time), so one hop is not required.
    for pk in customers:
        seen = [pk]
        while customers[seen[-1]][0] is not None:
            seen.append(customers[seen[-1]][0])
            assert len(seen) == len(set(seen)), ("cycle", seen)
        assert seen[-1] in live

    partition: dict[int, set[Key]] = {}
    for key, customer_id in owners.items():
        partition.setdefault(customer_id, set()).add(key)
    # Anonymous means known by cookies only.
    for customer_id, keys in partition.items():
        cookies_only = all(kind == "cookie" for kind, _value in keys)
        assert customers[customer_id][1] == cookies_only, (customer_id, keys)

    # Events and orders of merged-away profiles moved with them: each is on the live
    # profile that holds the identifiers it was sent with.
    holders = {
        f"obs-{index}": {owners[(kind, stored)] for kind, (stored, _raw) in o.items()}
        for index, o in enumerate(observed)
    }
    for label, rows in (
        ("event", Event.objects.values_list("event_id", "customer_id")),
        ("order", Order.objects.values_list("number", "customer_id")),
    ):
        rows = list(rows)
        assert len(rows) == len(observed), label
        for tag, customer_id in rows:
            assert holders[tag] == {customer_id}, (label, tag, customer_id, holders[tag])
    return {frozenset(keys) for keys in partition.values()}


@st.composite
def cases(draw) -> tuple[list[dict], list[int], list[int]]:
    """Observations, a permutation of them and a split of that permutation into batches."""
    # A few identifiers per example, so that observations overlap and profiles merge.
    universe = draw(
        st.lists(st.sampled_from(range(len(POOL))), min_size=3, max_size=8, unique=True)
    )
    # Each identifier first seen alone, then observations that may link them: applied in
    # this order, every link between two people already known is a merge.
    alone = [{POOL[i][0]: (POOL[i][1], draw(st.sampled_from(POOL[i][2])))} for i in universe]
    observed = alone + draw(st.lists(observations(universe), min_size=1, max_size=6))
    permutation = draw(st.permutations(range(len(observed))))
    return observed, permutation, draw(batch_sizes(len(observed)))


def _seen(**identifiers: str) -> dict[str, tuple[str, str]]:
    stored = {raw: stored for kind, stored, variants in POOL for raw in variants}
    return {kind: (stored[raw], raw) for kind, raw in identifiers.items()}


# A winner that later loses a merge itself: 3 (app) merges into 2 (phone), then 2 into
# 1 (email), a chain. Five observations in one exact order, which random search seldom finds.
CHAIN = (
    [
        _seen(email="hanako@example.jp"),
        _seen(phone="090-1234-5678"),
        _seen(app="APP-7"),
        _seen(phone="+81 90 1234 5678", app=" APP-7 "),
        _seen(email="Hanako@Example.JP", phone="09012345678"),
    ],
    [4, 3, 2, 1, 0],
    [1, 1, 1, 1, 1],
)


@hsettings(max_examples=60)
@given(case=cases())
@example(case=CHAIN)
def test_resolution_is_the_same_whatever_the_order(case):
    observed, permutation, sizes = case
    expected = expected_people(observed)
    with transaction.atomic():
        EventType.objects.get_or_create(name="prop-seen")
        results = []
        for order, batches in (
            (list(range(len(observed))), [1] * len(observed)),
            (permutation, sizes),
        ):
            with transaction.atomic():
                apply(observed, order, batches)
                results.append(people_now(observed))
                merges = Customer.objects.filter(merged_into__isnull=False).count()
                how = "one by one" if batches == [1] * len(order) else "batched"
                event(f"merges {how}: {min(merges, 2)}")
                transaction.set_rollback(True)
        assert results[0] == results[1] == expected
        transaction.set_rollback(True)
