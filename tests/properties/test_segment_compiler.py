"""Property: a segment rule tree compiled to ONE SQL query selects exactly the customers that
a plain-Python reading of the documented semantics selects, over a random small world.

The Python evaluator below is written from the docstrings of ``customers/segments.py``,
``experience/segment_conditions.py`` and ``reports/segment_conditions.py``; it never calls
the compiler's helpers. The rules it follows, where the documentation leaves room:

- Merged-away profiles (``merged_into`` set) are in no segment, whatever the rules.
- ``not`` is the complement among unmerged customers, and every condition is two-valued:
  a missing attribute, a JSON ``null`` attribute, a missing metrics row or a NULL metric
  makes a condition false (so its ``not`` true). ``ne`` is "not eq": it includes customers
  without the attribute / with a NULL metric. An empty ``and`` is everyone, an empty ``or``
  nobody.
- ``contains`` on a text attribute is a case-insensitive substring test in which ``%`` and
  ``_`` are ordinary characters ("Contains" in the builder, no wildcards promised).
- Date attributes are ISO ``YYYY-MM-DD`` strings compared as dates.
- Day windows (``within_days`` of metrics, life events, events and orders) are rolling:
  N × 24 hours back from the evaluation instant, the edge itself included; the time zone
  does not matter. ``older_than_days`` is strictly before that edge and needs the date set.
- ``age`` counts whole years at the company's local date (``TIME_ZONE``), a birthday on
  29 February being reached on 1 March in other years.
- A numeric comparison compares the exact numbers: ``order_count = 2.5`` matches nobody and
  ``revenue_total > 2.5`` matches 3.
- ``event``/``order`` count rows (completed orders only) in the window at the touchpoint,
  compared with ``min_count`` (default 1). ``prediction`` needs a prediction row.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import transaction
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from customers.models import (
    AttributeDefinition,
    Consent,
    Customer,
    CustomerMetrics,
    Identity,
    ImportantDate,
    LifecycleStage,
    LifeEvent,
    Segment,
    SegmentMembership,
)
from customers.segments import SegmentRuleError, segment_queryset, validate_rules
from experience.models import Event, EventType, Order, Touchpoint
from reports.models import ClvFit, CustomerPrediction

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# 15:30 UTC is already the next day in Tokyo: day windows and ages must not confuse the two.
NOWS = [
    dt.datetime(2028, 2, 28, 15, 30, tzinfo=UTC),  # 29 Feb 2028 00:30 in Tokyo
    dt.datetime(2027, 3, 1, 2, 0, 0, 500_000, tzinfo=UTC),
]
WINDOWS = [1, 7, 30, 90]
CHANNELS = ["email", "sms", "line"]
ID_KINDS = ["email", "phone", "app", "cookie"]
LIFE_KINDS = ["marriage", "moving", "competitor_interest"]
DATE_KINDS = ["birthday", "anniversary"]
EVENT_NAMES = ["prop-view", "prop-visit"]
TOUCHPOINTS = ["prop-web", "prop-store"]
TIERS = ["gold", "silver", "bronze"]
PREFECTURES = ["東京都", "大阪府", ""]

TEXTS = ["", "a", "A", "ab", "Ab%", "a_b", "aXb", "あい", "x y"]
NUMBERS = [0, 1, -1, 2.5, 10, 1_000_000]
DATES = ["2000-02-29", "2027-02-28", "2027-03-01", "2028-02-29"]
ATTRIBUTES = {
    "p_text": AttributeDefinition.Type.TEXT,
    "p_number": AttributeDefinition.Type.NUMBER,
    "p_flag": AttributeDefinition.Type.BOOLEAN,
    "p_date": AttributeDefinition.Type.DATE,
    "p_tier": AttributeDefinition.Type.CHOICE,
}
ATTRIBUTE_VALUES = {
    "p_text": TEXTS,
    "p_number": NUMBERS,
    "p_flag": [True, False],
    "p_date": DATES,
    "p_tier": TIERS,
}
ATTRIBUTE_OPS = {
    "p_text": ["eq", "ne", "contains", "in"],
    "p_number": ["eq", "ne", "gt", "gte", "lt", "lte", "in"],
    "p_flag": ["eq", "ne"],
    "p_date": ["eq", "ne", "gt", "gte", "lt", "lte"],
    "p_tier": ["eq", "ne", "in"],
}
NUMBER_METRICS = {
    "order_count": [0, 1, 2, 3],
    "revenue_total": [Decimal(0), Decimal(1), Decimal(3), Decimal(2500)],
    "average_order_value": [Decimal(0), Decimal(2), Decimal(3)],
    "last_nps": [None, 0, 6, 7, 8, 9, 10],
    "rfm_recency": [None, 1, 3, 5],
    "rfm_frequency": [None, 1, 5],
    "rfm_monetary": [None, 2, 4],
    "lead_score": [-5, -1, 0, 7, 100],
    "event_count": [0, 1, 2],
    "identity_count": [0, 1, 2],
}
DATE_METRICS = ["last_order_at", "first_order_at", "last_event_at"]
METRIC_VALUES = [0, 1, 2, 2.5, -1, -1.5, 7, 9, 2500]
PREDICTION_VALUES = {
    "p_alive": [0.0, 0.3, 0.5, 1.0],
    "expected_purchases": [0.0, 0.5, 2.0],
    "expected_value": [Decimal(0), Decimal(1000), Decimal(5000)],
    "clv": [Decimal(0), Decimal(3), Decimal(9000)],
}
PREDICTION_RULE_VALUES = [0, 0.3, 0.5, 1, 2.5, 1000, 9000]
NPS = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}


# --- the world ------------------------------------------------------------------------------


@dataclass
class Person:
    attributes: dict
    lifecycle_stage: str
    language: str
    prefecture: str
    gender: str
    birth_date: dt.date | None
    merged: bool
    identity_kinds: list[str]
    consents: dict[str, str]
    metrics: dict | None
    events: list[tuple[str, dt.datetime, str | None]]
    orders: list[tuple[str, dt.datetime, str | None]]
    life_events: list[tuple[str, dt.datetime]]
    important_dates: list[str]
    in_static: bool
    prediction: dict | None
    pk: int = 0


@dataclass
class World:
    now: dt.datetime
    people: list[Person] = field(default_factory=list)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def moment(rng: random.Random, now: dt.datetime) -> dt.datetime:
    """A time around a window edge: exactly on it, a second either side, or well inside."""
    days = rng.choice([0, *WINDOWS, 400])
    return now - dt.timedelta(days=days) - dt.timedelta(seconds=rng.choice([-1, 0, 1, 18_000]))


def birth_date(rng: random.Random, today: dt.date) -> dt.date | None:
    """None, a leap-day birthday, or a birthday on (or a day off) an age boundary."""
    pick = rng.randrange(5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([dt.date(2000, 2, 29), dt.date(2008, 3, 1)])
    years = rng.choice([0, 18, 20, 30])
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return day + dt.timedelta(days=rng.choice([-1, 0, 1]))


def person(seed: int, now: dt.datetime, today: dt.date, first: bool) -> Person:
    """One customer's facts from a seed: a few Hypothesis draws per world instead of
    hundreds keeps an example fast; shrinking still removes people and simplifies seeds."""
    rng = random.Random(seed)
    attributes = {}
    for key, values in ATTRIBUTE_VALUES.items():
        state = rng.choice(["missing", "null", "value", "value"])
        if state == "null":
            attributes[key] = None
        elif state == "value":
            attributes[key] = rng.choice(values)
    metrics = None
    if rng.random() < 0.6:
        metrics = {name: rng.choice(values) for name, values in NUMBER_METRICS.items()}
        for name in DATE_METRICS:
            metrics[name] = moment(rng, now) if rng.random() < 0.7 else None
    prediction = None
    if rng.random() < 0.4:
        prediction = {name: rng.choice(v) for name, v in PREDICTION_VALUES.items()}
    return Person(
        attributes=attributes,
        lifecycle_stage=rng.choice(LifecycleStage.values),
        language=rng.choice(["ja", "en"]),
        prefecture=rng.choice(PREFECTURES),
        gender=rng.choice(Customer.Gender.values),
        birth_date=birth_date(rng, today),
        merged=not first and rng.random() < 0.12,
        identity_kinds=rng.sample(ID_KINDS, rng.randint(0, 3)),
        consents={
            channel: rng.choice(Consent.Status.values)
            for channel in rng.sample(CHANNELS, rng.randint(0, 3))
        },
        metrics=metrics,
        events=[
            (rng.choice(EVENT_NAMES), moment(rng, now), rng.choice([None, *TOUCHPOINTS]))
            for _ in range(rng.randint(0, 4))
        ],
        orders=[
            (
                rng.choice(["completed", "completed", "cancelled"]),
                moment(rng, now),
                rng.choice([None, *TOUCHPOINTS]),
            )
            for _ in range(rng.randint(0, 3))
        ],
        life_events=[(rng.choice(LIFE_KINDS), moment(rng, now)) for _ in range(rng.randint(0, 2))],
        important_dates=rng.sample(DATE_KINDS, rng.randint(0, 2)),
        in_static=rng.random() < 0.5,
        prediction=prediction,
    )


@st.composite
def worlds(draw) -> World:
    world = World(now=draw(st.sampled_from(NOWS)))
    seeds = draw(st.lists(st.integers(0, 2**32), min_size=15, max_size=30))
    world.people = [
        person(seed, world.now, world.today, first=i == 0) for i, seed in enumerate(seeds)
    ]
    return world


@dataclass
class Catalogue:
    """The fixed reference data a world and its rules point at."""

    static: Segment
    event_types: dict[str, EventType]
    touchpoints: dict[str, Touchpoint]
    fit: ClvFit


@pytest.fixture
def catalogue(crm) -> Catalogue:
    for key, kind in ATTRIBUTES.items():
        AttributeDefinition.objects.create(
            key=key,
            label=key,
            type=kind,
            choices=TIERS if kind == AttributeDefinition.Type.CHOICE else [],
            owner_department=crm,
        )
    return Catalogue(
        static=Segment.objects.create(
            name="Hand-picked", kind=Segment.Kind.STATIC, owner_department=crm
        ),
        event_types={name: EventType.objects.create(name=name) for name in EVENT_NAMES},
        touchpoints={
            code: Touchpoint.objects.create(
                code=code, name=code, channel="web", kind="online", owner_department=crm
            )
            for code in TOUCHPOINTS
        },
        fit=ClvFit.objects.create(calibration_end=NOWS[0]),
    )


def build(world: World, catalogue: Catalogue) -> None:
    """Store the world with one bulk insert per table; fills in each person's pk."""
    customers = Customer.objects.bulk_create(
        Customer(
            attributes=p.attributes,
            lifecycle_stage=p.lifecycle_stage,
            language=p.language,
            prefecture=p.prefecture,
            gender=p.gender,
            birth_date=p.birth_date,
        )
        for p in world.people
    )
    for person, customer in zip(world.people, customers, strict=True):
        person.pk = customer.pk
    survivor = world.people[0].pk
    merged = [p.pk for p in world.people if p.merged]
    Customer.objects.filter(pk__in=merged).update(merged_into=survivor)
    rows: dict[type, list] = {model: [] for model in (Identity, Consent, CustomerMetrics)}
    events, orders, life, dates, members, predictions = [], [], [], [], [], []
    for index, p in enumerate(world.people):
        rows[Identity] += [
            Identity(customer_id=p.pk, kind=kind, value=f"{kind}-{index}")
            for kind in p.identity_kinds
        ]
        rows[Consent] += [
            Consent(customer_id=p.pk, channel=channel, status=status, updated_at=world.now)
            for channel, status in p.consents.items()
        ]
        if p.metrics is not None:
            rows[CustomerMetrics].append(CustomerMetrics(customer_id=p.pk, **p.metrics))
        events += [
            Event(
                customer_id=p.pk,
                event_type=catalogue.event_types[name],
                touchpoint=catalogue.touchpoints.get(code),
                occurred_at=at,
                source="props",
            )
            for name, at, code in p.events
        ]
        orders += [
            Order(
                customer_id=p.pk,
                number=f"props-{index}-{n}",
                ordered_at=at,
                touchpoint=catalogue.touchpoints.get(code),
                status=status,
                total=1000,
            )
            for n, (status, at, code) in enumerate(p.orders)
        ]
        life += [
            LifeEvent(customer_id=p.pk, kind=kind, detected_at=at, source="props")
            for kind, at in p.life_events
        ]
        dates += [
            ImportantDate(customer_id=p.pk, kind=kind, month=2, day=29)
            for kind in p.important_dates
        ]
        if p.in_static:
            members.append(SegmentMembership(segment=catalogue.static, customer_id=p.pk))
        if p.prediction is not None:
            predictions.append(
                CustomerPrediction(customer_id=p.pk, fit=catalogue.fit, **p.prediction)
            )
    for model, objects in rows.items():
        model.objects.bulk_create(objects)
    Event.objects.bulk_create(events)
    Order.objects.bulk_create(orders)
    LifeEvent.objects.bulk_create(life)
    ImportantDate.objects.bulk_create(dates)
    SegmentMembership.objects.bulk_create(members)
    CustomerPrediction.objects.bulk_create(predictions)


