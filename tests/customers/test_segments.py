"""Segment rule trees: validation, compilation to one query, refresh, services."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from config.org.models import AuditLog
from config.org.services import share_grant
from customers.models import (
    AttributeDefinition,
    Consent,
    Customer,
    CustomerMetrics,
    Identity,
    ImportantDate,
    LifeEvent,
    Segment,
    SegmentMembership,
)
from customers.segments import (
    SegmentInUse,
    SegmentRuleError,
    describe_rules,
    path_label,
    segment_contains,
    segment_count,
    segment_create,
    segment_delete,
    segment_queryset,
    segment_refresh,
    segment_refresh_task,
    segment_share,
    segment_update,
    validate_rules,
)
from tests.factories import (
    CampaignFactory,
    ConsentFactory,
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    IdentityFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def metrics(customer: Customer, **fields) -> CustomerMetrics:
    return CustomerMetrics.objects.create(customer=customer, **fields)


def life_event(customer: Customer, kind: str, days_ago: int = 1) -> LifeEvent:
    return LifeEvent.objects.create(
        customer=customer, kind=kind, detected_at=NOW - dt.timedelta(days=days_ago), source="test"
    )


def ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def cond(type_name: str, **params) -> dict:
    return {"type": type_name, **params}


def all_of(*children) -> dict:
    return {"op": "and", "children": list(children)}


def any_of(*children) -> dict:
    return {"op": "or", "children": list(children)}


def negate(child) -> dict:
    return {"op": "not", "child": child}


# --- conditions ------------------------------------------------------------------------------


@pytest.fixture
def rank(crm):
    return AttributeDefinition.objects.create(
        owner_department=crm,
        key="member_rank",
        label="Rank",
        type=AttributeDefinition.Type.CHOICE,
        choices=["regular", "silver", "gold"],
    )


def test_attribute_choice_eq_ne_in(rank):
    gold = CustomerFactory(attributes={"member_rank": "gold"})
    silver = CustomerFactory(attributes={"member_rank": "silver"})
    bare = CustomerFactory(attributes={})

    assert ids(segment_queryset(cond("attribute", key="member_rank", op="eq", value="gold"))) == {
        gold.pk
    }
    # ne is "not eq", so customers without the attribute are included.
    assert ids(segment_queryset(cond("attribute", key="member_rank", op="ne", value="gold"))) == {
        silver.pk,
        bare.pk,
    }
    in_rule = cond("attribute", key="member_rank", op="in", value=["gold", "silver"])
    assert ids(segment_queryset(in_rule)) == {gold.pk, silver.pk}
    assert ids(segment_queryset(negate(in_rule))) == {bare.pk}


def test_attribute_number_text_boolean_and_date(crm):
    for key, kind in [
        ("visits", AttributeDefinition.Type.NUMBER),
        ("nickname", AttributeDefinition.Type.TEXT),
        ("corporate", AttributeDefinition.Type.BOOLEAN),
        ("joined", AttributeDefinition.Type.DATE),
    ]:
        AttributeDefinition.objects.create(owner_department=crm, key=key, label=key, type=kind)
    many = CustomerFactory(
        attributes={
            "visits": 12,
            "nickname": "Hana-chan",
            "corporate": True,
            "joined": "2020-05-01",
        }
    )
    few = CustomerFactory(
        attributes={"visits": 3, "nickname": "Taro", "corporate": False, "joined": "2024-01-31"}
    )
    CustomerFactory(attributes={})

    def members(**params):
        return ids(segment_queryset(cond("attribute", **params)))

    assert members(key="visits", op="gt", value=5) == {many.pk}
    assert members(key="visits", op="lte", value=3) == {few.pk}
    assert members(key="nickname", op="contains", value="hana") == {many.pk}
    assert members(key="corporate", op="eq", value=True) == {many.pk}
    assert members(key="corporate", op="eq", value=False) == {few.pk}
    assert members(key="joined", op="gte", value="2023-01-01") == {few.pk}


def test_profile_stage_language_and_age():
    today = timezone.localdate()
    thirty = CustomerFactory(
        lifecycle_stage="repeat", language="ja", birth_date=today.replace(year=today.year - 30)
    )
    fifty = CustomerFactory(
        lifecycle_stage="loyal", language="en", birth_date=today.replace(year=today.year - 50)
    )
    unknown_age = CustomerFactory(lifecycle_stage="prospect")

    stage = cond("profile", field="lifecycle_stage", value=["repeat", "loyal"])
    assert ids(segment_queryset(stage)) == {thirty.pk, fifty.pk}
    assert ids(segment_queryset(cond("profile", field="language", value=["en"]))) == {fifty.pk}
    assert ids(segment_queryset(cond("profile", field="age", min=30, max=39))) == {thirty.pk}
    assert ids(segment_queryset(cond("profile", field="age", min=40))) == {fifty.pk}
    assert ids(segment_queryset(negate(cond("profile", field="age", max=39)))) == {
        fifty.pk,
        unknown_age.pk,
    }


def test_identity_and_consent():
    with_email = IdentityFactory(kind=Identity.Kind.EMAIL).customer
    with_line = IdentityFactory(kind=Identity.Kind.LINE, value="U123").customer
    granted = ConsentFactory(customer=with_email, channel="email").customer
    withdrawn = ConsentFactory(
        customer=with_line, channel="email", status=Consent.Status.WITHDRAWN
    ).customer

    assert ids(segment_queryset(cond("identity", kind="line"))) == {with_line.pk}
    assert ids(segment_queryset(cond("consent", channel="email"))) == {granted.pk}
    assert ids(segment_queryset(cond("consent", channel="email", status="withdrawn"))) == {
        withdrawn.pk
    }


def test_metric_numbers_and_dates():
    recent = CustomerFactory()
    metrics(recent, order_count=3, revenue_total=30000, last_order_at=NOW - dt.timedelta(days=5))
    old = CustomerFactory()
    metrics(old, order_count=1, revenue_total=2000, last_order_at=NOW - dt.timedelta(days=200))
    never = CustomerFactory()  # no metrics row at all

    def members(field, op, value):
        return ids(segment_queryset(cond("metric", field=field, op=op, value=value)))

    assert members("order_count", "gte", 2) == {recent.pk}
    assert members("revenue_total", "lt", 10000) == {old.pk}
    assert members("order_count", "ne", 3) == {old.pk, never.pk}
    assert members("last_order_at", "within_days", 30) == {recent.pk}
    assert members("last_order_at", "older_than_days", 90) == {old.pk}
    within = cond("metric", field="last_order_at", op="within_days", value=30)
    assert ids(segment_queryset(negate(within))) == {old.pk, never.pk}


def test_nps_categories_and_not_includes_customers_without_an_answer():
    by_score = {}
    for score in (10, 8, 3):
        customer = CustomerFactory()
        metrics(customer, last_nps=score)
        by_score[score] = customer.pk
    no_answer = CustomerFactory()
    metrics(no_answer, last_nps=None)
    no_metrics = CustomerFactory()

    assert ids(segment_queryset(cond("nps", category="promoter"))) == {by_score[10]}
    assert ids(segment_queryset(cond("nps", category="passive"))) == {by_score[8]}
    assert ids(segment_queryset(cond("nps", category="detractor"))) == {by_score[3]}
    # Documented choice: NOT is the complement, so unknown NPS is "not ≥ 7".
    at_least_7 = cond("metric", field="last_nps", op="gte", value=7)
    assert ids(segment_queryset(negate(at_least_7))) == {by_score[3], no_answer.pk, no_metrics.pk}


def test_life_event_with_and_without_window_and_important_date():
    fresh = CustomerFactory()
    life_event(fresh, "competitor_interest", days_ago=3)
    stale = CustomerFactory()
    life_event(stale, "competitor_interest", days_ago=100)
    married = CustomerFactory()
    life_event(married, "marriage")
    ImportantDate.objects.create(customer=married, kind="anniversary", month=6, day=1)

    assert ids(segment_queryset(cond("life_event", kind="competitor_interest"))) == {
        fresh.pk,
        stale.pk,
    }
    windowed = cond("life_event", kind="competitor_interest", within_days=30)
    assert ids(segment_queryset(windowed)) == {fresh.pk}
    assert ids(segment_queryset(cond("important_date", kind="anniversary"))) == {married.pk}


def test_segment_membership_condition(crm):
    inner = SegmentFactory(owner_department=crm)
    member, outsider = CustomerFactory(), CustomerFactory()
    SegmentMembership.objects.create(segment=inner, customer=member)

    assert ids(segment_queryset(cond("segment", segment=inner.pk))) == {member.pk}
    assert ids(segment_queryset(cond("segment", segment=inner.pk, member=False))) == {outsider.pk}


def test_and_or_not_combine_as_sets():
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    ConsentFactory(customer=a, channel="email")
    ConsentFactory(customer=b, channel="email")
    ConsentFactory(customer=b, channel="sms")
    ConsentFactory(customer=c, channel="sms")
    email, sms = cond("consent", channel="email"), cond("consent", channel="sms")

    assert ids(segment_queryset(all_of(email, sms))) == {b.pk}
    assert ids(segment_queryset(any_of(email, sms))) == {a.pk, b.pk, c.pk}
    assert ids(segment_queryset(all_of(email, negate(sms)))) == {a.pk}
    assert ids(segment_queryset(negate(any_of(email, sms)))) == set()
    assert ids(segment_queryset(all_of())) == {a.pk, b.pk, c.pk}
    assert ids(segment_queryset(any_of())) == set()


def test_merged_profiles_are_never_members():
    winner = CustomerFactory()
    CustomerFactory(merged_into=winner)

    assert ids(segment_queryset({})) == {winner.pk}


def test_compiled_segment_is_one_query(django_assert_num_queries, rank):
    EventTypeFactory(name="page_view")
    queryset = segment_queryset(
        all_of(
            cond("attribute", key="member_rank", op="eq", value="gold"),
            cond("metric", field="order_count", op="gte", value=2),
            negate(cond("consent", channel="email")),
            cond("life_event", kind="marriage", within_days=365),
            cond("event", event="page_view", min_count=2, within_days=30),
        )
    )

    with django_assert_num_queries(1):
        list(queryset)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "path", "words"),
    [
        (cond("colour", value=1), "rules.type", "unknown condition type"),
        (all_of(cond("consent")), "rules.children[0].channel", "is required"),
        (
            all_of(
                cond("consent", channel="email"),
                cond("metric", field="order_count", op="gte", value="2"),
            ),
            "rules.children[1].value",
            "expected a number",
        ),
        (
            any_of(all_of(cond("nps", category="fan"))),
            "rules.children[0].children[0].category",
            "'fan' is not one of",
        ),
        (cond("consent", channel="email", colour="red"), "rules.colour", "unknown parameter"),
        ({"op": "not", "children": []}, "rules.child", "exactly one child"),
        ({"op": "xor", "children": []}, "rules", 'expected "op"'),
        (all_of("consent"), "rules.children[0]", "expected an object"),
        (
            cond("metric", field="last_order_at", op="gte", value=3),
            "rules.op",
            "does not apply to last_order_at",
        ),
        (
            negate(cond("attribute", key="nope", op="eq", value="x")),
            "rules.child.key",
            "'nope' is not one of: (none defined)",
        ),
        (cond("event", event="never_heard_of"), "rules.event", "is not one of"),
        (cond("segment", segment=999999), "rules.segment", "is not one of"),
        ("{not json", "rules", "not valid JSON"),
    ],
)
def test_validation_errors_name_the_path(rules, path, words):
    with pytest.raises(SegmentRuleError) as excinfo:
        validate_rules(rules)

    assert excinfo.value.path == path
    assert words in excinfo.value.message
    assert str(excinfo.value).startswith(f"{path}: ")


def test_attribute_op_and_value_follow_its_type(rank):
    with pytest.raises(SegmentRuleError, match=r"rules.op: 'gt' does not apply to a choice"):
        validate_rules(cond("attribute", key="member_rank", op="gt", value="gold"))
    with pytest.raises(SegmentRuleError, match=r"rules.value\[1\]: 'bronze' is not one of"):
        validate_rules(cond("attribute", key="member_rank", op="in", value=["gold", "bronze"]))


def test_segment_choices_are_limited_to_segments_the_user_sees(sales, crm_editor):
    hidden = SegmentFactory(owner_department=sales)

    with pytest.raises(SegmentRuleError, match=r"rules\.segment"):
        validate_rules(cond("segment", segment=hidden.pk), user=crm_editor)


def test_legacy_seed_shape_is_normalised():
    legacy = {
        "op": "and",
        "rules": [
            cond("consent", channel="email"),
            {"op": "not", "rules": [cond("metric", field="order_count", op="gte", value=1)]},
        ],
    }

    assert validate_rules(legacy) == all_of(
        cond("consent", channel="email"),
        negate(cond("metric", field="order_count", op="gte", value=1)),
    )


def test_path_label_speaks_the_builders_words():
    assert path_label("rules.children[1].children[0].within_days") == "condition 2.1 (within_days)"
    assert path_label("rules.children[2]") == "condition 3"
    assert path_label("rules") == "the rules"


def test_describe_rules_in_plain_language():
    text = describe_rules(
        all_of(
            cond("metric", field="order_count", op="gte", value=2),
            negate(cond("consent", channel="email")),
            any_of(cond("nps", category="promoter"), cond("identity", kind="line")),
        )
    )

    assert text == (
        "order count ≥ 2 AND NOT (email consent granted) AND "
        "(last NPS answer: promoter OR has a line identifier)"
    )


# --- cycle guard -----------------------------------------------------------------------------


def test_a_segment_cannot_refer_to_itself_directly_or_through_others(crm, crm_editor):
    a = segment_create(name="A", rules={}, owner_department=crm, by=crm_editor)
    b = segment_create(
        name="B", rules=cond("segment", segment=a.pk), owner_department=crm, by=crm_editor
    )

    with pytest.raises(SegmentRuleError, match=r"rules\.segment: .*depend on itself"):
        segment_update(segment=a, by=crm_editor, rules=cond("segment", segment=a.pk))
    with pytest.raises(SegmentRuleError, match=r"rules.children\[0\].segment"):
        segment_update(segment=a, by=crm_editor, rules=all_of(cond("segment", segment=b.pk)))


# --- hand-written SQL equivalence ---------------------------------------------------------


def _random_population(seed: int) -> None:
    """Customers with every combination of the facts the five conditions look at."""
    rng = random.Random(seed)
    page_view = EventTypeFactory(name="page_view")
    for _ in range(120):
        merged_into = Customer.objects.first() if rng.random() < 0.05 else None
        customer = CustomerFactory(merged_into=merged_into)
        if rng.random() < 0.85:
            last_order = rng.choice([None, 10, 60, 89, 91, 150, 400])
            metrics(
                customer,
                order_count=rng.choice([0, 1, 2, 3, 7]),
                last_order_at=NOW - dt.timedelta(days=last_order) if last_order else None,
                last_nps=rng.choice([None, 0, 6, 7, 8, 10]),
            )
        if rng.random() < 0.7:
            ConsentFactory(
                customer=customer,
                channel=rng.choice(["email", "email", "sms"]),
                status=rng.choice(["granted", "granted", "withdrawn"]),
            )
        for _ in range(rng.choice([0, 0, 1, 2])):
            life_event(
                customer,
                rng.choice(["competitor_interest", "moving"]),
                days_ago=rng.randint(1, 400),
            )
        for _ in range(rng.choice([0, 1, 2, 3])):
            EventFactory(
                customer=customer,
                event_type=page_view,
                occurred_at=NOW - dt.timedelta(days=rng.randint(0, 60)),
            )


def _raw_ids(sql: str, params: list) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _db_time(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


FIVE_CONDITIONS = all_of(
    cond("metric", field="order_count", op="gte", value=2),
    negate(cond("metric", field="last_order_at", op="within_days", value=90)),
    cond("consent", channel="email", status="granted"),
    cond("metric", field="last_nps", op="gte", value=7),
    cond("life_event", kind="competitor_interest"),
)

FIVE_CONDITIONS_SQL = """
    SELECT c.id
      FROM customers_customer c
      JOIN customers_customermetrics m ON m.customer_id = c.id
     WHERE c.merged_into_id IS NULL
       AND m.order_count >= 2
       AND (m.last_order_at IS NULL OR m.last_order_at < %s)
       AND EXISTS (SELECT 1 FROM customers_consent k
                    WHERE k.customer_id = c.id AND k.channel = 'email'
                      AND k.status = 'granted')
       AND m.last_nps >= 7
       AND EXISTS (SELECT 1 FROM customers_lifeevent l
                    WHERE l.customer_id = c.id AND l.kind = 'competitor_interest')
