"""The campaign calendar, staff tasks, and the contact policy and suppression settings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from experience.models import Event
from journeys.models import Campaign, CampaignRun, ContactPolicy, StaffTask, Suppression
from tests.factories import CampaignFactory, CustomerFactory

pytestmark = pytest.mark.django_db

CALENDAR = reverse("journeys:calendar")
TASKS = reverse("journeys:tasks")
POLICY = reverse("journeys:contact_policy")
SUPPRESSIONS = reverse("journeys:suppressions")


# --- calendar --------------------------------------------------------------------------------


def test_calendar_shows_a_scheduled_campaign_on_its_day_but_not_other_departments(
    client, crm, sales, crm_editor
):
    CampaignFactory(
        owner_department=crm,
        name="Friday news",
        status=Campaign.Status.SCHEDULED,
        next_run_at=dt.datetime(2030, 5, 10, 1, 0, tzinfo=dt.UTC),
    )
    CampaignFactory(
        owner_department=sales,
        name="Sales secret",
        status=Campaign.Status.SCHEDULED,
        next_run_at=dt.datetime(2030, 5, 10, 1, 0, tzinfo=dt.UTC),
    )
    client.force_login(crm_editor)

    response = client.get(CALENDAR, {"month": "2030-05"})

    html = response.content.decode()
    cell = html.split('data-date="2030-05-10"')[1].split("</td>")[0]
    assert response.status_code == 200
    assert "May 2030" in html
    assert "Friday news" in cell
    assert "10:00" in cell  # shown in the company time zone
    assert "Sales secret" not in html


def test_calendar_month_navigation_returns_the_partial_for_htmx(client, crm, crm_editor):
    campaign = CampaignFactory(owner_department=crm, name="April run")
    CampaignRun.objects.create(
        campaign=campaign,
        occurrence="r203004010100",
        scheduled_for=dt.datetime(2030, 4, 1, 1, 0, tzinfo=dt.UTC),
        enrolled=120,
    )
    client.force_login(crm_editor)

    response = client.get(CALENDAR, {"month": "2030-04"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "<html" not in html
    assert "April run (120)" in html
    assert "?month=2030-03" in html
    assert "?month=2030-05" in html


def test_calendar_ignores_a_malformed_month(client, crm_editor):
    client.force_login(crm_editor)

    assert client.get(CALENDAR, {"month": "soon"}).status_code == 200


def test_calendar_query_count_is_fixed(client, crm, crm_editor, django_assert_num_queries):
    for day in range(1, 6):
        campaign = CampaignFactory(owner_department=crm)
        CampaignRun.objects.create(
            campaign=campaign,
            occurrence=f"r2030050{day}0100",
            scheduled_for=dt.datetime(2030, 5, day, 1, 0, tzinfo=dt.UTC),
        )
    client.force_login(crm_editor)

    # session, user, roles, runs, upcoming, spans, memberships for the header
    with django_assert_num_queries(7):
        client.get(CALENDAR, {"month": "2030-05"})


# --- staff tasks ---------------------------------------------------------------------------------


def test_my_tasks_list_and_outcome_recording(client, crm, sales, crm_editor):
    customer = CustomerFactory(family_name="Yamada")
    task = StaffTask.objects.create(
        customer=customer, assignee=crm_editor, department=crm, title="Call about the sofa"
    )
    StaffTask.objects.create(customer=customer, department=sales, title="Sales visit")
    client.force_login(crm_editor)

    html = client.get(TASKS).content.decode()
    assert "Call about the sofa" in html
    assert "Sales visit" not in html
    assert "Y***" in html
    assert "Yamada" not in html

    response = client.post(
        reverse("journeys:task_complete", args=[task.pk]),
        {"outcome_code": "visited", "notes": "Liked the blue one", "next": TASKS},
    )

    task.refresh_from_db()
    assert response.status_code == 302
    assert task.status == StaffTask.Status.DONE
    assert task.outcome_code == "visited"
    assert task.outcome == "Liked the blue one"
    assert Event.objects.filter(customer=customer, event_type__name="staff_task_completed").exists()


def test_another_departments_task_cannot_be_completed(client, sales, crm_editor):
    task = StaffTask.objects.create(customer=CustomerFactory(), department=sales, title="x")
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:task_complete", args=[task.pk]), {"outcome_code": "visited"}
    )

    assert response.status_code == 404
    task.refresh_from_db()
    assert task.status == StaffTask.Status.OPEN


def test_department_scope_is_for_managers(client, crm, crm_editor, crm_manager):
    StaffTask.objects.create(
        customer=CustomerFactory(), assignee=crm_editor, department=crm, title="Task of the editor"
    )
    client.force_login(crm_editor)
    assert client.get(TASKS, {"scope": "department"}).status_code == 403

    client.force_login(crm_manager)
    assert "Task of the editor" not in client.get(TASKS).content.decode()
    assert "Task of the editor" in client.get(TASKS, {"scope": "department"}).content.decode()


def test_tasks_query_count_is_fixed(client, crm, crm_editor, django_assert_num_queries):
    for index in range(5):
        StaffTask.objects.create(
            customer=CustomerFactory(), assignee=crm_editor, department=crm, title=f"T{index}"
        )
    client.force_login(crm_editor)

    # session, user, roles, count, page (tasks with customers, campaigns…), the two
    # permission reads of can_view_pii, memberships for the header
    with django_assert_num_queries(8):
        client.get(TASKS)
    StaffTask.objects.create(
        customer=CustomerFactory(), assignee=crm_editor, department=crm, title="One more"
    )
    with django_assert_num_queries(8):
        client.get(TASKS)


# --- settings ------------------------------------------------------------------------------------


def test_settings_are_for_managers_only(client, crm_editor, crm_viewer):
    for user in (crm_editor, crm_viewer):
        client.force_login(user)
        assert client.get(POLICY).status_code == 403
        assert client.get(SUPPRESSIONS).status_code == 403
        assert (
            client.post(SUPPRESSIONS, {"value": "a@example.jp", "reason": "request"}).status_code
            == 403
        )


def test_manager_sees_the_policy_read_only_and_cannot_change_it(client, crm_manager):
    client.force_login(crm_manager)

    html = client.get(POLICY).content.decode()
    assert "Only the administrator changes the policy" in html
    response = client.post(POLICY, {"max_contacts": 99, "window_days": 7})
    assert response.status_code == 403
    assert ContactPolicy.current().max_contacts == 3


def test_administrator_changes_the_policy_and_errors_name_the_field(client, superuser):
    client.force_login(superuser)
    data = {
        "max_contacts": 4,
        "window_days": 7,
        "max_defer_hours": 48,
        "quiet_start": "22:00",
        "quiet_end": "08:00",
        "default_holdout_percent": 10,
        "default_conversion_days": 7,
    }

    assert client.post(POLICY, data).status_code == 302
    policy = ContactPolicy.current()
    assert (policy.max_contacts, policy.quiet_start) == (4, dt.time(22, 0))

    response = client.post(POLICY, {**data, "max_contacts": 500})
    assert response.status_code == 400
    assert response.context["form"].errors["max_contacts"] == ["must be between 1 and 50"]


def test_manager_adds_searches_and_removes_suppressions(client, crm_manager):
    client.force_login(crm_manager)

    response = client.post(
        SUPPRESSIONS, {"channel": "email", "value": " Taro@Example.JP ", "reason": "complaint"}
    )
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert suppression.value == "taro@example.jp"
    Suppression.objects.create(channel="sms", value="0312345678", reason="request")

    html = client.get(SUPPRESSIONS, {"q": "taro"}, headers={"HX-Request": "true"}).content.decode()
    assert "taro@example.jp" in html
    assert "0312345678" not in html

    client.post(reverse("journeys:suppression_remove", args=[suppression.pk]))
    assert not Suppression.objects.filter(pk=suppression.pk).exists()


def test_suppression_form_errors_are_shown(client, crm_manager):
    client.force_login(crm_manager)

    response = client.post(SUPPRESSIONS, {"channel": "email", "value": "", "reason": "request"})

    assert response.status_code == 400
    assert "value" in response.context["form"].errors