# --- rule trees -----------------------------------------------------------------------------


def maybe(key: str, values) -> st.SearchStrategy[dict]:
    """``{}`` (parameter left out) or ``{key: value}``."""
    return st.one_of(st.just({}), st.sampled_from(values).map(lambda v: {key: v}))


def merged(*parts: dict) -> dict:
    result = {}
    for part in parts:
        result.update(part)
    return result


def attribute_conditions() -> st.SearchStrategy[dict]:
    def for_key(key: str):
        values = [v for v in ATTRIBUTE_VALUES[key] if v != ""]  # "" is refused as "required"
        single = st.sampled_from(values)
        listed = st.lists(single, min_size=1, max_size=3)
        contains = st.sampled_from(["a", "A", "%", "_", "b%", "あ", " ", "X"])

        def value_for(op):
            if op == "in":
                return listed
            if op == "contains":
                return contains
            return single

        return st.sampled_from(ATTRIBUTE_OPS[key]).flatmap(
            lambda op: value_for(op).map(
                lambda value: {"type": "attribute", "key": key, "op": op, "value": value}
            )
        )

    return st.sampled_from(list(ATTRIBUTES)).flatmap(for_key)


def profile_conditions() -> st.SearchStrategy[dict]:
    listed = {
        "lifecycle_stage": LifecycleStage.values,
        "language": ["ja", "en"],
        "prefecture": PREFECTURES,
        "gender": Customer.Gender.values,
    }
    lists = st.sampled_from(list(listed)).flatmap(
        lambda name: st.lists(
            st.sampled_from(listed[name]), min_size=1, max_size=3, unique=True
        ).map(lambda value: {"type": "profile", "field": name, "value": value})
    )
    ages = [0, 17, 18, 20, 29, 30]
    age = st.tuples(maybe("min", ages), maybe("max", ages)).filter(lambda t: t[0] or t[1])
    return st.one_of(lists, age.map(lambda t: merged({"type": "profile", "field": "age"}, *t)))