"""


def test_five_condition_segment_equals_hand_written_sql():
    _random_population(seed=3)

    expected = _raw_ids(FIVE_CONDITIONS_SQL, [_db_time(NOW - dt.timedelta(days=90))])
    actual = ids(segment_queryset(FIVE_CONDITIONS, now=NOW))

    assert actual == expected
    assert 0 < len(expected) < Customer.objects.count()


OR_NOT_EVENTS = any_of(
    all_of(
        cond("event", event="page_view", min_count=2, within_days=30),
        negate(cond("metric", field="last_nps", op="gte", value=7)),
    ),
    negate(any_of(cond("consent", channel="email"), cond("life_event", kind="moving"))),
)

OR_NOT_EVENTS_SQL = """
    SELECT c.id
      FROM customers_customer c
      LEFT JOIN customers_customermetrics m ON m.customer_id = c.id
     WHERE c.merged_into_id IS NULL
       AND (
            ((SELECT COUNT(*) FROM experience_event e
               JOIN experience_eventtype t ON t.id = e.event_type_id
              WHERE e.customer_id = c.id AND t.name = 'page_view'
                AND e.occurred_at >= %s) >= 2
             AND (m.last_nps IS NULL OR m.last_nps < 7))
         OR (NOT EXISTS (SELECT 1 FROM customers_consent k
                          WHERE k.customer_id = c.id AND k.channel = 'email'
                            AND k.status = 'granted')
             AND NOT EXISTS (SELECT 1 FROM customers_lifeevent l
                              WHERE l.customer_id = c.id AND l.kind = 'moving'))
       )
