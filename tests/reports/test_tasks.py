"""q2 tasks and schedules of circle ④, and the one ``schedule_ensure`` every circle uses."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from io import StringIO
from pydoc import locate

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from config.schedules import schedule_ensure
from reports import tasks
from reports.models import Cohort, DailyEvents, DailyOrders, RollupState
from reports.rollups import rollups_rebuild
from tests.factories import EventFactory, OrderFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
NAMES = (
    tasks.ROLLUPS_SCHEDULE,
    tasks.SLOW_ROLLUPS_SCHEDULE,
    tasks.NIGHTLY_SCHEDULE,
    tasks.CLV_SCHEDULE,
    tasks.EMAILS_SCHEDULE,
)


def test_ensure_report_schedules_is_idempotent():
    assert tasks.ensure_report_schedules() is True
    assert tasks.ensure_report_schedules() is False

    schedules = {row.name: row for row in Schedule.objects.filter(name__in=NAMES)}
    assert len(schedules) == Schedule.objects.count() == 5
    every_minute = schedules[tasks.ROLLUPS_SCHEDULE]
    assert (every_minute.schedule_type, every_minute.minutes) == (Schedule.MINUTES, 1)
    assert schedules[tasks.SLOW_ROLLUPS_SCHEDULE].minutes == 15
    assert schedules[tasks.EMAILS_SCHEDULE].schedule_type == Schedule.HOURLY
    for row in schedules.values():
        assert row.repeats == -1
        assert callable(locate(row.func)), row.func


def test_the_nightly_and_weekly_runs_are_at_local_times():
    tasks.ensure_report_schedules()

    nightly = Schedule.objects.get(name=tasks.NIGHTLY_SCHEDULE)
    weekly = Schedule.objects.get(name=tasks.CLV_SCHEDULE)

    assert (nightly.schedule_type, nightly.cron) == (Schedule.CRON, "30 2 * * *")
    local = nightly.next_run.astimezone(TOKYO)
    assert (local.hour, local.minute) == (2, 30)
    assert timezone.now() < nightly.next_run <= timezone.now() + dt.timedelta(days=1)
    local = weekly.next_run.astimezone(TOKYO)
    assert (local.isoweekday(), local.hour, local.minute) == (1, 3, 0)


def test_ensure_report_schedules_corrects_an_edited_schedule():
    tasks.ensure_report_schedules()
    Schedule.objects.filter(name=tasks.ROLLUPS_SCHEDULE).update(minutes=30, func="x.y")
    Schedule.objects.filter(name=tasks.NIGHTLY_SCHEDULE).update(
        cron="0 12 * * *", next_run=timezone.now() + dt.timedelta(days=30)
    )

    assert tasks.ensure_report_schedules() is True

    every_minute = Schedule.objects.get(name=tasks.ROLLUPS_SCHEDULE)
    assert (every_minute.minutes, every_minute.func) == (1, "reports.tasks.rollups_refresh_task")
    nightly = Schedule.objects.get(name=tasks.NIGHTLY_SCHEDULE)
    assert nightly.cron == "30 2 * * *"
    assert nightly.next_run.astimezone(TOKYO).hour == 2
    assert nightly.next_run <= timezone.now() + dt.timedelta(days=1)


def test_schedule_ensure_removes_a_duplicate_made_by_a_race():
    wanted = {"func": "reports.tasks.report_emails_task", "schedule_type": Schedule.HOURLY}
    Schedule.objects.create(name="twice", **wanted)
    Schedule.objects.create(name="twice", **wanted)

    assert schedule_ensure("twice", **wanted) is True
    assert schedule_ensure("twice", **wanted) is False
    assert Schedule.objects.filter(name="twice").count() == 1


def test_the_refresh_task_folds_new_rows_in():
    old_day = timezone.localdate() - dt.timedelta(days=12)
    at = dt.datetime.combine(old_day, dt.time(23, 59), tzinfo=TOKYO)
    EventFactory(occurred_at=at)
    rollups_rebuild()
    late = EventFactory(occurred_at=at)  # arrives later, for an old day
    OrderFactory(ordered_at=at, total=1200)

    async_task("reports.tasks.rollups_refresh_task", sync=True)

    assert DailyEvents.objects.get(day=old_day).events == 2
    assert DailyEvents.objects.get(day=old_day).event_type_id == late.event_type_id
    orders = DailyOrders.objects.get(day=old_day)
    assert (orders.orders, orders.revenue, orders.first_orders) == (1, 1200, 1)


def test_the_nightly_task_rechecks_35_days_then_cohorts_and_outcomes():
    OrderFactory(ordered_at=timezone.now() - dt.timedelta(days=3))

    result = tasks.rollups_nightly_task()

    assert result["days"] == dict.fromkeys(("events", "orders", "answers", "deliveries"), 35)
    assert result["cohorts"] >= 1
    assert Cohort.objects.count() >= 1
    assert result["outcomes"] == 0  # no campaigns


def test_the_weekly_and_hourly_tasks_call_their_services(monkeypatch):
    calls = []

    class Fit:
        pk, customers, error = 7, 3, ""

    def refit(**kwargs):
        calls.append(("refit", kwargs))
        return Fit()

    def send(**kwargs):
        calls.append(("send", kwargs))
        return 2

    monkeypatch.setattr("reports.predictions.predictions_refresh", refit)
    monkeypatch.setattr("reports.subscriptions.report_emails_send_due", send)

    assert tasks.clv_refit_task() == {"fit": 7, "customers": 3, "error": ""}
    assert tasks.report_emails_task() == 2
    assert calls == [("refit", {}), ("send", {})]


def test_the_rebuild_command_recomputes_rollups_cohorts_and_outcomes():
    day = timezone.localdate() - dt.timedelta(days=50)
    OrderFactory(ordered_at=dt.datetime.combine(day, dt.time(12), tzinfo=TOKYO), total=900)
    out = StringIO()

    call_command("rebuild_rollups", stdout=out)

    assert DailyOrders.objects.get(day=day).revenue == 900
    assert Cohort.objects.count() == 1
    printed = out.getvalue()
    assert "Daily rollups, every day: events 0, orders 1, answers 0, deliveries 0 rows" in printed
    assert "Cohorts:" in printed
    assert "Campaign outcomes: 0 rows" in printed


def test_the_rebuild_command_refreshes_only_the_last_days():
    old = timezone.localdate() - dt.timedelta(days=50)
    OrderFactory(ordered_at=dt.datetime.combine(old, dt.time(12), tzinfo=TOKYO))
    RollupState.objects.create(name="orders", last_id=10**9)  # as if already folded in
    out = StringIO()

    call_command("rebuild_rollups", "--days", "7", stdout=out)

    assert not DailyOrders.objects.filter(day=old).exists()
    assert "last 7 days: events 7, orders 7, answers 7, deliveries 7 days" in out.getvalue()
    with pytest.raises(CommandError, match="--days"):
        call_command("rebuild_rollups", "--days", "0")


def test_the_rebuild_command_installs_the_schedules():
    out = StringIO()
    call_command("rebuild_rollups", "--install-schedules", stdout=out)
    call_command("rebuild_rollups", "--install-schedules", stdout=out)

    assert out.getvalue().splitlines() == ["Schedules installed.", "Schedules already in place."]
    assert Schedule.objects.filter(name__in=NAMES).count() == 5