def metric_conditions() -> st.SearchStrategy[dict]:
    numbers = st.builds(
        lambda name, op, value: {"type": "metric", "field": name, "op": op, "value": value},
        st.sampled_from(list(NUMBER_METRICS)),
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.sampled_from(METRIC_VALUES),
    )
    dates = st.builds(
        lambda name, op, value: {"type": "metric", "field": name, "op": op, "value": value},
        st.sampled_from(DATE_METRICS),
        st.sampled_from(["within_days", "older_than_days"]),
        st.sampled_from([0, *WINDOWS]),
    )
    return st.one_of(numbers, dates)


def conditions(static_id: int) -> st.SearchStrategy[dict]:
    windows = maybe("within_days", WINDOWS)
    return st.one_of(
        attribute_conditions(),
        profile_conditions(),
        st.sampled_from(ID_KINDS).map(lambda kind: {"type": "identity", "kind": kind}),
        st.builds(
            lambda channel, status: merged({"type": "consent", "channel": channel}, status),
            st.sampled_from(CHANNELS),
            maybe("status", Consent.Status.values),
        ),
        metric_conditions(),
        st.sampled_from(list(NPS)).map(lambda c: {"type": "nps", "category": c}),
        st.builds(
            lambda kind, window: merged({"type": "life_event", "kind": kind}, window),
            st.sampled_from(LIFE_KINDS),
            windows,
        ),
        st.sampled_from(DATE_KINDS).map(lambda kind: {"type": "important_date", "kind": kind}),
        maybe("member", [True, False]).map(
            lambda member: merged({"type": "segment", "segment": static_id}, member)
        ),
        st.builds(
            lambda name, *parts: merged({"type": "event", "event": name}, *parts),
            st.sampled_from(EVENT_NAMES),
            maybe("min_count", [1, 2, 3]),
            windows,
            maybe("touchpoint", TOUCHPOINTS),
        ),
        st.builds(
            lambda *parts: merged({"type": "order"}, *parts),
            maybe("min_count", [1, 2]),
            windows,
            maybe("touchpoint", TOUCHPOINTS),
        ),
        st.builds(
            lambda name, op, value: {"type": "prediction", "field": name, "op": op, "value": value},
            st.sampled_from(list(PREDICTION_VALUES)),
            st.sampled_from(["lt", "lte", "gt", "gte"]),
            st.sampled_from(PREDICTION_RULE_VALUES),
        ).filter(lambda c: c["field"] != "p_alive" or c["value"] <= 1),
    )