"""


def test_or_not_and_event_counts_equal_hand_written_sql():
    _random_population(seed=11)

    expected = _raw_ids(OR_NOT_EVENTS_SQL, [_db_time(NOW - dt.timedelta(days=30))])
    actual = ids(segment_queryset(OR_NOT_EVENTS, now=NOW))

    assert actual == expected
    assert 0 < len(expected) < Customer.objects.count()


# --- refresh ----------------------------------------------------------------------------------


def test_dynamic_refresh_adds_and_removes_members_and_stamps_the_time(crm):
    stays, leaves, joins = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (stays, leaves):
        ConsentFactory(customer=customer, channel="email")
    segment = SegmentFactory(owner_department=crm, rules=cond("consent", channel="email"))

    assert segment_refresh(segment=segment) == 2
    first = Segment.objects.get(pk=segment.pk)
    assert set(first.memberships.values_list("customer_id", flat=True)) == {stays.pk, leaves.pk}

    Consent.objects.filter(customer=leaves).update(status=Consent.Status.WITHDRAWN)
    ConsentFactory(customer=joins, channel="email")
    assert segment_refresh(segment=segment) == 2

    second = Segment.objects.get(pk=segment.pk)
    assert set(second.memberships.values_list("customer_id", flat=True)) == {stays.pk, joins.pk}
    assert second.member_count == 2
    assert second.computed_at >= first.computed_at
    assert segment_contains(segment=second, customer_id=joins.pk)
    assert not segment_contains(segment=second, customer_id=leaves.pk)


def test_static_snapshot_does_not_follow_the_data(crm):
    first = CustomerFactory()
    ConsentFactory(customer=first, channel="email")
    segment = SegmentFactory(
        owner_department=crm, kind=Segment.Kind.STATIC, rules=cond("consent", channel="email")
    )
    assert segment_refresh(segment=segment) == 1

    ConsentFactory(customer=CustomerFactory(), channel="email")
    Consent.objects.filter(customer=first).update(status=Consent.Status.WITHDRAWN)

    assert segment_refresh(segment=segment) == 1
    assert segment_contains(segment=segment, customer_id=first.pk)
    assert list(segment.memberships.values_list("customer_id", flat=True)) == [first.pk]


def test_static_list_without_rules_keeps_its_members(crm):
    segment = SegmentFactory(owner_department=crm, kind=Segment.Kind.STATIC, rules={})
    listed = CustomerFactory()
    CustomerFactory()
    SegmentMembership.objects.create(segment=segment, customer=listed)

    assert segment_refresh_task(segment.pk) == 1
    assert segment_refresh_task(segment.pk + 999) is None


# --- services --------------------------------------------------------------------------------


def test_create_validates_audits_and_refreshes_after_commit(
    crm, crm_editor, django_capture_on_commit_callbacks
):
    ConsentFactory(channel="email")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        segment = segment_create(
            name="Email",
            rules={"op": "and", "rules": [cond("consent", channel="email")]},
            owner_department=crm,
            by=crm_editor,
        )

    assert segment.rules == all_of(cond("consent", channel="email"))
    assert segment.created_by == crm_editor
    assert AuditLog.objects.filter(action="segment.create", target_id=str(segment.pk)).exists()
    assert len(callbacks) == 1


def test_create_refuses_bad_rules_and_writes_nothing(crm, crm_editor):
    with pytest.raises(SegmentRuleError, match=r"rules.children\[0\].channel"):
        segment_create(
            name="Bad", rules=all_of(cond("consent")), owner_department=crm, by=crm_editor
        )

    assert not Segment.objects.exists()


def test_viewer_and_other_departments_cannot_create_or_edit(
    crm, sales, crm_viewer, sales_editor, crm_editor
):
    with pytest.raises(PermissionDenied):
        segment_create(name="X", rules={}, owner_department=crm, by=crm_viewer)
    with pytest.raises(PermissionDenied):
        segment_create(name="X", rules={}, owner_department=crm, by=sales_editor)

    segment = SegmentFactory(owner_department=crm)
    with pytest.raises(PermissionDenied):
        segment_update(segment=segment, by=crm_viewer, name="Renamed")
    with pytest.raises(PermissionDenied):
        segment_update(segment=segment, by=sales_editor, name="Renamed")

    segment_update(segment=segment, by=crm_editor, name="Renamed")
    assert Segment.objects.get(pk=segment.pk).name == "Renamed"


def test_shared_with_edit_rights_may_edit(crm, sales, crm_manager, sales_editor):
    segment = SegmentFactory(owner_department=crm)
    segment_share(segment=segment, department=sales, can_edit=False, by=crm_manager)
    with pytest.raises(PermissionDenied):
        segment_update(segment=segment, by=sales_editor, name="Sales' name")

    segment_share(segment=segment, department=sales, can_edit=True, by=crm_manager)
    segment_update(segment=segment, by=sales_editor, name="Sales' name")

    assert Segment.objects.get(pk=segment.pk).name == "Sales' name"


def test_only_managers_of_the_owner_share(crm, sales, crm_editor, sales_editor):
    segment = SegmentFactory(owner_department=crm)

    with pytest.raises(PermissionDenied):
        segment_share(segment=segment, department=sales, can_edit=False, by=crm_editor)


def test_update_of_rules_on_a_static_segment_takes_a_new_snapshot(crm, crm_editor):
    old, new = CustomerFactory(), CustomerFactory()
    ConsentFactory(customer=old, channel="email")
    ConsentFactory(customer=new, channel="sms")
    segment = SegmentFactory(
        owner_department=crm, kind=Segment.Kind.STATIC, rules=cond("consent", channel="email")
    )
    segment_refresh(segment=segment)

    segment_update(segment=segment, by=crm_editor, rules=cond("consent", channel="sms"))
    segment_refresh(segment=segment)

    assert list(segment.memberships.values_list("customer_id", flat=True)) == [new.pk]


def test_delete_by_owner_editor_only_and_not_while_a_campaign_uses_it(
    crm, sales, crm_editor, sales_editor, crm_manager
):
    segment = SegmentFactory(owner_department=crm)
    share_grant(obj=segment, department=sales, can_edit=True, by=crm_manager)
    with pytest.raises(PermissionDenied):
        segment_delete(segment=segment, by=sales_editor)

    used = SegmentFactory(owner_department=crm)
    CampaignFactory(owner_department=crm, segment=used)
    with pytest.raises(SegmentInUse):
        segment_delete(segment=used, by=crm_editor)
    assert Segment.objects.filter(pk=used.pk).exists()

    pk = segment.pk
    segment_delete(segment=segment, by=crm_editor)
    assert not Segment.objects.filter(pk=pk).exists()
    assert AuditLog.objects.filter(action="segment.delete", target_id=str(pk)).exists()


def test_segment_count_matches_the_queryset():
    ConsentFactory(channel="email")
    ConsentFactory(channel="sms")

    assert segment_count(cond("consent", channel="email")) == 1
