"""django-q2 tasks of circle ③: thin, idempotent wrappers over the scheduler and the engine.

A task may run twice (q2 delivers at least once) or two may run at once (a tick that takes
longer than a minute overlaps the next): the engine's unique constraints and claims make
that harmless. Every run is bounded well below the q2 ``timeout``, so the worker is never
killed mid-send by its own cluster; unfinished work continues in a queued follow-up.
"""

from __future__ import annotations

CAMPAIGN_TICK_SCHEDULE = "journeys: campaign tick"
RECONCILE_SCHEDULE = "journeys: reconcile stuck deliveries"
RECONCILE_EVERY_MINUTES = 15


def _budget_seconds() -> float:
    """How long one task may dispatch: half the q2 timeout."""
    from django.conf import settings

    return max(float(settings.Q_CLUSTER.get("timeout", 300)) / 2, 5.0)


def campaigns_tick() -> dict:
    """Everything due now: runs, date and segment triggers, advancing, dispatch (bounded by
    the scheduler so that ticks a minute apart rarely overlap)."""
    from journeys.scheduling import tick

    return tick().as_dict()


def dispatch(campaign_ids: list[int] | None = None) -> dict:
    """Send what is due (of some campaigns); queue a follow-up when time ran out."""
    from customers.tasks import queue_task
    from journeys.engine import deliveries_dispatch

    stats = deliveries_dispatch(campaign_ids=campaign_ids, max_seconds=_budget_seconds())
    if stats.timed_out:
        queue_task("journeys.tasks.dispatch", campaign_ids, task_name="journeys: dispatch (cont.)")
    return stats.as_dict()


def reconcile() -> int:
    """Settle deliveries a crashed worker left ``sending`` (see ``deliveries_reconcile``)."""
    from journeys.engine import deliveries_reconcile

    return deliveries_reconcile()


def ensure_campaign_schedules() -> bool:
    """Create (or correct) the q2 schedules: the tick every minute, reconcile every 15;
    idempotent. Returns True when a schedule row was created or changed."""
    from django_q.models import Schedule

    from config.schedules import schedule_ensure

    tick = schedule_ensure(
        CAMPAIGN_TICK_SCHEDULE,
        func="journeys.tasks.campaigns_tick",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        repeats=-1,
    )
    reconciled = schedule_ensure(
        RECONCILE_SCHEDULE,
        func="journeys.tasks.reconcile",
        schedule_type=Schedule.MINUTES,
        minutes=RECONCILE_EVERY_MINUTES,
        repeats=-1,
    )
    return tick or reconciled
