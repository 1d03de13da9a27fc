"""Reads of circle ②: headline figures and the touchpoint list, scoped by department."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from config.org.services import share_grant
from experience.models import Touchpoint
from experience.selectors import experience_headline, touchpoint_list
from tests.factories import EventFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


def test_headline_counts_visible_active_touchpoints_and_recent_events(crm, sales, crm_editor):
    now = timezone.now()
    TouchpointFactory(owner_department=crm)
    TouchpointFactory(owner_department=crm, is_active=False)
    TouchpointFactory(owner_department=sales)
    shared = TouchpointFactory(owner_department=sales)
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    EventFactory.create_batch(2, occurred_at=now - dt.timedelta(days=1))
    EventFactory(occurred_at=now - dt.timedelta(days=31))

    headline = experience_headline(crm_editor, since=now - dt.timedelta(days=30))

    assert headline == {"touchpoints_active": 2, "events_30d": 2}


def test_list_shows_own_and_shared_touchpoints_only(crm, sales, crm_editor):
    own = TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=sales, name="Sales visits")
    shared = TouchpointFactory(owner_department=sales, name="Flagship store")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)

    rows = touchpoint_list(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert set(rows) == {own, shared}


def test_list_is_grouped_by_kind_and_counts_recent_events_per_touchpoint(crm, crm_editor):
    now = timezone.now()
    TouchpointFactory(owner_department=crm, kind=Touchpoint.Kind.APP, channel="app")
    store = TouchpointFactory(
        owner_department=crm, kind=Touchpoint.Kind.OFFLINE, channel=Touchpoint.Channel.STORE
    )
    web = TouchpointFactory(owner_department=crm, kind=Touchpoint.Kind.ONLINE)
    EventFactory.create_batch(3, touchpoint=web, occurred_at=now - dt.timedelta(days=2))
    EventFactory(touchpoint=web, occurred_at=now - dt.timedelta(days=40))
    EventFactory(touchpoint=store, occurred_at=now - dt.timedelta(days=40))

    rows = list(touchpoint_list(crm_editor, since=now - dt.timedelta(days=30)))

    assert [(row.kind, row.recent_event_count) for row in rows] == [
        (Touchpoint.Kind.ONLINE, 3),
        (Touchpoint.Kind.OFFLINE, 0),
        (Touchpoint.Kind.APP, 0),
    ]
