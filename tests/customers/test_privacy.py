"""Data-subject requests and retention: what a person gets, what erasure leaves behind."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.utils import timezone

from config.org.models import AuditLog
from customers.identity import IdentifierError
from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.metrics import metrics_rebuild
from customers.models import (
    AttributeDefinition,
    Consent,
    ConsentChange,
    Customer,
    CustomerMetrics,
    ErasedIdentifier,
    Identity,
    ImportantDate,
    ImportJob,
    SegmentMembership,
)
from customers.privacy import (
    attribute_retention_apply,
    can_handle_subject_requests,
    erased_digests,
    identifier_digest,
    subject_erase,
    subject_export,
)
from customers.services import consent_set, customers_merge, important_date_set
from customers.tasks import RETENTION_SCHEDULE, ensure_segment_schedules
from experience.models import Event, Order, OrderLine, SurveyResponse
from journeys import engine
from journeys.models import Campaign, CampaignStep, Delivery, StaffTask, Variant
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    IdentityFactory,
    LifeEventFactory,
    OrderFactory,
    ProductFactory,
    SegmentFactory,
    SurveyResponseFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def hanako(crm, crm_editor):
    """A person with something in every section, owned data of the CRM department."""
    person = CustomerFactory(
        family_name="山田",
        given_name="花子",
        family_name_kana="ヤマダ",
        given_name_kana="ハナコ",
        birth_date=dt.date(1990, 4, 1),
        gender="f",
        postal_code="150-0001",
        prefecture="東京都",
        city="渋谷区",
        time_zone="Asia/Tokyo",
        attributes={"shoe_size": 23.5},
    )
    AttributeDefinition.objects.create(
        owner_department=crm,
        key="shoe_size",
        label="Shoe size",
        type="number",
        purpose="Fitting recommendations",
        retention_days=365,
    )
    IdentityFactory(customer=person, kind="email", value="hanako@example.jp")
    IdentityFactory(customer=person, kind="phone", value="+819012345678")
    consent_set(customer=person, channel="email", status="granted", source="web", by=crm_editor)
    important_date_set(customer=person, kind="anniversary", month=6, day=12, label="wedding")
    LifeEventFactory(customer=person, detail={"rule_name": "Wedding pages", "note": "told staff"})
    EventFactory(customer=person, properties={"path": "/wedding", "email": "hanako@example.jp"})
    EventFactory(customer=person, properties={"path": "/rings"})
    order = OrderFactory(customer=person, total=12000)
    OrderLine.objects.create(order=order, product=ProductFactory(), quantity=2, unit_price=6000)
    OrderFactory(customer=person, total=3000)
    SurveyResponseFactory(customer=person, score=9, comment="Call me at 090-1234-5678")
    SegmentMembership.objects.create(segment=SegmentFactory(owner_department=crm), customer=person)
    delivery = DeliveryFactory(customer=person, address="hanako@example.jp", error="bounced")
    StaffTask.objects.create(
        customer=person, delivery=delivery, title="Call 花子", instructions="Ask about rings"
    )
    metrics_rebuild(customer_ids=[person.pk])
    return person


# --- digests and who may ---------------------------------------------------------------------


def test_identifier_digest_normalises_and_erased_digests_answers_in_one_query(
    django_assert_num_queries,
):
    assert identifier_digest("email", " Hanako@Example.JP ") == identifier_digest(
        "email", "hanako@example.jp"
    )
    assert identifier_digest("phone", "090-1234-5678") == identifier_digest(
        "phone", "+819012345678"
    )
    assert len(identifier_digest("email", "a@example.jp")) == 64
    assert identifier_digest("email", "a@example.jp") != identifier_digest("email", "b@example.jp")
    with pytest.raises(IdentifierError):
        identifier_digest("email", "not an address")
    ErasedIdentifier.objects.create(kind="email", digest=identifier_digest("email", "a@example.jp"))
    with django_assert_num_queries(1):
        found = erased_digests("email", ["a@example.jp", "b@example.jp", "c@example.jp"])
    assert found == {"a@example.jp"}
    assert erased_digests("phone", ["a@example.jp"]) == set()  # kinds do not mix
    with django_assert_num_queries(0):
        assert erased_digests("email", []) == set()


def test_only_managers_with_personal_data_access_and_the_administrator_handle_requests(
    crm_viewer, crm_editor, crm_manager, crm_pii_viewer, superuser, django_user_model
):
    from django.contrib.auth.models import AnonymousUser, Permission

    assert not can_handle_subject_requests(AnonymousUser())
    for user in (crm_viewer, crm_editor, crm_manager, crm_pii_viewer):
        assert not can_handle_subject_requests(user), user
    crm_manager.user_permissions.add(Permission.objects.get(codename="view_pii"))
    manager = django_user_model.objects.get(pk=crm_manager.pk)  # fresh permission cache
    assert can_handle_subject_requests(manager)
    assert can_handle_subject_requests(superuser)


# --- export --------------------------------------------------------------------------------


def test_export_holds_every_section_of_the_person_and_is_audited(hanako, crm_editor, superuser):
    data = subject_export(customer=hanako, by=superuser)
    json.dumps(data)  # JSON-ready as it is
    assert data["customer"]["family_name"] == "山田"
    assert data["customer"]["birth_date"] == "1990-04-01"
    assert {(i["kind"], i["value"]) for i in data["identities"]} == {
        ("email", "hanako@example.jp"),
        ("phone", "+819012345678"),
    }
    [consent] = data["consents"]
    assert consent["status"] == "granted"
    assert [(h["status"], h["source"], h["changed_by"]) for h in consent["history"]] == [
        ("granted", "web", crm_editor.username)
    ]
    assert [(d["kind"], d["label"], d["month"], d["day"]) for d in data["important_dates"]] == [
        ("anniversary", "wedding", 6, 12)
    ]
    assert data["attributes"] == [
        {
            "customer_id": hanako.pk,
            "key": "shoe_size",
            "value": 23.5,
            "label": "Shoe size",
            "purpose": "Fitting recommendations",
            "retention_days": 365,
        }
    ]
    assert data["life_events"][0]["detail"]["note"] == "told staff"
    assert data["metrics"][0]["revenue_total"] == 15000
    assert len(data["segments"]) == 1
    sections = data["sections"]
    assert {e["properties"]["path"] for e in sections["events"]} == {"/wedding", "/rings"}
    assert sorted(o["total"] for o in sections["orders"]) == [3000, 12000]
    assert [(line["quantity"], line["unit_price"]) for line in sections["order_lines"]] == [
        (2, 6000)
    ]
    assert sections["survey_responses"][0]["comment"] == "Call me at 090-1234-5678"
    assert sections["deliveries"][0]["address"] == "hanako@example.jp"
    assert sections["staff_tasks"][0]["instructions"] == "Ask about rings"
    entry = AuditLog.objects.get(action="customer.subject_export")
    assert (entry.actor, entry.target_id) == (superuser, str(hanako.pk))


def test_export_includes_profiles_merged_into_the_person(hanako, superuser):
    old = CustomerFactory(family_name="旧姓", given_name="花子")
    IdentityFactory(customer=old, kind="pos", value="M-0001")
    customers_merge(winner=hanako, loser=old, by=superuser, reason="same member card")
    data = subject_export(customer=hanako, by=superuser)
    assert [p["id"] for p in data["merged_profiles"]] == [old.pk]
    assert data["merged_profiles"][0]["family_name"] == "旧姓"
    assert ("pos", "M-0001") in {(i["kind"], i["value"]) for i in data["identities"]}


# --- erasure -------------------------------------------------------------------------------


def test_erase_removes_every_personal_field_and_keeps_the_aggregates(hanako, superuser):
    subject_erase(customer=hanako, by=superuser, reason="asked by phone, ticket 42")
    person = Customer.objects.get(pk=hanako.pk)
    for field in (
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "gender",
        "postal_code",
        "prefecture",
        "city",
        "time_zone",
    ):
        assert getattr(person, field) == "", field
    assert person.birth_date is None
    assert person.attributes == {}
    assert person.erased_at is not None
    assert not Identity.objects.filter(customer=person).exists()
    assert not Identity.objects.filter(value__in=["hanako@example.jp", "+819012345678"]).exists()
    assert set(ErasedIdentifier.objects.values_list("kind", "digest")) == {
        ("email", identifier_digest("email", "hanako@example.jp")),
        ("phone", identifier_digest("phone", "+819012345678")),
    }
    assert not ImportantDate.objects.filter(customer=person).exists()
    consent = Consent.objects.get(customer=person)
    assert (consent.status, consent.source) == ("withdrawn", "erasure")
    assert consent.changes.order_by("changed_at", "pk").last().source == "erasure"
    assert person.life_events.get().detail == {"rule_name": "Wedding pages"}
    assert list(Event.objects.filter(customer=person).values_list("properties", flat=True)) == [
        {},
        {},
    ]
    assert SurveyResponse.objects.get(customer=person).comment == ""
    delivery = Delivery.objects.get(customer=person)
    assert (delivery.address, delivery.error) == ("", "")
    task = StaffTask.objects.get(customer=person)
    assert "花子" not in task.title
    assert task.instructions == ""
    # Aggregates stay.
    assert sum(Order.objects.filter(customer=person).values_list("total", flat=True)) == 15000
    assert Event.objects.filter(customer=person).count() == 2
    assert SurveyResponse.objects.get(customer=person).score == 9
    assert SegmentMembership.objects.filter(customer=person).count() == 1
    metrics = CustomerMetrics.objects.get(customer=person)
    assert (metrics.order_count, metrics.revenue_total, metrics.event_count) == (2, 15000, 2)
    entry = AuditLog.objects.get(action="customer.erase")
    assert entry.detail["reason"] == "asked by phone, ticket 42"
    written = json.dumps(entry.detail, ensure_ascii=False)
    for secret in ("hanako@example.jp", "819012345678", "山田", "花子", "150-0001"):
        assert secret not in written


def test_erase_is_idempotent(hanako, superuser):
    subject_erase(customer=hanako, by=superuser)
    first = Customer.objects.get(pk=hanako.pk)
    changes = ConsentChange.objects.count()
    subject_erase(customer=hanako, by=superuser)
    again = Customer.objects.get(pk=hanako.pk)
    assert again.erased_at == first.erased_at
    assert ConsentChange.objects.count() == changes
    assert ErasedIdentifier.objects.count() == 2
    assert AuditLog.objects.filter(action="customer.erase").count() == 2
    assert AuditLog.objects.filter(action="customer.erase").first().detail["repeated"] is True


def test_erase_covers_profiles_merged_into_the_person(hanako, superuser):
    old = CustomerFactory(family_name="旧姓", given_name="花子", postal_code="100-0001")
    IdentityFactory(customer=old, kind="pos", value="M-0001")
    customers_merge(winner=hanako, loser=old, by=superuser, reason="same member card")
    subject_erase(customer=hanako, by=superuser)
    old.refresh_from_db()
    assert (old.family_name, old.given_name, old.postal_code) == ("", "", "")
    assert old.erased_at is not None
    assert ErasedIdentifier.objects.filter(
        kind="pos", digest=identifier_digest("pos", "M-0001")
    ).exists()
    merge = hanako.merges_won.get()
    assert merge.moved["winner_fields"] == {}
    assert merge.moved["deleted"] == []


def test_an_erased_address_imported_again_is_never_contacted(hanako, crm, superuser):
    subject_erase(customer=hanako, by=superuser)
    csv = "email,メール配信\nhanako@example.jp,yes\nken@example.jp,yes\n"
    job = import_job_create(
        file=io.BytesIO(csv.encode()),
        original_name="members.csv",
        kind="customers",
        source="pos",
        department=crm,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    job = import_job_validate(job_id=job.pk)
    assert job.status == ImportJob.Status.VALID
    job = run_pending_import(
        job=import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    )
    assert job.status == ImportJob.Status.DONE
    again = Identity.objects.get(kind="email", value="hanako@example.jp").customer
    assert again.pk != hanako.pk
    assert again.consents.get(channel="email").status == Consent.Status.GRANTED

    campaign = CampaignFactory(
        status=Campaign.Status.RUNNING, channel=Campaign.Channel.EMAIL, holdout_percent=0
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    Variant.objects.create(step=step, label="A", content={"ja": {"subject": "Hi", "body": "Hi"}})
    engine.enroll_audience(
        campaign=campaign,
        customers=Customer.objects.filter(erased_at__isnull=True, merged_into__isnull=True),
        occurrence="r1",
        entered_at=NOW,
    )
    engine.enrollments_advance(now=NOW, campaign_ids=[campaign.pk])
    engine.deliveries_dispatch(now=NOW)
    assert [to for message in mail.outbox for to in message.to] == ["ken@example.jp"]
    delivery = Delivery.objects.get(campaign=campaign, customer=again)
    assert (delivery.status, delivery.reason) == (
        Delivery.Status.SUPPRESSED,
        engine.REASON_SUPPRESSED,
    )


# --- retention -----------------------------------------------------------------------------


def test_retention_removes_only_values_past_their_time_since_last_activity(crm):
    AttributeDefinition.objects.create(
        owner_department=crm, key="shoe_size", label="Shoe size", type="number", retention_days=30
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="vip-note", label="VIP", type="text", retention_days=365
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="colour", label="Colour", type="text"
    )  # kept for ever
    values = {"shoe_size": 23.5, "vip-note": "gold", "colour": "red"}
    idle = CustomerFactory(attributes=dict(values))  # last activity 100 days ago
    active = CustomerFactory(attributes=dict(values))  # ordered 10 days ago
    quiet = CustomerFactory(attributes=dict(values))  # no metrics: created 40 days ago
    fresh = CustomerFactory(attributes=dict(values))  # no metrics: created today
    Customer.objects.filter(pk__in=[idle.pk, active.pk]).update(
        created_at=NOW - dt.timedelta(days=500)
    )
    Customer.objects.filter(pk=quiet.pk).update(created_at=NOW - dt.timedelta(days=40))
    Customer.objects.filter(pk=fresh.pk).update(created_at=NOW)
    CustomerMetrics.objects.create(customer=idle, last_event_at=NOW - dt.timedelta(days=100))
    CustomerMetrics.objects.create(
        customer=active,
        last_event_at=NOW - dt.timedelta(days=400),
        last_order_at=NOW - dt.timedelta(days=10),
    )

    assert attribute_retention_apply(now=NOW) == 2
    assert attribute_retention_apply(now=NOW) == 0  # idempotent
    attributes = dict(Customer.objects.values_list("pk", "attributes"))
    assert attributes[idle.pk] == {"vip-note": "gold", "colour": "red"}
    assert attributes[quiet.pk] == {"vip-note": "gold", "colour": "red"}
    assert attributes[active.pk] == values
    assert attributes[fresh.pk] == values
    assert attribute_retention_apply(now=NOW + dt.timedelta(days=300)) == 3  # vip-note of idle…
    attributes = dict(Customer.objects.values_list("pk", "attributes"))
    assert attributes[idle.pk] == {"colour": "red"}
    assert attributes[active.pk] == {"vip-note": "gold", "colour": "red"}


def test_retention_runs_nightly_from_a_q2_schedule(crm):
    from django_q.models import Schedule

    from customers.tasks import apply_attribute_retention

    ensure_segment_schedules()
    schedule = Schedule.objects.get(name=RETENTION_SCHEDULE)
    assert schedule.func == "customers.tasks.apply_attribute_retention"
    assert (schedule.schedule_type, schedule.cron) == (Schedule.CRON, "15 3 * * *")
    assert ensure_segment_schedules() is False
    AttributeDefinition.objects.create(
        owner_department=crm, key="mood", label="Mood", type="text", retention_days=1
    )
    person = CustomerFactory(attributes={"mood": "happy"})
    Customer.objects.filter(pk=person.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    assert apply_attribute_retention() == 1
    person.refresh_from_db()
    assert person.attributes == {}
