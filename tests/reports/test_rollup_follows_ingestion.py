"""The events rollup follows ingestion in the worker that processes stored events, so a
report is seconds behind new events, not up to the next minute of the schedule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django.utils import timezone

from experience.pipeline import _LISTENERS, process_stored_events
from reports.models import DailyEvents, RollupState
from reports.rollups import events_rollup_follow, rollups_rebuild, rollups_refresh
from tests.factories import CustomerFactory, EventFactory, EventTypeFactory

pytestmark = pytest.mark.django_db


def _today() -> int:
    day = timezone.localdate()
    return DailyEvents.objects.filter(day=day).aggregate(n=Sum("events"))["n"] or 0


def test_the_listener_is_registered():
    assert events_rollup_follow in _LISTENERS


def test_processing_stored_events_folds_them_into_todays_events_rollup(
    django_capture_on_commit_callbacks,
):
    view = EventTypeFactory(name="page_view")
    customer = CustomerFactory()
    rollups_refresh()
    before = _today()
    EventFactory.create_batch(3, customer=customer, event_type=view, occurred_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        process_stored_events({"page_view": [customer.pk]})

    assert _today() == before + 3
    mark = RollupState.objects.get(name="events").last_id
    assert mark == max(customer.events.values_list("pk", flat=True))


def test_the_follow_up_equals_a_full_rebuild(django_capture_on_commit_callbacks):
    view = EventTypeFactory(name="page_view")
    customer = CustomerFactory()
    rollups_refresh()
    EventFactory.create_batch(2, customer=customer, event_type=view, occurred_at=timezone.now())
    EventFactory(
        customer=customer, event_type=view, occurred_at=timezone.now() - dt.timedelta(days=40)
    )
    with django_capture_on_commit_callbacks(execute=True):
        events_rollup_follow({"page_view": [customer.pk]})
    followed = sorted(DailyEvents.objects.values_list("day", "events"))
    rollups_rebuild()
    assert followed == sorted(DailyEvents.objects.values_list("day", "events"))


def test_nothing_touched_does_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert events_rollup_follow({}) == 0