@functools.cache
def trees(static_id: int, depth: int = 3) -> st.SearchStrategy[dict]:
    """AND/OR/NOT nesting ``depth`` levels deep at most over every condition type."""
    leaf = conditions(static_id)
    if depth == 0:
        return leaf
    inner = trees(static_id, depth - 1)
    return st.one_of(
        leaf,
        st.builds(
            lambda op, children: {"op": op, "children": children},
            st.sampled_from(["and", "or"]),
            st.lists(inner, max_size=3),
        ),
        inner.map(lambda child: {"op": "not", "child": child}),
    )


# --- the plain-Python reading of the rules --------------------------------------------------


def age(birth: dt.date, today: dt.date) -> int:
    years = today.year - birth.year
    birthday = (birth.month, birth.day)
    if birthday == (2, 29) and not _leap(today.year):
        birthday = (3, 1)
    return years - ((today.month, today.day) < birthday)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def within(at: dt.datetime | None, days: int | None, now: dt.datetime) -> bool:
    return at is not None and (days is None or at >= now - dt.timedelta(days=days))


def attribute_holds(p: Person, key: str, op: str, value) -> bool:
    current = p.attributes.get(key)
    present = current is not None
    if op == "ne":
        return not attribute_holds(p, key, "eq", value)
    if not present:
        return False
    if op == "eq":
        return current == value
    if op == "in":
        return current in value
    if op == "contains":
        return value.lower() in current.lower()
    compare = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]
    if ATTRIBUTES[key] == AttributeDefinition.Type.DATE:
        return compare(dt.date.fromisoformat(current), dt.date.fromisoformat(value))
    return compare(current, value)


