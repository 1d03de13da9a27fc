"""Live segment membership: entries and exits as data arrives, stale refresh, schedule."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Consent, Customer, Segment, SegmentMembership
from customers.segments import (
    segment_delete,
    segment_membership_sync,
    segment_refresh,
    segments_in_dependency_order,
    segments_refresh_stale,
)
from customers.services import (
    consent_set,
    customer_merge_undo,
    customer_update,
    customers_derived_refresh,
    customers_merge,
    identity_add,
)
from customers.tasks import STALE_SEGMENTS_SCHEDULE, ensure_segment_schedules
from tests.factories import ConsentFactory, CustomerFactory, OrderFactory, SegmentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_inline")]

EMAIL_GRANTED = {"type": "consent", "channel": "email", "status": "granted"}
EMAIL_WITHDRAWN = {"type": "consent", "channel": "email", "status": "withdrawn"}
TWO_ORDERS = {"type": "metric", "field": "order_count", "op": "gte", "value": 2}
IN_OSAKA = {"type": "profile", "field": "prefecture", "value": ["大阪府"]}


def dynamic(rules: dict, **fields) -> Segment:
    segment = SegmentFactory(rules=rules, **fields)
    segment_refresh(segment=segment)
    segment.refresh_from_db()
    return segment


def members(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


def assert_counts_true() -> None:
    """Every computed segment's member_count equals its materialised membership."""
    for segment in Segment.objects.filter(computed_at__isnull=False):
        assert segment.member_count == len(members(segment)), segment.name


def test_memberships_go_with_a_deleted_segment_or_customer(crm, crm_editor):
    """The membership table has no database foreign keys (refresh speed), so the cascade
    is Django's: deleting either side leaves no membership row behind."""
    kept, gone = CustomerFactory.create_batch(2)
    for customer in (kept, gone):
        ConsentFactory(customer=customer, channel="email")
    staying = dynamic(EMAIL_GRANTED, owner_department=crm)
    leaving = dynamic(EMAIL_GRANTED, owner_department=crm)
    assert members(staying) == members(leaving) == {kept.pk, gone.pk}

    gone.delete()
    segment_delete(segment=leaving, by=crm_editor)

    assert list(SegmentMembership.objects.values_list("segment_id", "customer_id")) == [
        (staying.pk, kept.pk)
    ]


def test_withdrawn_consent_leaves_the_segment_as_soon_as_it_commits(
    crm_editor, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="email", status=Consent.Status.GRANTED)
    granted = dynamic(EMAIL_GRANTED)
    withdrawn = dynamic(EMAIL_WITHDRAWN)
    assert members(granted) == {customer.pk}
    computed_at = granted.computed_at

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        consent_set(
            customer=customer, channel="email", status="withdrawn", source="test", by=crm_editor
        )

    assert len(callbacks) == 1
    assert members(granted) == set()
    assert members(withdrawn) == {customer.pk}
    granted.refresh_from_db()
    assert granted.member_count == 0
    # computed_at keeps meaning "last full computation".
    assert granted.computed_at == computed_at
    assert_counts_true()


