"""django-q2 tasks of circle ①: thin wrappers that re-fetch by id and call a service.

Each is idempotent (a task may run twice): the services act only on a job in the status
they expect.
"""

from __future__ import annotations

from customers.imports import import_job_run, import_job_validate


def validate_import(job_id: int) -> str | None:
    """Validate an uploaded file in full and record its bad rows."""
    job = import_job_validate(job_id=job_id)
    return job.status if job else None


def run_import(job_id: int) -> str | None:
    """Import a validated file, one chunk at a time, queueing a continuation when needed."""
    job = import_job_run(job_id=job_id)
    return job.status if job else None


# --- queueing and derived data (live segment membership) --------------------------------

STALE_SEGMENTS_SCHEDULE = "customers: refresh stale segments"
STALE_SEGMENTS_EVERY_MINUTES = 15


def queue_task(func_path: str, *args, task_name: str | None = None, **kwargs) -> None:
    """Queue a django-q2 task once the current transaction commits.

    It runs inline when ``Q_CLUSTER["sync"]`` is set (tests, single-process demos), and a
    rolled-back transaction queues nothing.
    """
    from django.conf import settings
    from django.db import transaction
    from django_q.tasks import async_task

    sync = bool(settings.Q_CLUSTER.get("sync", False))
    options = {"sync": sync}
    if task_name:
        options["task_name"] = task_name
    transaction.on_commit(lambda: async_task(func_path, *args, **options, **kwargs))


def refresh_customers_derived(customer_ids: list[int], recount: bool = False) -> int:
    """Metrics and live segment membership of customers whose data changed."""
    from customers.services import customers_derived_refresh

    customers_derived_refresh(customer_ids=customer_ids, recount=recount)
    return len(customer_ids)


def refresh_stale_segments(older_than_minutes: int = 60) -> list[int]:
    """Fully recompute the dynamic segments computed longer ago than that (time rules)."""
    import datetime as dt

    from customers.segments import segments_refresh_stale

    return segments_refresh_stale(older_than=dt.timedelta(minutes=older_than_minutes))


def ensure_segment_schedules() -> bool:
    """Create (or correct) the django-q2 schedules of circle ①; idempotent.

    ``refresh_stale_segments`` every 15 minutes and, nightly, ``apply_attribute_retention``.
    Returns True when a schedule row was created or changed.
    """
    from django_q.models import Schedule

    from config.schedules import schedule_ensure

    segments = schedule_ensure(
        STALE_SEGMENTS_SCHEDULE,
        func="customers.tasks.refresh_stale_segments",
        schedule_type=Schedule.MINUTES,
        minutes=STALE_SEGMENTS_EVERY_MINUTES,
        repeats=-1,
    )
    return ensure_retention_schedule() or segments


# --- retention of custom attributes -------------------------------------------------------

RETENTION_SCHEDULE = "customers: attribute retention"
RETENTION_CRON = "15 3 * * *"  # 03:15 local time (q2 reads cron in settings.TIME_ZONE)


def apply_attribute_retention() -> int:
    """Remove the custom attribute values whose retention ran out (nightly); idempotent."""
    from customers.privacy import attribute_retention_apply

    return attribute_retention_apply()


def ensure_retention_schedule() -> bool:
    """Create (or correct) the nightly schedule of ``apply_attribute_retention``; idempotent."""
    from django_q.models import Schedule

    from config.schedules import schedule_ensure

    return schedule_ensure(
        RETENTION_SCHEDULE,
        func="customers.tasks.apply_attribute_retention",
        schedule_type=Schedule.CRON,
        cron=RETENTION_CRON,
        minutes=None,
        repeats=-1,
    )
