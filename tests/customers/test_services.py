"""Writes of circle ①: profiles, consent history, important dates, merge and its undo."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from config.org.models import AuditLog
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    CustomerMerge,
    CustomerMetrics,
    ImportantDate,
    SegmentMembership,
)
from customers.services import (
    consent_set,
    customer_create,
    customer_merge_undo,
    customer_update,
    customers_merge,
    identity_add,
    important_date_set,
)
from experience.models import Event, Favorite, Order
from journeys.models import Delivery
from tests.factories import (
    ConsentFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    IdentityFactory,
    OrderFactory,
    ProductFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db


# --- profiles ---------------------------------------------------------------------------


@pytest.fixture
def attributes(crm):
    AttributeDefinition.objects.create(
        owner_department=crm,
        key="member_rank",
        label="Rank",
        type="choice",
        choices=["regular", "gold"],
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="points", label="Points", type="number"
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="newsletter", label="Newsletter", type="boolean"
    )


def test_customer_create_validates_and_normalises_fields(crm_editor, attributes):
    customer = customer_create(
        by=crm_editor,
        family_name="山田",
        family_name_kana="ヤマダ",
        birth_date="1985-04-01",
        postal_code="１５０ー０００１".replace("ー", "-"),
        attributes={"points": "1,200", "newsletter": "yes", "member_rank": "gold"},
    )

    customer.refresh_from_db()
    assert customer.birth_date == dt.date(1985, 4, 1)
    assert customer.postal_code == "150-0001"
    assert customer.attributes == {"points": 1200, "newsletter": True, "member_rank": "gold"}
    assert AuditLog.objects.filter(action="customer.create", actor=crm_editor).exists()


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"family_name_kana": "Yamada"}, "family_name_kana"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": "not a date"}, "birth_date"),
        ({"gender": "x"}, "gender"),
        ({"language": "fr"}, "language"),
        ({"postal_code": "12"}, "postal_code"),
        ({"nickname": "x"}, "nickname"),
        ({"attributes": {"points": "many"}}, "attributes.points"),
        ({"attributes": {"member_rank": "diamond"}}, "attributes.member_rank"),
        ({"attributes": {"shoe_size": 24}}, "attributes.shoe_size"),
    ],
)
def test_customer_create_rejects_bad_values_naming_the_field(crm_editor, attributes, fields, key):
    with pytest.raises(ValidationError) as info:
        customer_create(by=crm_editor, **fields)

    assert key in info.value.message_dict


def test_customer_update_merges_attributes_and_audits_changed_fields(crm_editor, attributes):
    customer = CustomerFactory(attributes={"points": 5, "member_rank": "regular"})

    customer_update(
        customer=customer,
        by=crm_editor,
        given_name="花子",
        attributes={"points": 7, "member_rank": None},
    )

    customer.refresh_from_db()
    assert customer.given_name == "花子"
    assert customer.attributes == {"points": 7}
    entry = AuditLog.objects.get(action="customer.update")
    assert entry.detail == {"fields": ["attributes", "given_name"]}


def test_identity_add_refuses_an_identifier_of_someone_else(crm_editor):
    other = IdentityFactory(kind="email", value="a@example.jp")
    customer = CustomerFactory(is_anonymous=True)

    with pytest.raises(ValidationError, match=f"customer #{other.customer_id}"):
        identity_add(
            customer=customer, kind="email", value="A@example.jp", source="api", by=crm_editor
        )
    identity = identity_add(
        customer=customer, kind="phone", value="090-1234-5678", source="api", by=crm_editor
    )

    assert identity.value == "+819012345678"
    customer.refresh_from_db()
    assert customer.is_anonymous is False


# --- consent and dates ------------------------------------------------------------------


def test_consent_set_keeps_history_and_ignores_repeats(crm_editor):
    customer = CustomerFactory()

    consent_set(customer=customer, channel="email", status="granted", source="webshop")
    consent_set(customer=customer, channel="email", status="granted", source="import")
    consent = consent_set(
        customer=customer, channel="email", status="withdrawn", source="call", by=crm_editor
    )

    assert consent.status == "withdrawn"
    assert list(
        consent.changes.order_by("changed_at").values_list("status", "source", "changed_by")
    ) == [
        ("granted", "webshop", None),
        ("withdrawn", "call", crm_editor.pk),
    ]


def test_consent_set_rejects_unknown_channel_and_status():
    with pytest.raises(ValidationError) as info:
        consent_set(customer=CustomerFactory(), channel="fax", status="maybe", source="x")

    assert set(info.value.message_dict) == {"channel", "status"}
    assert not Consent.objects.exists()


def test_important_date_set_upserts_per_kind_and_checks_the_calendar():
    customer = CustomerFactory()

    important_date_set(customer=customer, kind="spouse_birthday", month=2, day=29)
    important_date_set(
        customer=customer, kind="spouse_birthday", month=3, day=1, self_declared=True
    )
    with pytest.raises(ValidationError, match="month 4 has no day 31"):
        important_date_set(customer=customer, kind="anniversary", month=4, day=31)
    with pytest.raises(ValidationError) as info:
        important_date_set(customer=customer, kind="custom", month=1, day=1)

    assert "label" in info.value.message_dict
    [date] = ImportantDate.objects.filter(customer=customer)
    assert (date.month, date.day, date.self_declared) == (3, 1, True)


# --- merge and undo ---------------------------------------------------------------------


@pytest.fixture
def pair():
    winner = CustomerFactory(birth_date=None, city="")
    loser = CustomerFactory(birth_date=dt.date(1990, 5, 6), city="渋谷区")
    return winner, loser


def test_merge_moves_every_row_of_the_loser(pair, crm_editor):
    winner, loser = pair
    identity = IdentityFactory(customer=loser)
    events = EventFactory.create_batch(2, customer=loser)
    order = OrderFactory(customer=loser)
    delivery = DeliveryFactory(customer=loser)

    merge = customers_merge(winner=winner, loser=loser, by=crm_editor, reason="same person")

    for row in (identity, *events, order, delivery):
        row.refresh_from_db()
        assert row.customer_id == winner.pk
    loser.refresh_from_db()
    winner.refresh_from_db()
    assert loser.merged_into_id == winner.pk
    assert winner.birth_date == dt.date(1990, 5, 6)
    assert winner.city == "渋谷区"
    assert sorted(merge.moved["rows"]["experience.event.customer_id"]) == sorted(
        e.pk for e in events
    )
    assert winner.metrics.order_count == 1
    assert not CustomerMetrics.objects.filter(customer=loser).exists()
    entry = AuditLog.objects.get(action="customer.merge")
    assert entry.detail["loser"] == loser.pk


def test_merge_resolves_unique_collisions_and_newest_consent_wins(pair, crm_editor):
    winner, loser = pair
    now = timezone.now()
    old = ConsentFactory(
        customer=winner, channel="email", status="granted", updated_at=now - dt.timedelta(days=9)
    )
    ConsentChange.objects.create(
        consent=old, status="granted", source="web", changed_at=old.updated_at
    )
    new = ConsentFactory(
        customer=loser, channel="email", status="withdrawn", updated_at=now, source="call"
    )
    change = ConsentChange.objects.create(
        consent=new, status="withdrawn", source="call", changed_at=now
    )
    only_loser = ConsentFactory(customer=loser, channel="sms")
    segment = SegmentFactory()
    SegmentMembership.objects.create(segment=segment, customer=winner)
    duplicate = SegmentMembership.objects.create(segment=segment, customer=loser)
    product = ProductFactory()
    Favorite.objects.create(customer=winner, product=product, created_at=now)
    Favorite.objects.create(customer=loser, product=product, created_at=now)

    customers_merge(winner=winner, loser=loser, by=crm_editor, reason="same person")

    kept = Consent.objects.get(customer=winner, channel="email")
    assert kept.pk == old.pk
    assert kept.status == "withdrawn"
    assert kept.source == "call"
    assert set(kept.changes.values_list("source", flat=True)) == {"web", "call"}
    only_loser.refresh_from_db()
    assert only_loser.customer_id == winner.pk
    assert not SegmentMembership.objects.filter(pk=duplicate.pk).exists()
    assert SegmentMembership.objects.filter(customer=winner).count() == 1
    assert Favorite.objects.filter(customer=winner).count() == 1
    change.refresh_from_db()
    assert change.consent_id == old.pk


def test_undo_puts_every_row_back_with_its_id(pair, crm_editor, crm_manager):
    winner, loser = pair
    now = timezone.now()
    identity = IdentityFactory(customer=loser)
    event = EventFactory(customer=loser)
    order = OrderFactory(customer=loser)
    delivery = DeliveryFactory(customer=loser)
    winners_event = EventFactory(customer=winner)
    old = ConsentFactory(
        customer=winner, channel="email", status="granted", updated_at=now - dt.timedelta(days=9)
    )
    new = ConsentFactory(customer=loser, channel="email", status="withdrawn", updated_at=now)
    change = ConsentChange.objects.create(
        consent=new, status="withdrawn", source="call", changed_at=now
    )
    segment = SegmentFactory()
    SegmentMembership.objects.create(segment=segment, customer=winner)
    duplicate = SegmentMembership.objects.create(segment=segment, customer=loser)
    merge = customers_merge(winner=winner, loser=loser, by=crm_editor, reason="same person")

    customer_merge_undo(merge=merge, by=crm_manager)

    for row in (identity, event, order, delivery):
        row.refresh_from_db()
        assert row.customer_id == loser.pk
    winners_event.refresh_from_db()
    assert winners_event.customer_id == winner.pk
    restored = Consent.objects.get(pk=new.pk)
    assert (restored.customer_id, restored.status) == (loser.pk, "withdrawn")
    old.refresh_from_db()
    assert old.status == "granted"
    change.refresh_from_db()
    assert change.consent_id == new.pk
    assert SegmentMembership.objects.get(pk=duplicate.pk).customer_id == loser.pk
    loser.refresh_from_db()
    winner.refresh_from_db()
    assert loser.merged_into_id is None
    assert winner.birth_date is None
    assert winner.city == ""
    merge.refresh_from_db()
    assert merge.undone_by == crm_manager
    assert merge.undone_at is not None
    assert loser.metrics.order_count == 1
    assert winner.metrics.order_count == 0
    assert AuditLog.objects.filter(action="customer.merge_undo", actor=crm_manager).exists()
    assert Event.objects.count() == 2
    assert Order.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_only_a_manager_may_undo_and_only_once(pair, crm_viewer, crm_editor, crm_manager):
    winner, loser = pair
    merge = customers_merge(winner=winner, loser=loser, by=crm_editor, reason="x")

    for user in (crm_viewer, crm_editor):
        with pytest.raises(PermissionDenied):
            customer_merge_undo(merge=merge, by=user)
    customer_merge_undo(merge=merge, by=crm_manager)
    with pytest.raises(ValidationError, match="already undone"):
        customer_merge_undo(merge=merge, by=crm_manager)


def test_merge_refuses_self_and_already_merged_profiles(pair, crm_editor):
    winner, loser = pair
    with pytest.raises(ValidationError, match="into itself"):
        customers_merge(winner=winner, loser=winner, by=crm_editor, reason="x")
    customers_merge(winner=winner, loser=loser, by=crm_editor, reason="x")
    with pytest.raises(ValidationError, match="already merged"):
        customers_merge(winner=winner, loser=loser, by=crm_editor, reason="x")
    assert CustomerMerge.objects.count() == 1
