"""The follow-up of stored events: owed as rows, drained by one task per batch window."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from experience import pipeline
from experience.ingest import events_ingest
from experience.models import EventFollowUp
from experience.tasks import process_stored_events
from tests.factories import EventTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def registry():
    EventTypeFactory(name="page_view", property_schema={"path": "string"})
    EventTypeFactory(name="add_to_cart", property_schema={"sku": "string"})


@pytest.fixture
def queued(monkeypatch):
    """The tasks queued (their function paths), instead of the queue."""
    calls: list[str] = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append(func)
    )
    return calls


@pytest.fixture
def processed(monkeypatch):
    """The ``touched`` mappings the follow-up work ran with, instead of running it."""
    calls: list[dict] = []

    def record(touched):
        calls.append({name: set(ids) for name, ids in touched.items()})
        return {pk for ids in touched.values() for pk in ids}

    monkeypatch.setattr(pipeline, "process_stored_events", record)
    return calls


def batch(cookie: str, type_name: str = "page_view") -> list[dict]:
    return [
        {
            "type": type_name,
            "occurred_at": (timezone.now() - dt.timedelta(minutes=1)).isoformat(),
            "identifiers": {"cookie": cookie},
        }
    ]


def ingest(items):
    return events_ingest(items=items, source="web", department=None)


def test_batches_owe_one_row_each_and_queue_one_drain(django_capture_on_commit_callbacks, queued):
    with django_capture_on_commit_callbacks(execute=True):
        first = ingest(batch("c-1"))
    with django_capture_on_commit_callbacks(execute=True):
        second = ingest(batch("c-2", "add_to_cart"))

    rows = list(EventFollowUp.objects.order_by("pk").values_list("touched", flat=True))
    assert rows == [
        {"page_view": first.customer_ids},
        {"add_to_cart": second.customer_ids},
    ]
    assert queued == [pipeline.DRAIN_TASK]


def test_drain_runs_the_merged_follow_up_once_and_deletes_the_rows(
    django_capture_on_commit_callbacks, queued, processed
):
    first = ingest(batch("c-1"))
    second = ingest(batch("c-2"))
    third = ingest(batch("c-1", "add_to_cart"))

    with django_capture_on_commit_callbacks(execute=True):
        assert process_stored_events() == 2

    assert processed == [
        {
            "page_view": {first.customer_ids[0], second.customer_ids[0]},
            "add_to_cart": {third.customer_ids[0]},
        }
    ]
    assert not EventFollowUp.objects.exists()
    assert queued == []  # nothing left: no next drain


def test_drain_queues_the_next_when_rows_remain(
    django_capture_on_commit_callbacks, queued, processed
):
    for number in range(3):
        ingest(batch(f"c-{number}"))

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.follow_ups_drain(limit=2)

    assert EventFollowUp.objects.count() == 1
    assert queued == [pipeline.DRAIN_TASK]


def test_failed_follow_up_keeps_its_rows(monkeypatch):
    ingest(batch("c-1"))

    def fail(touched):
        raise RuntimeError("worker died")

    monkeypatch.setattr(pipeline, "process_stored_events", fail)
    with pytest.raises(RuntimeError):
        pipeline.follow_ups_drain()

    assert EventFollowUp.objects.count() == 1


def test_a_batch_queues_again_when_the_queued_drain_is_overdue(
    django_capture_on_commit_callbacks, queued
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest(batch("c-1"))
    overdue = timezone.now() - pipeline.FOLLOW_UP_WINDOW - dt.timedelta(seconds=1)
    EventFollowUp.objects.update(created_at=overdue)

    with django_capture_on_commit_callbacks(execute=True):
        ingest(batch("c-2"))
    with django_capture_on_commit_callbacks(execute=True):
        ingest(batch("c-3"))

    assert queued == [pipeline.DRAIN_TASK, pipeline.DRAIN_TASK]


def test_tasks_queued_with_touched_ids_still_run_them(processed):
    assert process_stored_events({"page_view": [7]}) == 1
    assert processed == [{"page_view": {7}}]


def test_follow_up_happens_inline_when_the_queue_is_synchronous(
    tasks_inline, django_capture_on_commit_callbacks, processed
):
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(batch("c-1"))

    assert processed == [{"page_view": set(result.customer_ids)}]
    assert not EventFollowUp.objects.exists()
