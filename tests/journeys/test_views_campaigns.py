"""Campaign pages: list, create/edit with steps, preview, test send, approval, results, export."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from config.org.models import AuditLog
from config.org.services import share_grant
from journeys.models import Campaign, CampaignStep, Delivery, Variant
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventTypeFactory,
    IdentityFactory,
    SegmentFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db

LIST = reverse("journeys:campaigns")
NEW = reverse("journeys:campaign_new")
CONTENT = {
    "en": {"subject": "Hello {{ customer.first_name }}", "body": "Dear {{ customer.first_name }}"}
}


def campaign_with_content(**kwargs) -> Campaign:
    campaign = CampaignFactory(**kwargs)
    step = CampaignStepFactory(campaign=campaign)
    VariantFactory(step=step, content=CONTENT)
    return campaign


def detail_url(campaign) -> str:
    return reverse("journeys:campaign_detail", args=[campaign.pk])


def action_url(campaign, action) -> str:
    return reverse("journeys:campaign_action", args=[campaign.pk, action])


# --- who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("journeys:campaigns", []),
        ("journeys:campaign_new", []),
        ("journeys:campaign_detail", [1]),
        ("journeys:campaign_edit", [1]),
        ("journeys:campaign_preview", [1]),
        ("journeys:calendar", []),
        ("journeys:tasks", []),
        ("journeys:contact_policy", []),
        ("journeys:suppressions", []),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, name, args):
    response = client.get(reverse(name, args=args))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_another_departments_campaign_is_not_found(client, sales, crm_editor):
    campaign = campaign_with_content(owner_department=sales)
    client.force_login(crm_editor)

    for url in (
        detail_url(campaign),
        reverse("journeys:campaign_edit", args=[campaign.pk]),
        reverse("journeys:campaign_preview", args=[campaign.pk]),
    ):
        assert client.get(url).status_code == 404
    assert client.post(action_url(campaign, "request_approval")).status_code == 404
    assert client.post(reverse("journeys:step_save", args=[campaign.pk])).status_code == 404


def test_list_shows_own_and_shared_campaigns_with_filters(
    client, crm, sales, crm_editor, sales_editor
):
    CampaignFactory(owner_department=crm, name="Spring mail", status=Campaign.Status.RUNNING)
    CampaignFactory(owner_department=crm, name="Autumn SMS", channel=Campaign.Channel.SMS)
    CampaignFactory(owner_department=sales, name="Secret sales push")
    shared = CampaignFactory(owner_department=sales, name="Store revisit")
    share_grant(obj=shared, department=crm, can_edit=False, by=sales_editor)
    client.force_login(crm_editor)

    html = client.get(LIST).content.decode()
    assert "Spring mail" in html
    assert "Autumn SMS" in html
    assert "Store revisit" in html
    assert "Secret sales push" not in html
    assert "New campaign" in html

    html = client.get(LIST, {"channel": "sms"}).content.decode()
    assert "Autumn SMS" in html
    assert "Spring mail" not in html

    html = client.get(LIST, {"status": "running"}, headers={"HX-Request": "true"}).content.decode()
    assert "Spring mail" in html
    assert "Autumn SMS" not in html
    assert "<html" not in html


def test_list_rejects_an_unknown_filter(client, crm_editor):
    client.force_login(crm_editor)

    assert client.get(LIST, {"status": "nonsense"}).status_code == 400


def test_viewer_gets_no_new_button_and_cannot_create(client, crm, crm_viewer):
    client.force_login(crm_viewer)

    assert "New campaign" not in client.get(LIST).content.decode()
    assert client.get(NEW).status_code == 403
    response = client.post(NEW, {"name": "x", "kind": "one_off", "channel": "email"})
    assert response.status_code == 403
    assert not Campaign.objects.exists()


def test_list_query_count_is_fixed(client, crm, crm_manager, django_assert_num_queries):
    segment = SegmentFactory(owner_department=crm)
    CampaignFactory.create_batch(5, owner_department=crm, segment=segment)
    CampaignFactory(owner_department=crm, approval_requested_at=timezone.now())
    client.force_login(crm_manager)
    client.get(LIST)

    # session, user, roles, editor departments, filter departments, count, page, approvals,
    # memberships for the header
    with django_assert_num_queries(9):
        response = client.get(LIST)
    CampaignFactory.create_batch(5, owner_department=crm, segment=segment)
    with django_assert_num_queries(9):
        client.get(LIST)
    assert response.status_code == 200


# --- create and edit ---------------------------------------------------------------------------


def test_editor_creates_a_one_off_email_campaign_and_lands_on_its_edit_page(
    client, crm, crm_editor
):
    segment = SegmentFactory(owner_department=crm)
    client.force_login(crm_editor)

    response = client.post(
        NEW,
        {
            "owner_department": crm.pk,
            "name": "Friday news",
            "kind": "one_off",
            "channel": "email",
            "segment": segment.pk,
            "starts_at": "2030-05-10T10:00",
            "priority": 60,
            "is_marketing": "on",
            "respect_quiet_hours": "on",
            "experience_values": [],
        },
    )

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("journeys:campaign_edit", args=[campaign.pk])
    assert campaign.name == "Friday news"
    assert campaign.segment == segment
    assert campaign.status == Campaign.Status.DRAFT
    # datetime-local is read in the company time zone (Asia/Tokyo): 10:00 JST = 01:00 UTC.
    assert campaign.starts_at == dt.datetime(2030, 5, 10, 1, 0, tzinfo=dt.UTC)
    assert campaign.steps.count() == 1


def test_service_errors_are_shown_next_to_their_field(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        NEW,
        {
            "owner_department": crm.pk,
            "name": "No audience",
            "kind": "one_off",
            "channel": "email",
            "priority": 50,
        },
    )

    assert response.status_code == 400
    assert response.context["form"].errors["segment"] == ["required for this kind of campaign"]
    assert 'id="id_segment-error"' in response.content.decode()
    assert not Campaign.objects.exists()


def test_event_trigger_needs_an_event_type(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        NEW,
        {
            "owner_department": crm.pk,
            "name": "Cart",
            "kind": "event",
            "channel": "email",
            "priority": 50,
        },
    )

    assert response.status_code == 400
    assert (
        "required for a campaign triggered by an event"
        in response.context["form"].errors["event_type"][0]
    )


def test_event_trigger_is_saved_with_unless(client, crm, crm_editor):
    EventTypeFactory(name="cart_abandoned")
    EventTypeFactory(name="order_completed")
    client.force_login(crm_editor)

    client.post(
        NEW,
        {
            "owner_department": crm.pk,
            "name": "Cart",
            "kind": "event",
            "channel": "email",
            "priority": 50,
            "event_type": "cart_abandoned",
            "unless": ["order_completed"],
        },
    )

    assert Campaign.objects.get().trigger == {
        "event_type": "cart_abandoned",
        "unless": ["order_completed"],
    }


def test_editor_saves_a_step_with_ab_variants(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:step_save", args=[campaign.pk]),
        {
            "position": "1",
            "step1-position": "1",
            "step1-name": "Welcome",
            "step1-delay_days": "1",
            "step1-delay_hours": "2",
            "step1-a_weight": "1",
            "step1-a_ja_subject": "こんにちは",
            "step1-a_ja_body": "{{ customer.first_name }}様",
            "step1-a_en_subject": "Hi",
            "step1-a_en_body": "Hi {{ customer.first_name }}",
            "step1-b_weight": "3",
            "step1-b_en_subject": "Hey",
            "step1-b_en_body": "Hey there",
        },
    )

    assert response.status_code == 302
    step = CampaignStep.objects.get(campaign=campaign)
    assert step.delay_minutes == 26 * 60
    assert step.name == "Welcome"
    variants = {v.label: v for v in step.variants.all()}
    assert set(variants) == {"A", "B"}
    assert variants["B"].weight == 3
    assert variants["A"].content["ja"] == {
        "subject": "こんにちは",
        "body": "{{ customer.first_name }}様",
    }


def test_template_error_in_a_step_is_shown_at_its_field(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:step_save", args=[campaign.pk]),
        {
            "position": "1",
            "step1-position": "1",
            "step1-delay_days": "0",
            "step1-delay_hours": "0",
            "step1-a_weight": "1",
            "step1-a_en_subject": "Hi",
            "step1-a_en_body": "{% if %}",
        },
    )

    assert response.status_code == 400
    step_form = response.context["step_forms"][0]
    assert step_form.errors.get("a_en_body")
    assert Variant.objects.get(step__campaign=campaign).content == CONTENT


def test_editor_adds_and_removes_a_step(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_editor)

    client.post(
        reverse("journeys:step_save", args=[campaign.pk]),
        {
            "stepnew-position": "2",
            "stepnew-delay_days": "3",
            "stepnew-delay_hours": "0",
            "stepnew-a_weight": "1",
            "stepnew-a_en_subject": "Again",
            "stepnew-a_en_body": "Hi",
        },
    )
    assert list(campaign.steps.values_list("position", "delay_minutes")) == [(1, 0), (2, 3 * 1440)]

    response = client.post(reverse("journeys:step_delete", args=[campaign.pk, 2]))
    assert response.status_code == 302
    assert campaign.steps.count() == 1


def test_viewer_cannot_change_steps(client, crm, crm_viewer):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_viewer)

    assert client.get(reverse("journeys:campaign_edit", args=[campaign.pk])).status_code == 403
    assert client.post(reverse("journeys:step_save", args=[campaign.pk]), {}).status_code == 403
    assert client.post(reverse("journeys:step_delete", args=[campaign.pk, 1])).status_code == 403


def test_edit_page_shows_the_campaign_and_its_steps(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm, name="Spring")
    client.force_login(crm_editor)

    response = client.get(reverse("journeys:campaign_edit", args=[campaign.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="Spring"' in html
    assert "Hello {{ customer.first_name }}" in html
    assert "Add a step" in html


# --- presets --------------------------------------------------------------------------------


def test_preset_gallery_makes_a_draft_in_one_click(client, crm, crm_editor):
    for name in ("add_to_cart", "purchase", "checkout_completed"):
        EventTypeFactory(name=name)
    client.force_login(crm_editor)
    assert "Use “" in client.get(LIST).content.decode()

    response = client.post(reverse("journeys:preset_create"), {"key": "cart_abandonment"})

    campaign = Campaign.objects.get()
    assert response.url == reverse("journeys:campaign_edit", args=[campaign.pk])
    assert campaign.preset == "cart_abandonment"
    assert campaign.owner_department == crm


def test_unknown_preset_is_not_found_and_viewer_is_refused(client, crm, crm_editor, crm_viewer):
    client.force_login(crm_editor)
    assert client.post(reverse("journeys:preset_create"), {"key": "nope"}).status_code == 404
    client.force_login(crm_viewer)
    response = client.post(reverse("journeys:preset_create"), {"key": "cart_abandonment"})
    assert response.status_code == 403


# --- preview and test send -----------------------------------------------------------------------


def test_preview_with_a_customer_found_by_identifier_masks_the_name(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    customer = CustomerFactory(given_name="Hanako", family_name="Yamada", language="en")
    IdentityFactory(customer=customer, value="hanako@example.jp")
    client.force_login(crm_editor)

    response = client.get(
        reverse("journeys:campaign_preview", args=[campaign.pk]),
        {"q": "hanako@example.jp"},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert 'data-testid="preview-subject">Hello H***<' in html
    assert "Hanako" not in html


def test_preview_for_a_pii_viewer_is_unmasked_and_audited(client, crm, crm_editor):
    crm_editor.user_permissions.add(Permission.objects.get(codename="view_pii"))
    campaign = campaign_with_content(owner_department=crm)
    customer = CustomerFactory(given_name="Hanako", language="en")
    client.force_login(crm_editor)

    response = client.get(
        reverse("journeys:campaign_preview", args=[campaign.pk]), {"customer": customer.pk}
    )

    assert "Hello Hanako" in response.content.decode()
    assert AuditLog.objects.filter(action="customer.view_pii", target_id=str(customer.pk)).exists()


def test_preview_with_an_unknown_identifier_says_so(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_editor)

    response = client.get(
        reverse("journeys:campaign_preview", args=[campaign.pk]), {"q": "nobody@example.jp"}
    )

    assert response.status_code == 400
    assert "No customer has this identifier." in response.content.decode()


def test_detail_offers_segment_members_to_preview_with(client, crm, crm_editor):
    from customers.models import SegmentMembership

    segment = SegmentFactory(owner_department=crm)
    customer = CustomerFactory(given_name="Hanako")
    SegmentMembership.objects.create(segment=segment, customer=customer)
    campaign = campaign_with_content(owner_department=crm, segment=segment)
    client.force_login(crm_editor)

    html = client.get(detail_url(campaign)).content.decode()

    assert f'<option value="{customer.pk}">Customer #{customer.pk} · 山***</option>' in html


def test_send_test_goes_to_the_staff_members_own_address(client, crm, crm_editor):
    crm_editor.email = "editor@example.com"
    crm_editor.save()
    campaign = campaign_with_content(owner_department=crm)
    customer = CustomerFactory(language="en")
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:campaign_send_test", args=[campaign.pk]), {"customer": customer.pk}
    )

    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["editor@example.com"]]
    assert not Delivery.objects.exists()


def test_viewer_cannot_send_a_test(client, crm, crm_viewer):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_viewer)

    response = client.post(reverse("journeys:campaign_send_test", args=[campaign.pk]), {})

    assert response.status_code == 403
    assert mail.outbox == []


# --- approval and lifecycle ---------------------------------------------------------------


def test_editor_requests_approval_and_manager_approves(client, crm, crm_editor, crm_manager):
    segment = SegmentFactory(owner_department=crm)
    starts = timezone.now() + dt.timedelta(days=2)
    campaign = campaign_with_content(owner_department=crm, segment=segment, starts_at=starts)
    client.force_login(crm_editor)

    html = client.get(detail_url(campaign)).content.decode()
    assert "Request approval" in html
    assert ">Approve<" not in html
    client.post(action_url(campaign, "request_approval"))
    campaign.refresh_from_db()
    assert campaign.approval_requested_at is not None
    assert client.post(action_url(campaign, "approve")).status_code == 403

    client.force_login(crm_manager)
    assert campaign.name in client.get(LIST).content.decode().split("Waiting for your approval")[1]
    response = client.post(action_url(campaign, "approve"), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.next_run_at == starts
    assert "Approved." in response.content.decode()


def test_approving_an_incomplete_campaign_explains_why(client, crm, crm_manager):
    campaign = CampaignFactory(owner_department=crm)
    CampaignStepFactory(campaign=campaign)
    client.force_login(crm_manager)

    response = client.post(action_url(campaign, "approve"), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert "segment: required for this kind of campaign" in response.content.decode()


def test_viewer_cannot_press_lifecycle_buttons(client, crm, crm_viewer):
    campaign = campaign_with_content(owner_department=crm, status=Campaign.Status.RUNNING)
    client.force_login(crm_viewer)

    for action in ("request_approval", "approve", "pause", "complete"):
        assert client.post(action_url(campaign, action)).status_code == 403
    assert client.post(action_url(campaign, "explode")).status_code == 404


def test_manager_pauses_and_resumes(client, crm, crm_manager):
    segment = SegmentFactory(owner_department=crm)
    campaign = campaign_with_content(
        owner_department=crm,
        segment=segment,
        status=Campaign.Status.RUNNING,
        kind=Campaign.Kind.SEGMENT_ENTRY,
        approved_at=timezone.now(),
    )
    client.force_login(crm_manager)

    client.post(action_url(campaign, "pause"))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    client.post(action_url(campaign, "resume"))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


# --- results ---------------------------------------------------------------------------


def test_results_page_shows_the_funnel_and_not_enough_data(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm)
    step = campaign.steps.get()
    now = timezone.now()
    DeliveryFactory.create_batch(3, step=step, sent_at=now, opened_at=now)
    DeliveryFactory(step=step, sent_at=now, revenue=1200, converted_at=now)
    DeliveryFactory(step=step, status=Delivery.Status.CAPPED, reason="budget")
    client.force_login(crm_editor)

    html = client.get(detail_url(campaign)).content.decode()

    assert 'data-chart-for="funnel-chart"' in html
    assert "¥1,200" in html
    assert "Not enough data for a lift estimate" in html
    assert "Over contact budget" in html
    assert "budget" in html


def test_results_page_query_count_is_fixed(client, crm, crm_editor, django_assert_num_queries):
    campaign = campaign_with_content(owner_department=crm)
    step = campaign.steps.get()
    now = timezone.now()
    DeliveryFactory.create_batch(5, step=step, sent_at=now)
    client.force_login(crm_editor)
    client.get(detail_url(campaign))

    # session, user, roles, campaign, edit/approve checks, results (5 aggregates), steps,
    # variants, segment sample, experience values, runs, memberships for the header…
    with django_assert_num_queries(18):
        client.get(detail_url(campaign))
    DeliveryFactory.create_batch(20, step=step, sent_at=now, opened_at=now)
    with django_assert_num_queries(18):
        client.get(detail_url(campaign))


# --- direct-mail export --------------------------------------------------------------------------


def test_direct_mail_csv_needs_pii_permission_and_is_audited(client, crm, crm_editor):
    campaign = campaign_with_content(owner_department=crm, channel=Campaign.Channel.DIRECT_MAIL)
    step = campaign.steps.get()
    DeliveryFactory(step=step, sent_at=timezone.now(), customer__family_name="Yamada")
    url = reverse("journeys:campaign_dm_csv", args=[campaign.pk])
    client.force_login(crm_editor)
    assert client.get(url).status_code == 403

    crm_editor.user_permissions.add(Permission.objects.get(codename="view_pii"))
    client.force_login(crm_editor)
    response = client.get(url)

    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200
    assert "Yamada" in body
    assert AuditLog.objects.filter(action="campaign.dm_export", target_id=str(campaign.pk)).exists()


def test_direct_mail_csv_only_for_direct_mail_campaigns(client, crm, crm_pii_viewer):
    campaign = campaign_with_content(owner_department=crm)
    client.force_login(crm_pii_viewer)

    assert client.get(reverse("journeys:campaign_dm_csv", args=[campaign.pk])).status_code == 404
