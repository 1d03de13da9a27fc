"""django-q2 tasks of circle ④: thin, idempotent wrappers over the rollup and report
services, and the schedules that run them.

Every task recomputes derived data whole (a day, a cohort table, a campaign's outcome, the
CLV fit) or claims before sending (the weekly e-mail), so a task that runs twice, or two
that overlap, leave the same result.
"""

from __future__ import annotations

ROLLUPS_SCHEDULE = "reports: refresh rollups"
SLOW_ROLLUPS_SCHEDULE = "reports: refresh cohorts and campaign outcomes"
NIGHTLY_SCHEDULE = "reports: nightly re-check of rollups"
CLV_SCHEDULE = "reports: refit predicted customer value"
EMAILS_SCHEDULE = "reports: send report e-mails"
SLOW_ROLLUPS_EVERY_MINUTES = 15
NIGHTLY_DAYS_BACK = 35
NIGHTLY_CRON = "30 2 * * *"  # 02:30 local time (q2 reads cron in settings.TIME_ZONE)
CLV_CRON = "0 3 * * 1"  # Mondays 03:00 local time


def rollups_refresh_task() -> dict:
    """Every minute: fold new raw rows, today and yesterday into the daily rollups."""
    from reports.rollups import rollups_refresh

    return rollups_refresh()


def slow_rollups_task() -> dict:
    """Every 15 minutes: acquisition cohorts (F2), campaign outcomes (lift) and the
    customer-level read models (RFM cells, dormancy snapshots), recomputed whole."""
    from reports.cohorts import cohorts_refresh
    from reports.customer_rollups import customer_rollups_refresh
    from reports.outcomes import campaign_outcomes_refresh

    return {
        "cohorts": cohorts_refresh(),
        "outcomes": campaign_outcomes_refresh(),
        "customers": customer_rollups_refresh(),
    }


def rollups_nightly_task() -> dict:
    """Nightly: recompute the last 35 days of every daily rollup (changes of old rows the
    id watermark cannot see: returns, merges, late commits), then cohorts and outcomes."""
    from reports.rollups import rollups_refresh

    return {"days": rollups_refresh(days_back=NIGHTLY_DAYS_BACK), **slow_rollups_task()}


def clv_refit_task() -> dict:
    """Weekly: refit the predicted customer value model and store new predictions."""
    from reports.predictions import predictions_refresh

    fit = predictions_refresh()
    return {"fit": fit.pk, "customers": fit.customers, "error": fit.error}


def report_emails_task() -> int:
    """Hourly: send the weekly overview to subscriptions due this hour (claimed first)."""
    from reports.subscriptions import report_emails_send_due

    return report_emails_send_due()


def ensure_report_schedules() -> bool:
    """Create (or correct) the q2 schedules of circle ④; idempotent. Returns True when a
    schedule row was created or changed."""
    from django_q.models import Schedule

    from config.schedules import schedule_ensure

    every = {"repeats": -1, "cron": None}
    changed = [
        schedule_ensure(
            ROLLUPS_SCHEDULE,
            func="reports.tasks.rollups_refresh_task",
            schedule_type=Schedule.MINUTES,
            minutes=1,
            **every,
        ),
        schedule_ensure(
            SLOW_ROLLUPS_SCHEDULE,
            func="reports.tasks.slow_rollups_task",
            schedule_type=Schedule.MINUTES,
            minutes=SLOW_ROLLUPS_EVERY_MINUTES,
            **every,
        ),
        schedule_ensure(
            NIGHTLY_SCHEDULE,
            func="reports.tasks.rollups_nightly_task",
            schedule_type=Schedule.CRON,
            cron=NIGHTLY_CRON,
            minutes=None,
            repeats=-1,
        ),
        schedule_ensure(
            CLV_SCHEDULE,
            func="reports.tasks.clv_refit_task",
            schedule_type=Schedule.CRON,
            cron=CLV_CRON,
            minutes=None,
            repeats=-1,
        ),
        schedule_ensure(
            EMAILS_SCHEDULE,
            func="reports.tasks.report_emails_task",
            schedule_type=Schedule.HOURLY,
            minutes=None,
            **every,
        ),
    ]
    return any(changed)
