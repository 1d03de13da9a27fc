"""Lead scoring from the scoring rules staff define, and the lead stage of prospects.

**Score.** Each active :class:`~journeys.models.ScoringRule` gives ``points`` for every
event of its type whose properties match the rule's (exact matches), fading by
``decay_percent`` per whole week since the event: ``points × (1 − decay/100)^weeks``,
summed over rules and events and rounded. It is a metric source registered with
``customers.metrics.register_metric_source`` (``journeys/apps.py``): the metrics rebuild
joins it as one grouped sub-query per chunk of customers, like circle ②'s sources. The
sources' columns are applied in registration order, and this app is ready after
``experience``, so with rules defined this ``lead_score`` replaces circle ②'s built-in
30-day engagement weighting; without any active rule the built-in score stays.

**Stage.** ``CustomerMetrics.lead_stage`` is not a column a source can fill (the rebuild
computes the lifecycle stage *after* the sources run), so :func:`lead_stages_sync` sets it
afterwards from the score and the lifecycle stage: ``mql`` from
``LEAD_SCORE_MQL_THRESHOLD``, ``lead`` from ``LEAD_SCORE_LEAD_THRESHOLD``, prospects only
(anyone who bought has ``""``). Every change is written as a ``lead_stage_changed`` event,
so a campaign can trigger on it (e.g. a sales task when someone becomes an MQL). It runs
after each ingest for the customers touched (an events listener) and in the tick.

**Decay without new events.** A score falls week by week although nothing happens, so
the tick (:func:`lead_scores_decay`) recomputes, in bounded batches, the prospects with a
non-zero score (and anyone still carrying a lead stage) whose metrics are more than a day
old. The metrics' ``updated_at`` is the mark: no schedule or bookkeeping of its own, a
crash loses nothing, and the work spreads over the day's ticks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Greatest, Round
from django.utils import timezone

from customers.models import CustomerMetrics, LifecycleStage
from experience.models import Event
from journeys.models import ScoringRule

LEAD_STAGE_EVENT = "lead_stage_changed"
LEAD_STAGE_SCHEMA = {"from": "string", "to": "string", "score": "integer"}
STAGE_SOURCE = "lead-scoring"
DECAY_BATCH = 2_000
"""Customers rescored per tick at most (the tick runs every minute)."""
STALE_AFTER = dt.timedelta(days=1)
CHUNK = 5_000
NEGLIGIBLE = 0.01
"""A rule's events older than the week its points fade below this are not read."""


def lead_threshold() -> int:
    return int(getattr(settings, "LEAD_SCORE_LEAD_THRESHOLD", 20))


def mql_threshold() -> int:
    return int(getattr(settings, "LEAD_SCORE_MQL_THRESHOLD", 50))


class WeeksSince(Func):
    """Whole weeks from a timestamp column to a given moment, on SQLite and PostgreSQL."""

    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="CAST(((julianday(%(expressions)s)) / 7) AS INTEGER)",
            arg_joiner=") - julianday(",
        )

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="FLOOR(EXTRACT(EPOCH FROM (%(expressions)s)) / 604800)::integer",
            arg_joiner=" - ",
        )


def _horizon_weeks(rule: ScoringRule) -> int | None:
    """After how many weeks the rule's points no longer matter (``None``: never fade)."""
    if rule.decay_percent <= 0:
        return None
    if rule.decay_percent >= 100:
        return 1
    factor = 1 - rule.decay_percent / 100
    weeks, value = 0, float(abs(rule.points))
    while value >= NEGLIGIBLE and weeks < 10_000:
        value *= factor
        weeks += 1
    return weeks


def _rule_condition(rule: ScoringRule, now: dt.datetime) -> Q:
    condition = Q(event_type_id=rule.event_type_id)
    for key, value in (rule.properties or {}).items():
        condition &= Q(**{f"properties__{key}": value})
    horizon = _horizon_weeks(rule)
    if horizon is not None:
        condition &= Q(occurred_at__gt=now - dt.timedelta(weeks=horizon))
    return condition