def test_setting_the_same_consent_again_queues_nothing(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="email", status=Consent.Status.GRANTED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        consent_set(customer=customer, channel="email", status="granted", source="test")
    assert callbacks == []


def test_nothing_is_queued_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    granted = dynamic(EMAIL_GRANTED)

    def grant_then_fail():
        with transaction.atomic():
            consent_set(customer=customer, channel="email", status="granted", source="test")
            raise RuntimeError("rolled back")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        grant_then_fail()
    assert callbacks == []
    assert members(granted) == set()


def test_profile_and_identifier_changes_move_customers_live(
    crm_editor, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(prefecture="東京都")
    osaka = dynamic(IN_OSAKA)
    with_line = dynamic({"type": "identity", "kind": "line"})

    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, by=crm_editor, prefecture="大阪府")
    with django_capture_on_commit_callbacks(execute=True):
        identity_add(customer=customer, kind="line", value="U123", source="test", by=crm_editor)

    assert members(osaka) == {customer.pk}
    assert members(with_line) == {customer.pk}
    assert customer.metrics.identity_count == 1
    assert_counts_true()


def test_a_new_order_moves_the_customer_into_an_order_count_segment():
    buyer, other = CustomerFactory(), CustomerFactory()
    OrderFactory(customer=buyer)
    customers_derived_refresh(customer_ids=[buyer.pk, other.pk])
    repeat = dynamic(TWO_ORDERS)
    assert members(repeat) == set()

    OrderFactory(customer=buyer)
    customers_derived_refresh(customer_ids=[buyer.pk])

    assert members(repeat) == {buyer.pk}
    repeat.refresh_from_db()
    assert repeat.member_count == 1
    buyer.refresh_from_db()
    assert buyer.lifecycle_stage == "repeat"


def test_sync_reports_joiners_and_leavers_per_dynamic_segment():
    joining, leaving, staying = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (leaving, staying):
        ConsentFactory(customer=customer, channel="email", status="granted")
    granted = dynamic(EMAIL_GRANTED)
    ConsentFactory(customer=joining, channel="email", status="granted")
    Consent.objects.filter(customer=leaving).update(status="withdrawn")

    result = segment_membership_sync(customer_ids=[joining.pk, leaving.pk, staying.pk])

    assert result[granted.pk] == (1, 1)
    assert members(granted) == {joining.pk, staying.pk}
    assert segment_membership_sync(customer_ids=[joining.pk, leaving.pk]) == {granted.pk: (0, 0)}
    assert segment_membership_sync(customer_ids=[]) == {}
    assert_counts_true()


def test_sync_only_touches_the_given_customers():
    synced, not_synced = CustomerFactory(), CustomerFactory()
    granted = dynamic(EMAIL_GRANTED)
    for customer in (synced, not_synced):
        ConsentFactory(customer=customer, channel="email", status="granted")

    segment_membership_sync(customer_ids=[synced.pk])

    assert members(granted) == {synced.pk}
    assert_counts_true()


def test_sync_works_across_id_chunks(monkeypatch):
    monkeypatch.setattr("customers.segments.SYNC_CHUNK", 2)
    customers = CustomerFactory.create_batch(5)
    granted = dynamic(EMAIL_GRANTED)
    for customer in customers[:3]:
        ConsentFactory(customer=customer, channel="email", status="granted")

    result = segment_membership_sync(customer_ids=[c.pk for c in customers])

    assert result[granted.pk] == (3, 0)
    assert members(granted) == {c.pk for c in customers[:3]}
    assert_counts_true()


def test_static_and_never_computed_segments_are_left_alone():
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="email", status="granted")
    static = SegmentFactory(rules=EMAIL_GRANTED, kind=Segment.Kind.STATIC)
    segment_refresh(segment=static)
    pending = SegmentFactory(rules=EMAIL_GRANTED)  # never computed: its refresh is queued
    Consent.objects.filter(customer=customer).update(status="withdrawn")

    result = segment_membership_sync(customer_ids=[customer.pk])

    assert static.pk not in result
    assert pending.pk not in result
    assert members(static) == {customer.pk}
    assert members(pending) == set()
    static.refresh_from_db()
    assert static.member_count == 1


def test_merge_loser_leaves_and_winner_joins_when_matching(crm_editor):
    winner = CustomerFactory(prefecture="東京都")
    loser = CustomerFactory(prefecture="大阪府")
    both = CustomerFactory()
    for customer in (winner, loser, both):
        OrderFactory(customer=customer)
        ConsentFactory(customer=customer, channel="email", status="granted")
    customers_derived_refresh(customer_ids=[winner.pk, loser.pk, both.pk])
    repeat = dynamic(TWO_ORDERS)
    osaka = dynamic(IN_OSAKA)
    granted = dynamic(EMAIL_GRANTED)
    static = SegmentFactory(rules=EMAIL_GRANTED, kind=Segment.Kind.STATIC)
    segment_refresh(segment=static)
    assert members(repeat) == set()
    assert members(osaka) == {loser.pk}
    assert members(granted) == members(static) == {winner.pk, loser.pk, both.pk}

    customers_merge(winner=winner, loser=loser, by=crm_editor, reason="same person")

    # Two orders now: the winner joins; the loser's Osaka membership does not pass to the
    # winner, who lives in Tokyo; both were in the consent segments: one row remains.
    assert members(repeat) == {winner.pk}
    assert members(osaka) == set()
    assert members(granted) == {winner.pk, both.pk}
    assert members(static) == {winner.pk, both.pk}
    assert_counts_true()


def test_merge_undo_restores_membership_and_true_counts(crm_editor, crm_manager):
    winner, loser = CustomerFactory(), CustomerFactory(prefecture="大阪府")
    for customer in (winner, loser):
        ConsentFactory(customer=customer, channel="email", status="granted")
    granted = dynamic(EMAIL_GRANTED)
    osaka = dynamic(IN_OSAKA)
    merge = customers_merge(winner=winner, loser=loser, by=crm_editor, reason="same person")

    customer_merge_undo(merge=merge, by=crm_manager)

    assert members(granted) == {winner.pk, loser.pk}
    assert members(osaka) == {loser.pk}
    assert_counts_true()


