"""The weekly overview e-mail: subscriptions, the due check, sending through a real SMTP
server, and the page where people manage them."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from config.org.models import Role
from reports.models import ReportSubscription
from reports.rollups import rollups_rebuild
from reports.subscriptions import iso_week, report_emails_send_due, subscription_set
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
MONDAY_0830 = dt.datetime(2026, 11, 16, 8, 30, tzinfo=TOKYO)  # ISO week 2026-W47


@pytest.fixture
def orders():
    """Two orders in the week the Monday e-mail covers (9–15 Nov), one in the week before."""
    for day, total in ((dt.date(2026, 11, 9), 1000), (dt.date(2026, 11, 15), 2500)):
        OrderFactory(total=total, ordered_at=dt.datetime.combine(day, dt.time(23, 59), TOKYO))
    OrderFactory(total=700, ordered_at=dt.datetime(2026, 11, 8, 23, 59, tzinfo=TOKYO))
    OrderFactory(total=9000, ordered_at=dt.datetime(2026, 11, 16, 0, 0, tzinfo=TOKYO))  # today
    rollups_rebuild()


def test_a_user_subscribes_and_changes_their_subscription(crm_viewer):
    first = subscription_set(user=crm_viewer, by=crm_viewer)
    again = subscription_set(user=crm_viewer, weekday=4, hour=17, by=crm_viewer)

    assert again.pk == first.pk
    assert (again.weekday, again.hour, again.is_active, again.created_by) == (
        4,
        17,
        True,
        crm_viewer,
    )
    assert ReportSubscription.objects.count() == 1


def test_only_the_person_their_manager_or_the_administrator_may_subscribe_someone(
    crm, crm_viewer, crm_manager, sales_editor, superuser
):
    with pytest.raises(PermissionDenied):
        subscription_set(user=crm_viewer, by=sales_editor)

    subscription_set(user=crm_viewer, department=crm, by=crm_manager)
    subscription_set(user=sales_editor, by=superuser)

    assert ReportSubscription.objects.filter(user=crm_viewer, department=crm).exists()
    with pytest.raises(PermissionDenied):
        subscription_set(user=sales_editor, by=crm_manager)


def test_an_hour_outside_the_day_is_refused(crm_viewer):
    with pytest.raises(ValidationError):
        subscription_set(user=crm_viewer, hour=24, by=crm_viewer)


def test_the_due_overview_reaches_the_smtp_server_once_even_if_the_task_runs_twice(
    smtp_server, orders, crm_viewer, settings
):
    settings.SITE_URL = "https://circle.example"
    crm_viewer.email = "viewer@example.jp"
    crm_viewer.save()
    subscription = subscription_set(user=crm_viewer, weekday=0, hour=8, by=crm_viewer)

    assert report_emails_send_due(now=MONDAY_0830) == 1
    assert report_emails_send_due(now=MONDAY_0830 + dt.timedelta(minutes=30)) == 0

    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ["viewer@example.jp"]
    assert "2026-11-09" in mail.message["Subject"]
    assert "2026-11-15" in mail.message["Subject"]
    # 2 orders (¥3,500) against 1 (¥700), counted from the rows above by hand.
    assert "- Orders: 2 (+1)" in mail.text
    assert "- Revenue: ¥3,500 (+¥2,800)" in mail.text
    assert (
        "https://circle.example/reports/overview/?period=custom&start=2026-11-09&end=2026-11-15"
        in mail.text
    )
    assert 'data-metric="orders"' in mail.html
    assert "¥3,500" in mail.html
    subscription.refresh_from_db()
    assert subscription.last_period == iso_week(MONDAY_0830.date()) == "2026-W47"


def test_nothing_is_due_before_the_hour_on_another_day_or_when_stopped(smtp_server, crm_viewer):
    crm_viewer.email = "viewer@example.jp"
    crm_viewer.save()
    subscription_set(user=crm_viewer, weekday=0, hour=8, by=crm_viewer)

    assert report_emails_send_due(now=MONDAY_0830 - dt.timedelta(hours=1)) == 0
    assert report_emails_send_due(now=MONDAY_0830 + dt.timedelta(days=1)) == 0
    subscription_set(user=crm_viewer, weekday=0, hour=8, active=False, by=crm_viewer)
    assert report_emails_send_due(now=MONDAY_0830) == 0
    assert smtp_server.messages == []


def test_a_refused_recipient_is_released_and_retried_the_others_still_go(
    smtp_server, crm_viewer, sales_editor
):
    crm_viewer.email = "viewer@example.jp"
    crm_viewer.save()
    sales_editor.email = "gone@example.jp"
    sales_editor.save()
    subscription_set(user=crm_viewer, by=crm_viewer)
    refused = subscription_set(user=sales_editor, by=sales_editor)
    smtp_server.refuse("gone@example.jp")

    assert report_emails_send_due(now=MONDAY_0830) == 1

    refused.refresh_from_db()
    assert (refused.last_period, refused.last_sent_at) == ("", None)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["viewer@example.jp"]]
    smtp_server.handler.refuse.clear()
    assert report_emails_send_due(now=MONDAY_0830 + dt.timedelta(hours=1)) == 1
    assert report_emails_send_due(now=MONDAY_0830 + dt.timedelta(days=7)) == 2  # next week


def test_a_department_subscription_summarises_that_department(smtp_server, crm, crm_viewer):
    crm_viewer.email = "viewer@example.jp"
    crm_viewer.save()
    subscription_set(user=crm_viewer, department=crm, by=crm_viewer)

    report_emails_send_due(now=MONDAY_0830)

    [mail] = smtp_server.messages
    assert crm.name in mail.message["Subject"]
    assert "New profiles" not in mail.text  # company-wide: not a department's figure
    assert f"department={crm.pk}" in mail.text


# --- The page -----------------------------------------------------------------------------


def test_the_overview_offers_the_weekly_email_and_one_click_subscribes(client, crm, crm_viewer):
    client.force_login(crm_viewer)
    page = client.get(reverse("reports:report", args=["overview"]), {"department": crm.pk})
    assert "E-mail me this every week" in page.content.decode()

    response = client.post(reverse("reports:subscriptions"), {"department": crm.pk})

    assert response.status_code == 302
    subscription = ReportSubscription.objects.get()
    assert (
        subscription.user,
        subscription.department,
        subscription.weekday,
        subscription.hour,
    ) == (
        crm_viewer,
        crm,
        0,
        8,
    )


def test_a_manager_subscribes_a_member_and_sees_their_subscription(client, crm_manager, crm_viewer):
    client.force_login(crm_manager)

    client.post(reverse("reports:subscriptions"), {"user": crm_viewer.pk, "weekday": 2, "hour": 9})
    html = client.get(reverse("reports:subscriptions")).content.decode()

    assert ReportSubscription.objects.get().user == crm_viewer
    assert "crm-viewer" in html


def test_a_member_cannot_subscribe_someone_else_or_stop_their_email(
    client, crm_viewer, sales_editor
):
    other = subscription_set(user=sales_editor, by=sales_editor)
    client.force_login(crm_viewer)

    response = client.post(reverse("reports:subscriptions"), {"user": sales_editor.pk})
    assert response.status_code == 400
    assert "sales-editor" not in client.get(reverse("reports:subscriptions")).content.decode()
    toggle = client.post(reverse("reports:subscription_toggle", args=[other.pk]))
    assert toggle.status_code == 404


def test_stop_and_start_again(client, crm_viewer):
    subscription = subscription_set(user=crm_viewer, by=crm_viewer)
    client.force_login(crm_viewer)

    client.post(reverse("reports:subscription_toggle", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.is_active is False
    client.post(reverse("reports:subscription_toggle", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert subscription.is_active is True


def test_anonymous_visitors_are_sent_to_login(client):
    assert client.get(reverse("reports:subscriptions")).status_code == 302


def test_a_manager_of_another_department_does_not_reach_my_subscription(client, crm_viewer, sales):
    manager = UserFactory(username="sales-manager", department=sales, department__role=Role.MANAGER)
    mine = subscription_set(user=crm_viewer, by=crm_viewer)
    client.force_login(manager)

    assert client.post(reverse("reports:subscription_toggle", args=[mine.pk])).status_code == 404