def lead_score_metrics(*, scope: dict, now: dt.datetime) -> list[QuerySet]:
    """The metric source: ``lead_score`` per customer of ``scope`` from the active rules."""
    rules = list(ScoringRule.objects.filter(is_active=True).order_by("pk"))
    if not rules:
        return []
    weeks = Greatest(
        WeeksSince(Value(now, output_field=DateTimeField()), F("occurred_at")), Value(0)
    )
    terms = []
    for rule in rules:
        factor = 1 - rule.decay_percent / 100
        faded = Value(float(rule.points)) * Func(
            Value(factor), weeks, function="POWER", output_field=FloatField()
        )
        terms.append(
            Case(
                When(_rule_condition(rule, now), then=faded),
                default=Value(0.0),
                output_field=FloatField(),
            )
        )
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return [
        Event.objects.filter(
            occurred_at__lte=now,
            event_type_id__in={rule.event_type_id for rule in rules},
            **scope,
        )
        .order_by()
        .values("customer_id")
        .annotate(lead_score=Cast(Round(Sum(total, output_field=FloatField())), IntegerField()))
    ]


def lead_stage_expression() -> Case:
    """The lead stage a metrics row should have, as SQL (its customer joined)."""
    return Case(
        When(~Q(customer__lifecycle_stage=LifecycleStage.PROSPECT), then=Value("")),
        When(lead_score__gte=mql_threshold(), then=Value("mql")),
        When(lead_score__gte=lead_threshold(), then=Value("lead")),
        default=Value(""),
        output_field=CharField(),
    )


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def lead_stages_sync(
    *, customer_ids: Collection[int] | None = None, now: dt.datetime | None = None
) -> int:
    """Set the lead stage of these customers (all when ``None``) from score and lifecycle.

    Reads only the rows whose stage is wrong, updates them with one statement per new
    stage, and records a ``lead_stage_changed`` event per change. Returns the changes.
    """
    now = now or timezone.now()
    scopes: Iterable[dict]
    if customer_ids is None:
        scopes = [{}]
    else:
        scopes = [{"customer_id__in": chunk} for chunk in _chunks(sorted(set(customer_ids)))]
    changes: list[tuple[int, str, str, int]] = []
    for scope in scopes:
        rows = list(
            CustomerMetrics.objects.filter(customer__merged_into__isnull=True, **scope)
            .annotate(wanted=lead_stage_expression())
            .exclude(lead_stage=F("wanted"))
            .values_list("customer_id", "lead_stage", "wanted", "lead_score")
        )
        for stage in {row[2] for row in rows}:
            ids = [row[0] for row in rows if row[2] == stage]
            for chunk in _chunks(ids):
                CustomerMetrics.objects.filter(customer_id__in=chunk).update(lead_stage=stage)
        changes += rows
    if changes:
        _record_changes(changes, now)
    return len(changes)


def _record_changes(changes: list[tuple[int, str, str, int]], now: dt.datetime) -> None:
    from experience.event_types import event_type_ensure
    from experience.ingest import events_record

    event_type = event_type_ensure(
        LEAD_STAGE_EVENT,
        description="The lead stage of a prospect changed (lead scoring)",
        schema=LEAD_STAGE_SCHEMA,
    )
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    events_record(
        events=[
            Event(
                customer_id=customer_id,
                event_type=event_type,
                occurred_at=now,
                source=STAGE_SOURCE,
                event_id=f"lead-stage-{customer_id}-{stamp}-{new or 'none'}",
                properties={"from": old, "to": new, "score": int(score)},
            )
            for customer_id, old, new, score in changes
        ]
    )


def lead_scores_decay(*, now: dt.datetime | None = None, limit: int = DECAY_BATCH) -> int:
    """Recompute the scores that fade without new events; returns how many were rescored.

    Prospects with a non-zero score, and anyone still carrying a lead stage (a prospect
    who bought through an import, say), whose metrics are over a day old: at most
    ``limit`` per call, oldest first.
    """
    from customers.metrics import metrics_rebuild

    now = now or timezone.now()
    ids = list(
        CustomerMetrics.objects.filter(updated_at__lt=now - STALE_AFTER)
        .filter(
            Q(customer__lifecycle_stage=LifecycleStage.PROSPECT) & ~Q(lead_score=0)
            | ~Q(lead_stage="")
        )
        .filter(customer__merged_into__isnull=True)
        .order_by("updated_at")
        .values_list("customer_id", flat=True)[:limit]
    )
    if not ids:
        return 0
    metrics_rebuild(customer_ids=ids, now=now)
    lead_stages_sync(customer_ids=ids, now=now)
    return len(ids)


def lead_stages_on_events(touched: Mapping[str, Collection[int]]) -> None:
    """Events listener: the stages of the customers whose metrics were just rebuilt."""
    ids = {int(pk) for values in touched.values() for pk in values}
    if ids:
        lead_stages_sync(customer_ids=ids)
