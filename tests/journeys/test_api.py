"""Platform API: personas, journeys with stages and campaigns with steps, all scoped."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.org.models import AuditLog
from config.org.services import share_grant
from config.org.tokens import api_token_create
from experience.models import ExperienceValue
from journeys.models import StaffTask
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventTypeFactory,
    JourneyFactory,
    PersonaFactory,
    StageFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def test_journey_detail_lists_stages_in_order(api, crm, crm_viewer):
    journey = JourneyFactory(owner_department=crm)
    later = StageFactory(journey=journey, position=2, name="Purchase")
    first = StageFactory(journey=journey, position=1, name="Awareness")
    first.experience_values.set(ExperienceValue.objects.filter(code="fun"))
    api.force_authenticate(crm_viewer)

    listed = api.get(reverse("journey-list")).json()["results"][0]
    body = api.get(reverse("journey-detail", args=[journey.pk])).json()

    assert listed["stage_count"] == 2
    assert listed["persona"] == {"id": journey.persona_id, "name": journey.persona.name}
    assert [stage["id"] for stage in body["stages"]] == [first.pk, later.pk]
    assert body["stages"][0]["experience_values"] == ["fun"]


def test_campaign_detail_lists_steps_with_their_variants_in_order(api, crm, crm_viewer):
    campaign = CampaignFactory(
        owner_department=crm, kind="event", trigger={"event_type": "add_to_cart"}, priority=70
    )
    second = CampaignStepFactory(campaign=campaign, position=2, delay_minutes=60 * 24 * 3)
    first = CampaignStepFactory(campaign=campaign, position=1, delay_minutes=60)
    VariantFactory(step=first, label="B", weight=1)
    VariantFactory(
        step=first, label="A", weight=3, content={"ja": {"subject": "件名", "body": "本文"}}
    )
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("campaign-detail", args=[campaign.pk])).json()

    assert [step["id"] for step in body["steps"]] == [first.pk, second.pk]
    assert body["steps"][1]["delay_minutes"] == 4320
    assert [v["label"] for v in body["steps"][0]["variants"]] == ["A", "B"]
    assert body["steps"][0]["variants"][0]["weight"] == 3
    assert body["steps"][0]["variants"][0]["content"]["ja"]["subject"] == "件名"
    assert (body["kind"], body["trigger"], body["priority"]) == (
        "event",
        {"event_type": "add_to_cart"},
        70,
    )
    assert body["status"] == "draft"
    assert {"holdout_percent", "approval_requested_at", "approved_by", "cron"} <= set(body)


def test_campaigns_filter_by_status(api, crm, crm_viewer):
    running = CampaignFactory(owner_department=crm, status="running")
    CampaignFactory(owner_department=crm, status="draft")
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("campaign-list"), {"status": "running"}).json()

    assert [row["id"] for row in body["results"]] == [running.pk]


def _persona(department):
    persona = PersonaFactory(owner_department=department)
    persona.experience_values.set(ExperienceValue.objects.all()[:2])
    return persona


def _journey(department):
    journey = JourneyFactory(owner_department=department)
    StageFactory.create_batch(2, journey=journey)
    return journey


def _campaign(department):
    return VariantFactory(step__campaign__owner_department=department).step.campaign


@pytest.mark.parametrize(
    ("basename", "make", "queries"),
    [
        # session, user, memberships, count, page, experience values
        ("persona", _persona, 6),
        # session, user, memberships, count, page (stage count annotated, persona joined)
        ("journey", _journey, 5),
        ("campaign", _campaign, 5),
    ],
)
def test_list_query_count_does_not_grow_with_rows(
    client, crm, crm_viewer, django_assert_num_queries, basename, make, queries
):
    for _ in range(2):
        make(crm)
    client.force_login(crm_viewer)
    url = reverse(f"{basename}-list")
    client.get(url)  # warm the content-type cache used by the share lookup

    with django_assert_num_queries(queries):
        assert len(client.get(url).json()["results"]) == 2
    for _ in range(3):
        make(crm)
    with django_assert_num_queries(queries):
        assert len(client.get(url).json()["results"]) == 5


@pytest.mark.parametrize(("basename", "make"), [("journey", _journey), ("campaign", _campaign)])
def test_detail_query_count_does_not_grow_with_children(client, crm, crm_viewer, basename, make):
    small = make(crm)
    big = make(crm)
    if basename == "journey":
        StageFactory.create_batch(4, journey=big)
    else:
        for position in range(2, 6):
            VariantFactory(step__campaign=big, step__position=position)
    client.force_login(crm_viewer)
    client.get(reverse(f"{basename}-detail", args=[small.pk]))

    with CaptureQueriesContext(connection) as small_queries:
        client.get(reverse(f"{basename}-detail", args=[small.pk]))
    with CaptureQueriesContext(connection) as big_queries:
        client.get(reverse(f"{basename}-detail", args=[big.pk]))

    assert len(big_queries) == len(small_queries)


# --- status changes ---------------------------------------------------------------------------


def _ready_trigger_campaign(department, **fields):
    campaign = CampaignFactory(
        owner_department=department,
        kind="event",
        trigger={"event_type": "add_to_cart"},
        **fields,
    )
    VariantFactory(
        step__campaign=campaign,
        content={
            "ja": {"subject": "カートに商品が残っています", "body": "{{ customer.family_name }}様"}
        },
    )
    return campaign


def transition(api, campaign, body):
    return api.post(reverse("campaign-transition", args=[campaign.pk]), body, format="json")


def test_an_editor_pauses_a_running_campaign_and_gets_the_new_detail(api, crm, crm_editor):
    campaign = _ready_trigger_campaign(crm, status="running")
    api.force_authenticate(crm_editor)

    response = transition(api, campaign, {"action": "pause"})

    assert response.status_code == 200
    assert response.json()["status"] == "paused"
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert AuditLog.objects.filter(action="campaign.pause", actor=crm_editor).exists()


def test_a_manager_approves_a_draft_trigger_campaign_and_it_runs(api, crm, crm_manager):
    EventTypeFactory(name="add_to_cart")
    campaign = _ready_trigger_campaign(crm)
    api.force_authenticate(crm_manager)

    response = transition(api, campaign, {"action": "approve"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["approved_by"]) == ("running", "crm-manager")
    assert body["approved_at"] is not None


def test_a_rejection_note_reaches_the_audit_log(api, crm, crm_manager):
    campaign = _ready_trigger_campaign(crm, approval_requested_at=timezone.now())
    api.force_authenticate(crm_manager)

    response = transition(api, campaign, {"action": "reject", "note": "English subject?"})

    assert response.status_code == 200
    assert response.json()["approval_requested_at"] is None
    entry = AuditLog.objects.get(action="campaign.reject")
    assert entry.detail["note"] == "English subject?"


@pytest.mark.parametrize("who", ["crm_viewer", "crm_editor"])
def test_viewers_and_editors_cannot_approve(api, request, crm, who):
    campaign = _ready_trigger_campaign(crm)
    api.force_authenticate(request.getfixturevalue(who))

    response = transition(api, campaign, {"action": "approve"})

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_a_viewer_cannot_pause(api, crm, crm_viewer):
    campaign = _ready_trigger_campaign(crm, status="running")
    api.force_authenticate(crm_viewer)

    assert transition(api, campaign, {"action": "pause"}).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_a_department_it_is_shared_with_to_read_cannot_pause_it(api, crm, sales, sales_editor):
    campaign = _ready_trigger_campaign(crm, status="running")
    share_grant(obj=campaign, department=sales, can_edit=False, by=None)
    api.force_authenticate(sales_editor)

    assert api.get(reverse("campaign-detail", args=[campaign.pk])).status_code == 200
    assert transition(api, campaign, {"action": "pause"}).status_code == 403


def test_another_department_gets_404_for_status_changes_and_results(api, crm, sales_editor):
    campaign = _ready_trigger_campaign(crm, status="running")
    api.force_authenticate(sales_editor)

    assert transition(api, campaign, {"action": "pause"}).status_code == 404
    assert api.get(reverse("campaign-results", args=[campaign.pk])).status_code == 404
    assert api.get(reverse("campaign-detail", args=[campaign.pk])).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == "running"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "action"),
        ({"action": "launch"}, "action"),
        ({"action": "approve", "note": 5 * "x" * 101}, "note"),
    ],
)
def test_a_bad_request_names_the_parameter(api, crm, crm_manager, body, field):
    campaign = _ready_trigger_campaign(crm)
    api.force_authenticate(crm_manager)

    response = transition(api, campaign, body)

    assert response.status_code == 400
    assert field in response.json()


def test_a_transition_the_status_does_not_allow_is_a_400_naming_status(api, crm, crm_manager):
    campaign = _ready_trigger_campaign(crm, status="completed")
    api.force_authenticate(crm_manager)

    response = transition(api, campaign, {"action": "pause"})

    assert response.status_code == 400
    assert "status" in response.json()


def test_tokens_read_campaigns_but_cannot_change_their_status(client, crm):
    campaign = _ready_trigger_campaign(crm, status="running")
    _token, secret = api_token_create(name="BI", department=crm, source="bi", by=None)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    listed = client.get(reverse("campaign-list"), **auth)
    changed = client.post(
        reverse("campaign-transition", args=[campaign.pk]),
        {"action": "pause"},
        content_type="application/json",
        **auth,
    )

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [campaign.pk]
    assert changed.status_code in (401, 403)
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_the_browser_session_needs_its_csrf_token_to_change_a_status(crm, crm_editor):
    campaign = _ready_trigger_campaign(crm, status="running")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(crm_editor)

    response = browser.post(
        reverse("campaign-transition", args=[campaign.pk]),
        {"action": "pause"},
        content_type="application/json",
    )

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "running"


# --- results ----------------------------------------------------------------------------------


def test_results_answer_the_funnel_and_the_lift_of_the_results_page(api, crm, crm_viewer):
    campaign = _ready_trigger_campaign(crm, status="running")
    step = campaign.steps.get()
    variant = step.variants.get()
    now = timezone.now()
    for stage in ("sent", "opened", "clicked"):
        stamps = {"sent_at": now}
        if stage in ("opened", "clicked"):
            stamps["opened_at"] = now
        if stage == "clicked":
            stamps["clicked_at"] = now
        DeliveryFactory(step=step, variant=variant, status=stage, **stamps)
    DeliveryFactory(step=step, variant=variant, status="holdout")
    DeliveryFactory(step=step, variant=variant, status="suppressed", reason="no_consent")
    api.force_authenticate(crm_viewer)

    response = api.get(reverse("campaign-results", args=[campaign.pk]))

    assert response.status_code == 200
    body = response.json()
    assert body["funnel"] == {"sent": 3, "delivered": 0, "opened": 2, "clicked": 1, "converted": 0}
    assert (body["total"], body["holdout"]) == (5, 1)
    assert body["outcomes"] == [
        {"status": "suppressed", "label": "Suppressed", "reason": "no_consent", "count": 1}
    ]
    assert set(body["lift"]) >= {"treatment_n", "holdout_n", "difference", "ci_low", "significant"}
    assert body["by_variant"][0]["variant"] == "A"
    assert body["by_variant"][0]["sent"] == 3


# --- deliveries -------------------------------------------------------------------------------


def _delivery(campaign, *, address="hanako@example.jp", **fields):
    step = campaign.steps.first() or CampaignStepFactory(campaign=campaign)
    return DeliveryFactory(step=step, address=address, **fields)


def test_deliveries_list_only_visible_campaigns_newest_first(api, crm, sales, crm_viewer):
    ours = CampaignFactory(owner_department=crm)
    theirs = CampaignFactory(owner_department=sales)
    older, newer = _delivery(ours), _delivery(ours)
    _delivery(theirs)
    api.force_authenticate(crm_viewer)

    body = api.get(reverse("delivery-list")).json()

    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    assert body["results"][0]["campaign"] == ours.pk
    assert "count" not in body  # cursor pages never count a table of millions


def test_deliveries_filter_by_campaign_status_and_customer(api, crm, crm_viewer):
    first, second = CampaignFactory(owner_department=crm), CampaignFactory(owner_department=crm)
    wanted = _delivery(first, status="clicked")
    _delivery(first, status="sent")
    _delivery(second, status="clicked")
    api.force_authenticate(crm_viewer)

    by_both = api.get(reverse("delivery-list"), {"campaign": first.pk, "status": "clicked"})
    by_customer = api.get(reverse("delivery-list"), {"customer": wanted.customer_id})

    assert [row["id"] for row in by_both.json()["results"]] == [wanted.pk]
    assert [row["id"] for row in by_customer.json()["results"]] == [wanted.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"campaign": "x"}, "campaign"),
        ({"status": "lost"}, "status"),
        ({"customer": "1.5"}, "customer"),
    ],
)
def test_a_bad_delivery_filter_is_a_400_naming_it(api, crm_viewer, params, field):
    api.force_authenticate(crm_viewer)

    response = api.get(reverse("delivery-list"), params)

    assert response.status_code == 400
    assert field in response.json()


def test_another_departments_deliveries_are_not_listed_even_when_asked_by_campaign(
    api, crm, sales_editor
):
    campaign = CampaignFactory(owner_department=crm)
    _delivery(campaign)
    api.force_authenticate(sales_editor)

    body = api.get(reverse("delivery-list"), {"campaign": campaign.pk}).json()

    assert body["results"] == []


def test_cursor_pages_walk_every_delivery_once(api, crm, crm_viewer):
    campaign = CampaignFactory(owner_department=crm)
    made = [_delivery(campaign).pk for _ in range(5)]
    api.force_authenticate(crm_viewer)

    seen, url, params = [], reverse("delivery-list"), {"page_size": 2}
    while url:
        body = api.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], None

    assert seen == sorted(made, reverse=True)


def test_addresses_are_masked_without_personal_data_access(api, crm, crm_viewer):
    campaign = CampaignFactory(owner_department=crm)
    _delivery(
        campaign,
        status="failed",
        error="550 5.1.1 <hanako@example.jp>: Recipient address rejected",
    )
    api.force_authenticate(crm_viewer)

    row = api.get(reverse("delivery-list")).json()["results"][0]

    assert row["address"] == "h***@example.jp"
    assert "hanako@" not in row["error"]
    assert "Recipient address rejected" in row["error"]
    assert not AuditLog.objects.filter(action="delivery.view_pii").exists()


def test_personal_data_viewers_see_addresses_and_the_page_is_audited(api, crm, crm_pii_viewer):
    campaign = CampaignFactory(owner_department=crm, channel="sms")
    _delivery(campaign, address="819012345678")
    api.force_authenticate(crm_pii_viewer)

    row = api.get(reverse("delivery-list"), {"campaign": campaign.pk}).json()["results"][0]

    assert row["address"] == "819012345678"
    entry = AuditLog.objects.get(action="delivery.view_pii")
    assert entry.detail == {"filters": {"campaign": str(campaign.pk)}, "rows": 1}


def test_tokens_read_deliveries_masked(client, crm):
    _delivery(CampaignFactory(owner_department=crm))
    _token, secret = api_token_create(name="BI", department=crm, source="bi", by=None)

    response = client.get(reverse("delivery-list"), HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200
    assert response.json()["results"][0]["address"] == "h***@example.jp"


def test_delivery_list_query_count_does_not_grow_with_rows(
    client, crm, crm_viewer, django_assert_num_queries
):
    campaign = CampaignFactory(owner_department=crm)
    for _ in range(2):
        _delivery(campaign)
    client.force_login(crm_viewer)
    url = reverse("delivery-list")
    client.get(url)

    # session, user, memberships, permissions (user, groups), page
    with django_assert_num_queries(6):
        assert len(client.get(url).json()["results"]) == 2
    for _ in range(3):
        _delivery(campaign, variant=VariantFactory(step=campaign.steps.first(), label=f"V{_}"))
    with django_assert_num_queries(6):
        assert len(client.get(url).json()["results"]) == 5


# --- staff tasks ------------------------------------------------------------------------------


def _task(*, assignee, department, status="open", customer=None):
    campaign = CampaignFactory(owner_department=department, channel="staff_task")
    return StaffTask.objects.create(
        campaign=campaign,
        department=department,
        customer=customer or CustomerFactory(family_name="佐藤", given_name="健"),
        assignee=assignee,
        title="新作内覧会のご案内",
        due_at=timezone.now(),
        status=status,
    )


def test_staff_tasks_lists_the_asking_users_own_tasks(api, sales, sales_editor, crm, crm_editor):
    mine = _task(assignee=sales_editor, department=sales)
    done = _task(assignee=sales_editor, department=sales, status="done")
    _task(assignee=crm_editor, department=crm)
    api.force_authenticate(sales_editor)

    every = api.get(reverse("staff-task-list"), {"status": "all"}).json()["results"]
    open_only = api.get(reverse("staff-task-list")).json()["results"]

    assert {row["id"] for row in every} == {mine.pk, done.pk}
    assert [row["id"] for row in open_only] == [mine.pk]
    assert open_only[0]["campaign"]["id"] == mine.campaign_id


def test_staff_task_customer_names_follow_personal_data_access(api, sales, sales_editor):
    _task(assignee=sales_editor, department=sales)
    api.force_authenticate(sales_editor)

    masked = api.get(reverse("staff-task-list")).json()["results"][0]["customer_name"]
    sales_editor.user_permissions.add(Permission.objects.get(codename="view_pii"))
    sales_editor = type(sales_editor).objects.get(pk=sales_editor.pk)
    api.force_authenticate(sales_editor)
    shown = api.get(reverse("staff-task-list")).json()["results"][0]["customer_name"]

    assert masked == "佐***"
    assert shown == "佐藤 健"


@pytest.mark.parametrize("params", [{"status": "later"}, {"scope": "everyone"}])
def test_a_bad_staff_task_parameter_is_a_400_naming_it(api, sales_editor, params):
    api.force_authenticate(sales_editor)

    response = api.get(reverse("staff-task-list"), params)

    assert response.status_code == 400
    assert set(response.json()) == set(params)


def test_staff_tasks_refuse_tokens(client, sales):
    _token, secret = api_token_create(name="BI", department=sales, source="bi", by=None)

    response = client.get(reverse("staff-task-list"), HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code in (401, 403)


# --- anonymous and schema ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "detail"),
    [
        ("get", "campaign-list", False),
        ("get", "campaign-results", True),
        ("post", "campaign-transition", True),
        ("get", "delivery-list", False),
        ("get", "staff-task-list", False),
    ],
)
def test_anonymous_callers_are_refused(api, crm, method, name, detail):
    campaign = _ready_trigger_campaign(crm, status="running")
    url = reverse(name, args=[campaign.pk] if detail else [])

    response = getattr(api, method)(url, {"action": "pause"} if method == "post" else None)

    assert response.status_code in (401, 403)
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_the_schema_describes_campaign_actions_deliveries_and_tasks(client, crm_viewer):
    client.force_login(crm_viewer)

    schema = json.loads(
        client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )

    paths = schema["paths"]
    transition_op = paths["/api/v1/campaigns/{id}/transition/"]["post"]
    examples = transition_op["requestBody"]["content"]["application/json"]["examples"]
    assert "Approve" in examples
    assert {"200", "400", "403", "404"} <= set(transition_op["responses"])
    assert transition_op["security"] == [{"cookieAuth": []}]
    deliveries = paths["/api/v1/deliveries/"]["get"]
    parameters = {parameter["name"] for parameter in deliveries["parameters"]}
    assert {"campaign", "status", "customer", "cursor", "page_size"} <= parameters
    assert {"apiToken": []} in deliveries["security"]
    assert "examples" in deliveries["responses"]["200"]["content"]["application/json"]
    assert "/api/v1/campaigns/{id}/results/" in paths
    assert "/api/v1/staff-tasks/" in paths


def test_one_delivery_is_read_only_from_a_visible_campaign(api, crm, crm_viewer, sales_editor):
    delivery = _delivery(CampaignFactory(owner_department=crm))
    url = reverse("delivery-detail", args=[delivery.pk])

    api.force_authenticate(crm_viewer)
    mine = api.get(url)
    api.force_authenticate(sales_editor)
    theirs = api.get(url)

    assert (mine.status_code, mine.json()["address"]) == (200, "h***@example.jp")
    assert theirs.status_code == 404


def test_another_persons_staff_task_is_not_found(api, sales, sales_editor, crm, crm_editor):
    task = _task(assignee=sales_editor, department=sales)
    url = reverse("staff-task-detail", args=[task.pk])

    api.force_authenticate(sales_editor)
    mine = api.get(url)
    api.force_authenticate(crm_editor)
    theirs = api.get(url)

    assert (mine.status_code, mine.json()["id"]) == (200, task.pk)
    assert theirs.status_code == 404
