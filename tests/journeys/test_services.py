"""Campaign writes: who may do what, field-named errors, and the approval lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from config.org.models import AuditLog
from journeys.models import Campaign, ContactPolicy, Suppression
from journeys.services import (
    campaign_approve,
    campaign_complete,
    campaign_create,
    campaign_pause,
    campaign_reject,
    campaign_request_approval,
    campaign_resume,
    campaign_transition,
    campaign_update,
    contact_policy_update,
    normalise_address,
    step_delete,
    step_save,
    suppression_add,
    suppression_remove,
)
from tests.factories import EventTypeFactory, SegmentFactory

pytestmark = pytest.mark.django_db

CONTENT = {"ja": {"subject": "こんにちは", "body": "{{ customer.first_name }}様"}}


@pytest.fixture
def segment(crm):
    return SegmentFactory(owner_department=crm)


def one_off(by, department, segment, **fields):
    return campaign_create(
        by=by,
        owner_department=department,
        name="Friday news",
        channel=Campaign.Channel.EMAIL,
        kind=Campaign.Kind.ONE_OFF,
        segment=segment,
        steps=[{"variants": [{"label": "A", "content": CONTENT}]}],
        **fields,
    )


def test_create_makes_a_draft_with_one_step_and_policy_defaults(crm, crm_editor, segment):
    policy = ContactPolicy.current()
    policy.default_holdout_percent = 15
    policy.save()
    campaign = campaign_create(
        by=crm_editor,
        owner_department=crm,
        name="Welcome",
        channel=Campaign.Channel.EMAIL,
        segment=segment,
    )
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.holdout_percent == 15
    step = campaign.steps.get()
    assert [v.label for v in step.variants.all()] == ["A"]
    assert AuditLog.objects.filter(action="campaign.create", target_id=str(campaign.pk)).exists()


def test_viewer_and_other_department_may_not_create(crm, crm_viewer, sales_editor, segment):
    for user in (crm_viewer, sales_editor):
        with pytest.raises(PermissionDenied):
            one_off(user, crm, segment)
    assert not Campaign.objects.exists()


def test_errors_name_the_field_and_nothing_is_written(crm, crm_editor, segment):
    with pytest.raises(ValidationError) as caught:
        campaign_create(
            by=crm_editor,
            owner_department=crm,
            name="",
            channel="fax",
            kind=Campaign.Kind.EVENT,
            trigger={"event_type": "no_such_event", "unless": ["nope"]},
            holdout_percent=80,
        )
    errors = caught.value.message_dict
    assert {"name", "channel", "trigger.event_type", "trigger.unless", "holdout_percent"} <= set(
        errors
    )
    assert "no_such_event" in errors["trigger.event_type"][0]
    assert not Campaign.objects.exists()


def test_segment_of_another_department_is_unknown(crm, sales, crm_editor):
    foreign = SegmentFactory(owner_department=sales)
    with pytest.raises(ValidationError) as caught:
        one_off(crm_editor, crm, foreign)
    assert caught.value.message_dict["segment"] == ["unknown segment"]


def test_trigger_is_normalised_per_kind(crm, crm_editor):
    EventTypeFactory(name="add_to_cart")
    EventTypeFactory(name="purchase")
    campaign = campaign_create(
        by=crm_editor,
        owner_department=crm,
        name="Cart",
        channel=Campaign.Channel.EMAIL,
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "add_to_cart", "unless": "purchase", "junk": 1},
    )
    assert campaign.trigger == {"event_type": "add_to_cart", "unless": ["purchase"]}
    with pytest.raises(ValidationError) as caught:
        campaign_create(
            by=crm_editor,
            owner_department=crm,
            name="Birthday",
            channel=Campaign.Channel.EMAIL,
            kind=Campaign.Kind.DATE,
            trigger={"date_kind": "spouse_birthday", "days_before": 400},
        )
    assert "trigger.days_before" in caught.value.message_dict


def test_variant_errors_name_step_variant_and_language(crm, crm_editor, segment):
    campaign = one_off(crm_editor, crm, segment)
    with pytest.raises(ValidationError) as caught:
        step_save(
            campaign=campaign,
            by=crm_editor,
            position=1,
            variants=[
                {"label": "A", "content": CONTENT},
                {"label": "A", "weight": 0, "content": {"en": {"subject": "Hi", "body": ""}}},
            ],
        )
    fields = set(caught.value.message_dict)
    assert "step.variants[1].label" in fields
    assert "step.variants[1].weight" in fields
    assert any(field.startswith("step.variants[1].content") for field in fields)
    assert [v.label for v in campaign.steps.get().variants.all()] == ["A"]


def test_approval_flow_schedules_a_one_off(crm, crm_editor, crm_manager, segment):
    at = timezone.now() + dt.timedelta(days=2)
    campaign = one_off(crm_editor, crm, segment, starts_at=at)
    with pytest.raises(PermissionDenied):
        campaign_approve(campaign=campaign, by=crm_editor)
    campaign_request_approval(campaign=campaign, by=crm_editor)
    campaign.refresh_from_db()
    assert campaign.approval_requested_at is not None
    campaign_approve(campaign=campaign, by=crm_manager)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.approved_by == crm_manager
    assert campaign.next_run_at == at


def test_incomplete_draft_cannot_be_approved(crm, crm_editor, crm_manager, segment):
    campaign = campaign_create(
        by=crm_editor,
        owner_department=crm,
        name="Empty",
        channel=Campaign.Channel.EMAIL,
        segment=segment,
    )
    with pytest.raises(ValidationError) as caught:
        campaign_request_approval(campaign=campaign, by=crm_editor)
    assert "steps[0].variants[0].content" in caught.value.message_dict
    with pytest.raises(ValidationError):
        campaign_approve(campaign=campaign, by=crm_manager)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_trigger_campaign_runs_once_approved(crm, crm_editor, crm_manager):
    EventTypeFactory(name="add_to_cart")
    campaign = campaign_create(
        by=crm_editor,
        owner_department=crm,
        name="Cart",
        channel=Campaign.Channel.EMAIL,
        kind=Campaign.Kind.EVENT,
        trigger={"event_type": "add_to_cart"},
        steps=[{"delay_minutes": 60, "variants": [{"content": CONTENT}]}],
    )
    campaign_approve(campaign=campaign, by=crm_manager)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_editing_an_approved_campaign_needs_approval_again(crm, crm_editor, crm_manager, segment):
    campaign = one_off(crm_editor, crm, segment, starts_at=timezone.now() + dt.timedelta(days=1))
    campaign_approve(campaign=campaign, by=crm_manager)
    with pytest.raises(ValidationError) as caught:
        campaign_update(campaign=campaign, by=crm_editor, name="Renamed")
    assert "status" in caught.value.message_dict
    campaign_pause(campaign=campaign, by=crm_editor)
    campaign_update(campaign=campaign, by=crm_editor, name="Renamed")
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status, campaign.approved_at) == (
        "Renamed",
        Campaign.Status.DRAFT,
        None,
    )


def test_pause_resume_complete(crm, crm_editor, crm_manager, segment):
    campaign = one_off(crm_editor, crm, segment, starts_at=timezone.now() + dt.timedelta(days=1))
    campaign_approve(campaign=campaign, by=crm_manager)
    campaign_pause(campaign=campaign, by=crm_editor)
    with pytest.raises(PermissionDenied):
        campaign_resume(campaign=campaign, by=crm_editor)
    campaign_resume(campaign=campaign, by=crm_manager)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    campaign_complete(campaign=campaign, by=crm_manager)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.next_run_at) == (Campaign.Status.COMPLETED, None)
    with pytest.raises(ValidationError):
        campaign_pause(campaign=campaign, by=crm_editor)


def test_reject_clears_the_request(crm, crm_editor, crm_manager, segment):
    campaign = one_off(crm_editor, crm, segment)
    campaign_request_approval(campaign=campaign, by=crm_editor)
    campaign_reject(campaign=campaign, by=crm_manager, note="Tone it down")
    campaign.refresh_from_db()
    assert campaign.approval_requested_at is None
    assert AuditLog.objects.get(action="campaign.reject").detail == {"note": "Tone it down"}


def test_transition_names_an_unknown_action(crm, crm_editor, segment):
    campaign = one_off(crm_editor, crm, segment)
    with pytest.raises(ValidationError) as caught:
        campaign_transition(campaign=campaign, action="launch", by=crm_editor)
    assert "action" in caught.value.message_dict


def test_last_step_is_kept(crm, crm_editor, segment):
    campaign = one_off(crm_editor, crm, segment)
    step_save(campaign=campaign, by=crm_editor, position=2, delay_minutes=3 * 24 * 60)
    step_delete(step=campaign.steps.get(position=2), by=crm_editor)
    with pytest.raises(ValidationError):
        step_delete(step=campaign.steps.get(), by=crm_editor)


def test_suppression_is_normalised_and_managers_only(crm_editor, crm_manager):
    assert normalise_address("email", "  Hana@Example.JP ") == "hana@example.jp"
    assert normalise_address("sms", "090-1234-5678") == "09012345678"
    with pytest.raises(PermissionDenied):
        suppression_add(channel="email", value="a@b.jp", reason="bounce", by=crm_editor)
    first = suppression_add(channel="email", value="A@B.jp", reason="bounce", by=crm_manager)
    again = suppression_add(channel="email", value="a@b.jp", reason="bounce", by=crm_manager)
    assert first.pk == again.pk
    assert first.value == "a@b.jp"
    with pytest.raises(ValidationError) as caught:
        suppression_add(channel="email", value="", reason="why", by=crm_manager)
    assert {"value", "reason"} <= set(caught.value.message_dict)
    suppression_remove(suppression=first, by=crm_manager)
    assert not Suppression.objects.exists()


def test_contact_policy_is_the_administrators(crm_manager, superuser):
    with pytest.raises(PermissionDenied):
        contact_policy_update(by=crm_manager, max_contacts=10)
    with pytest.raises(ValidationError) as caught:
        contact_policy_update(by=superuser, max_contacts=0)
    assert "max_contacts" in caught.value.message_dict
    assert ContactPolicy.current().max_contacts == 3
    contact_policy_update(by=superuser, max_contacts=2, window_days=14)
    policy = ContactPolicy.current()
    assert (policy.max_contacts, policy.window_days) == (2, 14)