def metric_holds(p: Person, name: str, op: str, value, now: dt.datetime) -> bool:
    current = p.metrics.get(name) if p.metrics is not None else None
    if op == "ne":
        return not metric_holds(p, name, "eq", value, now)
    if current is None:
        return False
    if op == "within_days":
        return current >= now - dt.timedelta(days=value)
    if op == "older_than_days":
        return current < now - dt.timedelta(days=value)
    return {
        "eq": current == value,
        "gt": current > value,
        "gte": current >= value,
        "lt": current < value,
        "lte": current <= value,
    }[op]


def holds(node: dict, p: Person, world: World) -> bool:
    if "type" not in node:
        if node["op"] == "not":
            return not holds(node["child"], p, world)
        results = [holds(child, p, world) for child in node["children"]]
        return all(results) if node["op"] == "and" else any(results)
    now, kind = world.now, node["type"]
    if kind == "attribute":
        return attribute_holds(p, node["key"], node["op"], node["value"])
    if kind == "profile":
        if node["field"] == "age":
            if p.birth_date is None:
                return False
            years = age(p.birth_date, world.today)
            low, high = node.get("min"), node.get("max")
            return (low is None or years >= low) and (high is None or years <= high)
        return getattr(p, node["field"]) in node["value"]
    if kind == "identity":
        return node["kind"] in p.identity_kinds
    if kind == "consent":
        return p.consents.get(node["channel"]) == node.get("status", "granted")
    if kind == "metric":
        return metric_holds(p, node["field"], node["op"], node["value"], now)
    if kind == "nps":
        low, high = NPS[node["category"]]
        nps = p.metrics.get("last_nps") if p.metrics else None
        return nps is not None and low <= nps <= high
    if kind == "life_event":
        return any(
            k == node["kind"] and within(at, node.get("within_days"), now)
            for k, at in p.life_events
        )
    if kind == "important_date":
        return node["kind"] in p.important_dates
    if kind == "segment":
        return p.in_static == node.get("member", True)
    if kind == "event":
        count = sum(
            1
            for name, at, code in p.events
            if name == node["event"]
            and within(at, node.get("within_days"), now)
            and (node.get("touchpoint") is None or code == node["touchpoint"])
        )
        return count >= node.get("min_count", 1)
    if kind == "order":
        count = sum(
            1
            for status, at, code in p.orders
            if status == "completed"
            and within(at, node.get("within_days"), now)
            and (node.get("touchpoint") is None or code == node["touchpoint"])
        )
        return count >= node.get("min_count", 1)
    if kind == "prediction":
        if p.prediction is None:
            return False
        current, value = p.prediction[node["field"]], node["value"]
        return {
            "lt": current < value,
            "lte": current <= value,
            "gt": current > value,
            "gte": current >= value,
        }[node["op"]]
    raise AssertionError(f"the test does not know condition {kind!r}")