def test_a_merged_away_customer_leaves_every_dynamic_segment():
    winner, loser = CustomerFactory(), CustomerFactory()
    ConsentFactory(customer=loser, channel="email", status="granted")
    granted = dynamic(EMAIL_GRANTED)
    everyone = dynamic({})
    Customer.objects.filter(pk=loser.pk).update(merged_into=winner)

    result = segment_membership_sync(customer_ids=[loser.pk])

    assert result == {granted.pk: (0, 1), everyone.pk: (0, 1)}
    assert loser.pk not in members(granted) | members(everyone)
    assert_counts_true()


def test_a_segment_is_synced_after_the_segments_it_refers_to():
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    customers_derived_refresh(customer_ids=[customer.pk])
    # The referring segment has the lower id, so id order alone would sync it first.
    referring = SegmentFactory(rules={})
    repeat = dynamic(TWO_ORDERS)
    Segment.objects.filter(pk=referring.pk).update(
        rules={"op": "and", "children": [{"type": "segment", "segment": repeat.pk}]}
    )
    referring.refresh_from_db()
    segment_refresh(segment=referring)
    not_repeat = dynamic({"type": "segment", "segment": repeat.pk, "member": False})
    assert members(referring) == set()
    assert members(not_repeat) == {customer.pk}

    OrderFactory(customer=customer)
    result = segment_membership_sync(customer_ids=[customer.pk])
    # metrics first (the sync alone does not rebuild them)
    assert result[repeat.pk] == (0, 0)
    customers_derived_refresh(customer_ids=[customer.pk])

    assert members(repeat) == {customer.pk}
    assert members(referring) == {customer.pk}
    assert members(not_repeat) == set()
    assert_counts_true()


def test_dependency_order_puts_referenced_segments_first_and_survives_cycles():
    a, b, c = SegmentFactory(), SegmentFactory(), SegmentFactory()
    a.rules = {"type": "segment", "segment": c.pk}
    c.rules = {"type": "segment", "segment": b.pk}
    assert [s.pk for s in segments_in_dependency_order([a, b, c])] == [b.pk, c.pk, a.pk]
    b.rules = {"type": "segment", "segment": a.pk}  # a cycle (hand-edited data)
    assert sorted(s.pk for s in segments_in_dependency_order([a, b, c])) == sorted(
        [a.pk, b.pk, c.pk]
    )


def test_a_segment_with_rules_that_no_longer_validate_is_skipped():
    customer = CustomerFactory()
    broken = SegmentFactory(rules={"type": "attribute", "key": "gone", "op": "eq", "value": 1})
    Segment.objects.filter(pk=broken.pk).update(computed_at=timezone.now(), member_count=0)
    granted = dynamic(EMAIL_GRANTED)
    ConsentFactory(customer=customer, channel="email", status="granted")

    result = segment_membership_sync(customer_ids=[customer.pk])

    assert broken.pk not in result
    assert result[granted.pk] == (1, 0)


def test_member_count_stays_true_through_a_series_of_changes(crm_editor):
    people = CustomerFactory.create_batch(6)
    granted = dynamic(EMAIL_GRANTED)
    withdrawn = dynamic(EMAIL_WITHDRAWN)
    repeat = dynamic(TWO_ORDERS)
    for index, person in enumerate(people):
        ConsentFactory(
            customer=person, channel="email", status="granted" if index % 2 else "withdrawn"
        )
        OrderFactory.create_batch(index % 3, customer=person)
        customers_derived_refresh(customer_ids=[person.pk])
        assert_counts_true()
    Consent.objects.filter(customer__in=people[:3]).update(status="granted")
    customers_derived_refresh(customer_ids=[p.pk for p in people])
    assert_counts_true()
    customers_merge(winner=people[1], loser=people[2], by=crm_editor, reason="same")
    assert_counts_true()
    for segment in (granted, withdrawn, repeat):
        segment_refresh(segment=segment)
    before = {s.pk: s.member_count for s in Segment.objects.all()}
    customers_derived_refresh(customer_ids=[p.pk for p in people])
    assert {s.pk: s.member_count for s in Segment.objects.all()} == before


