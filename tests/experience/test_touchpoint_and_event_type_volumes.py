"""Volumes on the touchpoint detail and event-type pages: right buckets, few queries.

The weekly counts are conditional counts between local Monday midnights (no per-row week
truncation) and the per-type volumes group on ``event_type_id + 0`` (so SQLite scans the
recent part of the covering time index, not the whole log): these pin that the buckets
are the same local weeks as before and that each figure stays one query.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from experience.event_types import event_types_with_volume
from experience.selectors import touchpoint_detail_figures
from tests.factories import EventFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 17, 3, 0, tzinfo=dt.UTC)  # Wednesday 12:00 in Tokyo
# Whole pages, session and user included (B4 measures them at 1M: keep them this cheap).
PAGE_QUERIES = {"touchpoint": 15, "event_types": 7}


def _local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=timezone.get_current_timezone())


def test_weeks_split_at_local_monday_midnight(crm):
    touchpoint = TouchpointFactory(owner_department=crm)
    this_monday = _local(2026, 6, 15)
    EventFactory(touchpoint=touchpoint, occurred_at=this_monday)  # this week
    EventFactory(touchpoint=touchpoint, occurred_at=this_monday - dt.timedelta(seconds=1))
    EventFactory(touchpoint=touchpoint, occurred_at=this_monday - dt.timedelta(weeks=11))
    EventFactory(  # one second before the oldest week shown
        touchpoint=touchpoint,
        occurred_at=this_monday - dt.timedelta(weeks=11, seconds=1),
    )
    EventFactory(occurred_at=this_monday)  # another touchpoint

    weeks = touchpoint_detail_figures(touchpoint, now=NOW)["weeks"]

    assert [week["start"] for week in weeks][-2:] == [dt.date(2026, 6, 8), dt.date(2026, 6, 15)]
    assert weeks[-1]["n"] == 1
    assert weeks[-2]["n"] == 1
    assert weeks[0] == {"start": dt.date(2026, 3, 30), "n": 1}
    assert sum(week["n"] for week in weeks) == 3


def test_detail_figures_stay_four_queries(crm, django_assert_num_queries):
    touchpoint = TouchpointFactory(owner_department=crm)
    EventFactory.create_batch(3, touchpoint=touchpoint, occurred_at=NOW - dt.timedelta(days=2))

    with django_assert_num_queries(4):
        figures = touchpoint_detail_figures(touchpoint, now=NOW)

    assert sum(week["n"] for week in figures["weeks"]) == 3


def test_event_type_volumes_count_the_last_days_in_two_queries(django_assert_num_queries):
    now = timezone.now()
    recent = EventFactory(
        occurred_at=now - dt.timedelta(days=1), event_type__name="recent"
    ).event_type
    EventFactory(event_type=recent, occurred_at=now - dt.timedelta(days=2))
    EventFactory(event_type=recent, occurred_at=now - dt.timedelta(days=40))
    old = EventFactory(occurred_at=now - dt.timedelta(days=40), event_type__name="old").event_type

    with django_assert_num_queries(2):
        types = {
            event_type.pk: event_type.recent_events for event_type in event_types_with_volume()
        }

    assert types[recent.pk] == 2
    assert types[old.pk] == 0


def test_touchpoint_detail_page_query_count_is_pinned(
    client, crm, crm_editor, django_assert_num_queries
):
    touchpoint = TouchpointFactory(owner_department=crm)
    EventFactory.create_batch(3, touchpoint=touchpoint)
    client.force_login(crm_editor)
    url = reverse("experience:touchpoint", args=[touchpoint.pk])
    client.get(url)

    with django_assert_num_queries(PAGE_QUERIES["touchpoint"]):
        response = client.get(url)

    assert response.status_code == 200


def test_event_types_page_query_count_is_pinned(client, crm_editor, django_assert_num_queries):
    EventFactory.create_batch(3, event_type__name="page_view")
    client.force_login(crm_editor)
    url = reverse("experience:event_types")
    client.get(url)

    with django_assert_num_queries(PAGE_QUERIES["event_types"]):
        response = client.get(url)

    assert response.status_code == 200
