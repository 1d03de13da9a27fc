"""Situation detection: rules → life situations, the emitted event, moving from an address."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from config.org.models import AuditLog
from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import ImportJob, LifeEvent
from customers.services import customer_update
from experience.models import Event, EventType, SituationRule
from experience.pipeline import process_stored_events
from experience.situations import (
    SITUATION_EVENT,
    default_situation_rules,
    life_event_handle,
    life_event_record,
    situation_rule_create,
    situation_rule_preview,
    situations_detect,
)
from tests.factories import (
    CustomerFactory,
    EventFactory,
    EventTypeFactory,
    IdentityFactory,
    LifeEventFactory,
    SituationRuleFactory,
)

pytestmark = pytest.mark.django_db


def page_view(customer, path, *, days_ago=0):
    return EventFactory(
        customer=customer,
        event_type=EventTypeFactory(name="page_view"),
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
        properties={"path": path},
    )


def test_contains_is_a_case_insensitive_substring(crm):
    rule = SituationRuleFactory(owner_department=crm, value="wedding")
    hit, miss = CustomerFactory(), CustomerFactory()
    page_view(hit, "/gifts/Wedding-bouquets")
    page_view(miss, "/gifts/birthday")

    detected = situations_detect(customer_ids=[hit.pk, miss.pk])

    assert [(d.customer_id, d.kind) for d in detected] == [(hit.pk, LifeEvent.Kind.MARRIAGE)]
    life_event = LifeEvent.objects.get()
    assert life_event.department == crm
    assert life_event.source == f"rule:{rule.pk}"
    assert life_event.confidence == pytest.approx(0.6)
    assert life_event.detail["rule_id"] == rule.pk
    assert life_event.detail["rule_name"] == rule.name
    assert life_event.detail["matched"] == 1
    assert life_event.detail["last_event_at"]


def test_equals_matches_the_whole_value_only(crm):
    dmp = EventTypeFactory(name="dmp_signal")
    SituationRuleFactory(
        owner_department=crm,
        event_type=dmp,
        kind=LifeEvent.Kind.MOVING,
        property="signal",
        operator=SituationRule.Operator.EQUALS,
        value="moving",
    )
    exact, longer = CustomerFactory(), CustomerFactory()
    EventFactory(customer=exact, event_type=dmp, properties={"signal": "moving", "score": 0.9})
    EventFactory(customer=longer, event_type=dmp, properties={"signal": "moving-soon"})

    detected = situations_detect(customer_ids=[exact.pk, longer.pk])

    assert [d.customer_id for d in detected] == [exact.pk]


def test_starts_with_matches_a_prefix(crm):
    dmp = EventTypeFactory(name="dmp_signal")
    SituationRuleFactory(
        owner_department=crm,
        event_type=dmp,
        kind=LifeEvent.Kind.COMPETITOR_INTEREST,
        property="signal",
        operator=SituationRule.Operator.STARTS_WITH,
        value="competitor:",
    )
    hit, miss = CustomerFactory(), CustomerFactory()
    EventFactory(customer=hit, event_type=dmp, properties={"signal": "competitor:hanaya"})
    EventFactory(customer=miss, event_type=dmp, properties={"signal": "no-competitor:x"})

    detected = situations_detect(customer_ids=[hit.pk, miss.pk])

    assert [d.customer_id for d in detected] == [hit.pk]


def test_at_least_compares_numbers_and_ignores_text(crm):
    search = EventTypeFactory(name="search")
    SituationRuleFactory(
        owner_department=crm,
        event_type=search,
        kind=LifeEvent.Kind.OTHER,
        property="results",
        operator=SituationRule.Operator.AT_LEAST,
        value="10",
    )
    big, small, text = CustomerFactory(), CustomerFactory(), CustomerFactory()
    EventFactory(customer=big, event_type=search, properties={"results": 12.5})
    EventFactory(customer=small, event_type=search, properties={"results": 9})
    EventFactory(customer=text, event_type=search, properties={"results": "many"})

    detected = situations_detect(customer_ids=[big.pk, small.pk, text.pk])

    assert [d.customer_id for d in detected] == [big.pk]


def test_a_rule_without_a_property_counts_every_event_of_its_type(crm):
    app_open = EventTypeFactory(name="app_open")
    SituationRuleFactory(
        owner_department=crm, event_type=app_open, property="", value="", min_count=2
    )
    customer = CustomerFactory()
    EventFactory.create_batch(2, customer=customer, event_type=app_open)

    assert [d.customer_id for d in situations_detect(customer_ids=[customer.pk])] == [customer.pk]


def test_only_events_inside_the_window_count(crm):
    SituationRuleFactory(owner_department=crm, window_days=30)
    old, recent = CustomerFactory(), CustomerFactory()
    page_view(old, "/wedding", days_ago=31)
    page_view(recent, "/wedding", days_ago=29)

    detected = situations_detect(customer_ids=[old.pk, recent.pk])

    assert [d.customer_id for d in detected] == [recent.pk]


def test_min_count_needs_that_many_matching_events(crm):
    SituationRuleFactory(owner_department=crm, min_count=2)
    once, twice = CustomerFactory(), CustomerFactory()
    page_view(once, "/wedding")
    page_view(once, "/birthday")
    page_view(twice, "/wedding")
    page_view(twice, "/wedding/rings")

    detected = situations_detect(customer_ids=[once.pk, twice.pk])

    assert [(d.customer_id, d.detail["matched"]) for d in detected] == [(twice.pk, 2)]


def test_a_second_run_detects_nothing_new_within_the_cooldown(crm):
    SituationRuleFactory(owner_department=crm, cooldown_days=180)
    customer = CustomerFactory()
    page_view(customer, "/wedding")

    assert len(situations_detect(customer_ids=[customer.pk])) == 1
    assert situations_detect(customer_ids=[customer.pk]) == []
    assert LifeEvent.objects.count() == 1
    assert Event.objects.filter(event_type__name=SITUATION_EVENT).count() == 1


def test_an_old_detection_outside_the_cooldown_does_not_block(crm):
    SituationRuleFactory(owner_department=crm, cooldown_days=30)
    customer = CustomerFactory()
    LifeEventFactory(customer=customer, detected_at=timezone.now() - dt.timedelta(days=40))
    page_view(customer, "/wedding")

    assert len(situations_detect(customer_ids=[customer.pk])) == 1


def test_two_rules_for_one_situation_detect_it_once_strongest_first(crm):
    dmp = EventTypeFactory(name="dmp_signal")
    SituationRuleFactory(owner_department=crm, confidence=0.6)
    strong = SituationRuleFactory(
        owner_department=crm,
        event_type=dmp,
        property="signal",
        operator=SituationRule.Operator.EQUALS,
        value="wedding",
        confidence=0.8,
    )
    customer = CustomerFactory()
    page_view(customer, "/wedding")
    EventFactory(customer=customer, event_type=dmp, properties={"signal": "wedding"})

    detected = situations_detect(customer_ids=[customer.pk])

    assert [d.detail["rule_id"] for d in detected] == [strong.pk]


def test_event_types_restricts_the_rules_run(crm):
    SituationRuleFactory(owner_department=crm)
    customer = CustomerFactory()
    page_view(customer, "/wedding")

    assert situations_detect(customer_ids=[customer.pk], event_types={"dmp_signal"}) == []
    assert len(situations_detect(customer_ids=[customer.pk], event_types={"page_view"})) == 1


def test_inactive_rules_and_rules_on_detections_never_run(crm):
    SituationRuleFactory(owner_department=crm, is_active=False)
    SituationRuleFactory(
        owner_department=crm,
        event_type=EventTypeFactory(name=SITUATION_EVENT),
        property="",
        value="",
    )
    customer = CustomerFactory()
    page_view(customer, "/wedding")
    EventFactory(customer=customer, event_type=EventType.objects.get(name=SITUATION_EVENT))

    assert situations_detect(customer_ids=[customer.pk]) == []


def test_only_the_given_customers_are_evaluated(crm):
    SituationRuleFactory(owner_department=crm)
    asked, other = CustomerFactory(), CustomerFactory()
    page_view(asked, "/wedding")
    page_view(other, "/wedding")

    assert [d.customer_id for d in situations_detect(customer_ids=[asked.pk])] == [asked.pk]


def test_a_big_set_of_customers_is_scanned_once_and_narrowed(crm, monkeypatch):
    from experience import situations

    monkeypatch.setattr(situations, "CHUNK", 1)
    SituationRuleFactory(owner_department=crm)
    first, second, other = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (first, second, other):
        page_view(customer, "/wedding")

    detected = situations_detect(customer_ids=[first.pk, second.pk])

    assert sorted(d.customer_id for d in detected) == sorted([first.pk, second.pk])


def test_each_detection_emits_one_situation_detected_event(crm):
    rule = SituationRuleFactory(owner_department=crm)
    customer = CustomerFactory()
    page_view(customer, "/wedding")

    (life_event,) = situations_detect(customer_ids=[customer.pk])

    event = Event.objects.get(event_type__name=SITUATION_EVENT)
    assert event.customer_id == customer.pk
    assert event.source == "detection"
    assert event.event_id == f"life-event-{life_event.pk}"
    assert event.properties == {"kind": "marriage", "confidence": 0.6, "rule_id": rule.pk}
    assert EventType.objects.get(name=SITUATION_EVENT).property_schema == {
        "kind": "string",
        "confidence": "number",
        "rule_id": "integer",
    }


def test_emitting_the_same_detection_twice_stores_one_event(crm):
    from experience.situations import _emit

    SituationRuleFactory(owner_department=crm)
    customer = CustomerFactory()
    page_view(customer, "/wedding")
    (life_event,) = situations_detect(customer_ids=[customer.pk])

    _emit([life_event])

    assert Event.objects.filter(event_type__name=SITUATION_EVENT).count() == 1


def test_the_pipeline_detects_situations_of_stored_events(crm):
    SituationRuleFactory(owner_department=crm)
    customer = CustomerFactory()
    page_view(customer, "/wedding")

    process_stored_events({"page_view": [customer.pk]})

    assert LifeEvent.objects.filter(customer=customer, kind="marriage").exists()


def test_default_rules_are_created_once(crm):
    first = default_situation_rules(crm)
    again = default_situation_rules(crm)

    assert len(first) == len(again) >= 8
    kinds = {rule.kind for rule in first}
    assert kinds >= {
        "marriage",
        "moving",
        "job_change",
        "childbirth",
        "competitor_interest",
        "substitute_interest",
    }
    assert EventType.objects.get(name="dmp_signal").property_schema == {
        "signal": "string",
        "score": "number",
    }


def test_default_wedding_rule_needs_two_page_views(crm):
    default_situation_rules(crm)
    customer = CustomerFactory()
    page_view(customer, "/wedding")
    assert situations_detect(customer_ids=[customer.pk]) == []
    page_view(customer, "/wedding/bouquets")
    (life_event,) = situations_detect(customer_ids=[customer.pk])
    assert (life_event.kind, life_event.confidence) == ("marriage", pytest.approx(0.6))


# --- single detections and handling -----------------------------------------------------


def test_life_event_record_stores_announces_and_respects_the_cooldown(
    django_capture_on_commit_callbacks,
):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        life_event = life_event_record(
            customer=customer, kind="job_change", source="staff", confidence=1, detail={"n": 1}
        )
    assert life_event.department is None
    assert Event.objects.filter(
        event_type__name=SITUATION_EVENT, event_id=f"life-event-{life_event.pk}"
    ).exists()
    assert (
        life_event_record(customer=customer, kind="job_change", source="staff", confidence=1)
        is None
    )


def test_life_event_record_names_bad_fields():
    with pytest.raises(ValidationError) as info:
        life_event_record(customer=CustomerFactory(), kind="nope", source="", confidence=2)
    assert set(info.value.message_dict) == {"kind", "source", "confidence"}


def test_editor_of_the_detecting_department_handles_it(crm, crm_editor):
    life_event = LifeEventFactory(department=crm)

    life_event_handle(life_event=life_event, by=crm_editor)

    life_event.refresh_from_db()
    assert life_event.handled_at is not None
    assert life_event.handled_by == crm_editor
    assert AuditLog.objects.filter(action="life_event.handle").count() == 1


def test_viewers_and_other_departments_cannot_handle(crm, crm_viewer, sales_editor):
    life_event = LifeEventFactory(department=crm)
    for user in (crm_viewer, sales_editor):
        with pytest.raises(PermissionDenied):
            life_event_handle(life_event=life_event, by=user)
    life_event.refresh_from_db()
    assert life_event.handled_at is None


def test_any_editor_handles_a_detection_without_department(sales_editor):
    life_event = LifeEventFactory(department=None)
    life_event_handle(life_event=life_event, by=sales_editor)
    life_event.refresh_from_db()
    assert life_event.handled_by == sales_editor


# --- rules ------------------------------------------------------------------------------


def test_rule_create_validates_every_field_together(crm, crm_editor):
    page = EventTypeFactory(name="page_view")
    with pytest.raises(ValidationError) as info:
        situation_rule_create(
            by=crm_editor,
            owner_department=crm,
            name="Big searches",
            kind="other",
            event_type=page,
            property="results",
            operator="gte",
            value="lots",
            confidence=1.5,
        )
    assert set(info.value.message_dict) >= {"value", "confidence"}
    with pytest.raises(ValidationError) as info:
        situation_rule_create(
            by=crm_editor,
            owner_department=crm,
            name="No value",
            kind="other",
            event_type=page,
            property="path",
            operator="equals",
            value="",
        )
    assert "value" in info.value.message_dict
    assert not SituationRule.objects.exists()


def test_rule_create_refuses_other_departments(crm, sales_editor):
    with pytest.raises(PermissionDenied):
        situation_rule_create(
            by=sales_editor,
            owner_department=crm,
            name="Theirs",
            kind="other",
            event_type=EventTypeFactory(name="page_view"),
        )


def test_preview_counts_customers_the_rule_would_detect_now(crm):
    rule = SituationRuleFactory(owner_department=crm)
    first, second, already = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for customer in (first, second, already):
        page_view(customer, "/wedding")
    LifeEventFactory(customer=already)

    assert situation_rule_preview(rule) == 2


# --- moving house -----------------------------------------------------------------------


def test_an_address_change_records_a_move(crm_editor, django_capture_on_commit_callbacks):
    customer = CustomerFactory(postal_code="100-0001", prefecture="東京都", city="千代田区")
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, by=crm_editor, postal_code="530-0001", city="大阪市")

    life_event = LifeEvent.objects.get(customer=customer)
    assert (life_event.kind, life_event.source) == ("moving", "address_change")
    assert life_event.confidence == pytest.approx(0.9)
    assert Event.objects.filter(customer=customer, event_type__name=SITUATION_EVENT).exists()


def test_the_first_address_is_not_a_move(crm_editor, django_capture_on_commit_callbacks):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, by=crm_editor, postal_code="100-0001", city="千代田区")
        customer_update(customer=customer, by=crm_editor, given_name="花")

    assert not LifeEvent.objects.exists()


def test_an_imported_address_change_records_a_move(
    crm, media_in_tmp, tasks_inline, django_capture_on_commit_callbacks
):
    moved = CustomerFactory(postal_code="100-0001", city="千代田区")
    IdentityFactory(customer=moved, kind="email", value="moved@example.jp")
    first = CustomerFactory()
    IdentityFactory(customer=first, kind="email", value="first@example.jp")
    renamed = CustomerFactory(postal_code="100-0002", city="港区")
    IdentityFactory(customer=renamed, kind="email", value="renamed@example.jp")
    content = (
        "email,postal_code,city,given_name\n"
        "moved@example.jp,530-0001,大阪市,花子\n"
        "first@example.jp,100-0003,中央区,花子\n"
        "renamed@example.jp,100-0002,港区,新\n"
    ).encode()
    job = import_job_create(
        file=io.BytesIO(content),
        original_name="people.csv",
        kind="customers",
        source="crm",
        department=crm,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    job = import_job_validate(job_id=job.pk)
    assert job.status == ImportJob.Status.VALID, list(job.row_errors.values_list("row", "reason"))
    with django_capture_on_commit_callbacks(execute=True):  # listeners run on commit
        run_pending_import(
            job=import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
        )

    assert list(LifeEvent.objects.values_list("customer_id", "kind")) == [(moved.pk, "moving")]