def test_refresh_stale_recomputes_only_stale_dynamic_segments():
    customer = CustomerFactory()
    stale = dynamic(EMAIL_GRANTED)
    fresh = dynamic(EMAIL_GRANTED)
    never = SegmentFactory(rules=EMAIL_GRANTED)
    static = SegmentFactory(rules=EMAIL_GRANTED, kind=Segment.Kind.STATIC)
    segment_refresh(segment=static)
    long_ago = timezone.now() - dt.timedelta(hours=2)
    Segment.objects.filter(pk__in=[stale.pk, static.pk]).update(computed_at=long_ago)
    Segment.objects.filter(pk=fresh.pk).update(computed_at=timezone.now() - dt.timedelta(minutes=5))
    # Data written without the live path (bulk load): only a full computation sees it.
    ConsentFactory(customer=customer, channel="email", status="granted")

    refreshed = segments_refresh_stale(older_than=dt.timedelta(minutes=60))

    assert sorted(refreshed) == sorted([stale.pk, never.pk])
    assert members(stale) == members(never) == {customer.pk}
    assert members(fresh) == members(static) == set()
    stale.refresh_from_db()
    assert stale.computed_at > long_ago
    assert stale.member_count == 1


def test_time_based_rules_catch_up_on_the_stale_refresh():
    customer = CustomerFactory()
    OrderFactory(customer=customer, ordered_at=timezone.now() - dt.timedelta(days=29))
    customers_derived_refresh(customer_ids=[customer.pk])
    recent = dynamic({"type": "metric", "field": "last_order_at", "op": "within_days", "value": 30})
    assert members(recent) == {customer.pk}
    # Two days pass: the order is now 31 days old and nothing else happened.
    later = timezone.now() + dt.timedelta(days=2)
    Segment.objects.filter(pk=recent.pk).update(computed_at=later - dt.timedelta(hours=2))

    import customers.segments as segments_module

    original = segments_module.timezone.now
    segments_module.timezone.now = lambda: later
    try:
        segments_refresh_stale()
    finally:
        segments_module.timezone.now = original

    assert members(recent) == set()


def test_ensure_segment_schedules_is_idempotent():
    assert ensure_segment_schedules() is True
    assert ensure_segment_schedules() is False
    schedule = Schedule.objects.get(name=STALE_SEGMENTS_SCHEDULE)
    assert schedule.func == "customers.tasks.refresh_stale_segments"
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 15)
    Schedule.objects.filter(pk=schedule.pk).update(minutes=60)
    assert ensure_segment_schedules() is True
    assert Schedule.objects.get(name=STALE_SEGMENTS_SCHEDULE).minutes == 15
    assert Schedule.objects.filter(name=STALE_SEGMENTS_SCHEDULE).count() == 1


def test_the_scheduled_task_refreshes_stale_segments():
    from customers.tasks import refresh_stale_segments

    never = SegmentFactory(rules={})
    CustomerFactory()
    assert refresh_stale_segments() == [never.pk]
    never.refresh_from_db()
    assert never.member_count == 1


def test_refresh_segments_command(capsys):
    customer = CustomerFactory()
    stale, fresh = dynamic(EMAIL_GRANTED), dynamic(EMAIL_GRANTED)
    Segment.objects.filter(pk=stale.pk).update(computed_at=timezone.now() - dt.timedelta(hours=3))
    ConsentFactory(customer=customer, channel="email", status="granted")

    call_command("refresh_segments")
    assert members(stale) == {customer.pk}
    assert members(fresh) == set()
    call_command("refresh_segments", "--segment", str(fresh.pk))
    assert members(fresh) == {customer.pk}
    Consent.objects.update(status="withdrawn")
    call_command("refresh_segments", "--all")
    assert members(stale) == members(fresh) == set()
    assert "Recomputed 2 segment(s)" in capsys.readouterr().out


def test_refresh_segments_command_names_a_missing_segment():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no segment with id 999999"):
        call_command("refresh_segments", "--segment", "999999")


def test_detail_page_says_membership_is_live_and_when_last_fully_computed(client, crm, crm_viewer):
    segment = SegmentFactory(owner_department=crm, rules={})
    Segment.objects.filter(pk=segment.pk).update(
        computed_at=dt.datetime(2025, 1, 1, 0, 30, tzinfo=dt.UTC), member_count=3
    )
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:segment_detail", args=[segment.pk])).content.decode()

    assert 'id="segment-freshness"' in html
    assert "updated live as data arrives" in html
    assert "2025-01-01 09:30" in html  # Japan time
    assert "(Asia/Tokyo)" in html
    assert "ago" in html


def test_install_schedule_command_creates_one_schedule_however_often_it_runs():
    call_command("refresh_segments", install_schedule=True, stdout=StringIO())
    call_command("refresh_segments", install_schedule=True, stdout=StringIO())

    assert Schedule.objects.filter(name=STALE_SEGMENTS_SCHEDULE).count() == 1