def expected_ids(tree: dict, world: World) -> set[int]:
    return {p.pk for p in world.people if not p.merged and holds(tree, p, world)}


# --- properties -----------------------------------------------------------------------------


@hsettings(max_examples=100)
@given(data=st.data())
def test_compiled_query_selects_what_the_documented_semantics_select(catalogue, data):
    world = data.draw(worlds(), label="world")
    with transaction.atomic():
        build(world, catalogue)
        for _ in range(5):  # several trees per world: building the world is the dear part
            tree = data.draw(trees(catalogue.static.pk), label="rules")
            tree = json.loads(json.dumps(tree))  # what a form or the API would hand over
            actual = set(segment_queryset(tree, now=world.now).values_list("pk", flat=True))
            expected = expected_ids(tree, world)
            differ = [p for p in world.people if p.pk in actual ^ expected]
            assert actual == expected, (tree, world.now, "SQL-only:", actual - expected, differ)
        transaction.set_rollback(True)


# --- malformed trees ------------------------------------------------------------------------


def _paths(node: dict, path: str = "rules"):
    """Every node of a tree with the path validation names it by."""
    yield path, node
    if "type" in node:
        return
    if node["op"] == "not":
        yield from _paths(node["child"], f"{path}.child")
    else:
        for index, child in enumerate(node["children"]):
            yield from _paths(child, f"{path}.children[{index}]")


def _replace(tree: dict, path: str, new) -> dict:
    if path == "rules":
        return new
    tree = copy.deepcopy(tree)
    steps = path.removeprefix("rules.").replace("]", "").replace("[", ".").split(".")
    parent = tree
    for step in steps[:-1]:
        parent = parent[int(step)] if step.isdigit() else parent[step]
    last = steps[-1]
    parent[int(last) if last.isdigit() else last] = new
    return tree


REQUIRED = {
    "attribute": ["key", "op", "value"],
    "profile": ["field"],
    "identity": ["kind"],
    "consent": ["channel"],
    "metric": ["field", "op", "value"],
    "nps": ["category"],
    "life_event": ["kind"],
    "important_date": ["kind"],
    "segment": ["segment"],
    "event": ["event"],
    "order": [],
    "prediction": ["field", "op", "value"],
}


def corruptions(node: dict, path: str) -> list[tuple[object, str]]:
    """Ways to break one node: (the broken node, the path the error must name)."""
    broken: list[tuple[object, str]] = [
        (42, path),
        (["not", "a", "node"], path),
        ({"op": "xor", "children": []}, path),
        ({"op": "not"}, f"{path}.child"),
        ({"op": "and", "children": "everyone"}, f"{path}.children"),
        ({"op": "or", "children": [], "extra": 1}, f"{path}.extra"),
    ]
    if "type" in node:
        broken.append(({**node, "type": "no_such_type"}, f"{path}.type"))
        broken.append(({**node, "bogus": 1}, f"{path}.bogus"))
        for name in REQUIRED[node["type"]]:
            without = {k: v for k, v in node.items() if k != name}
            broken.append((without, f"{path}.{name}"))
            broken.append(({**node, name: ""}, f"{path}.{name}"))
        for name in node:
            if name != "type":
                broken.append(({**node, name: {"nested": ["object"]}}, f"{path}.{name}"))
        if node["type"] == "attribute":
            broken.append(({**node, "key": "undefined_key"}, f"{path}.key"))
            if node["key"] == "p_flag":
                broken.append(({**node, "op": "gt"}, f"{path}.op"))
        if node["type"] == "metric" and node["field"] in DATE_METRICS:
            broken.append(({**node, "op": "eq"}, f"{path}.op"))
            broken.append(({**node, "value": -1}, f"{path}.value"))
        numeric = node["type"] in ("metric", "prediction") or node.get("key") == "p_number"
        if numeric and node.get("op") != "in":  # json.loads reads NaN and Infinity
            broken.append(({**node, "value": float("nan")}, f"{path}.value"))
            broken.append(({**node, "value": float("-inf")}, f"{path}.value"))
        if node["type"] in ("event", "life_event"):
            broken.append(({**node, "within_days": 0}, f"{path}.within_days"))
    return broken


@hsettings(max_examples=100)
@given(data=st.data())
def test_a_malformed_tree_is_refused_naming_the_bad_node(catalogue, data):
    tree = data.draw(trees(catalogue.static.pk, depth=2), label="rules")
    validate_rules(tree)  # the valid tree compiles
    path, node = data.draw(st.sampled_from(list(_paths(tree))), label="node")
    broken, error_path = data.draw(st.sampled_from(corruptions(node, path)), label="broken")
    bad_tree = _replace(tree, path, broken)

    with pytest.raises(SegmentRuleError) as caught:
        segment_queryset(bad_tree)

    assert caught.value.path == error_path, (bad_tree, str(caught.value))
