"""Presence in a persona or journey room, and the change feed a polling page reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from journeys.maps.presence import (
    PALETTE,
    PRESENCE_TTL,
    changes_since,
    editors_of,
    latest_revision_id,
    presence_leave,
    presence_list,
    presence_touch,
    room_for,
)
from journeys.models import Presence, Revision
from tests.factories import JourneyFactory, PersonaFactory, StageFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def revision(**kwargs) -> Revision:
    return Revision.objects.create(**{"action": Revision.Action.EDIT, "field": "name", **kwargs})


# --- rooms and presence -------------------------------------------------------------------


def test_a_stage_lives_in_its_journeys_room():
    stage = StageFactory()
    assert room_for(stage) == f"journey-{stage.journey_id}"
    assert room_for(stage.journey) == f"journey-{stage.journey_id}"
    persona = stage.journey.persona
    assert room_for(persona) == f"persona-{persona.pk}"


def test_touch_keeps_one_row_per_person_and_room_and_updates_it():
    user = UserFactory()
    presence_touch(room="journey-1", user=user, now=NOW)
    presence_touch(
        room="journey-1", user=user, cell="stage-3-actions", now=NOW + dt.timedelta(seconds=2)
    )
    presence_touch(room="persona-1", user=user, now=NOW)

    row = Presence.objects.get(room="journey-1", user=user)
    assert (row.cell, row.seen_at) == ("stage-3-actions", NOW + dt.timedelta(seconds=2))
    assert Presence.objects.filter(user=user).count() == 2


def test_touch_after_the_first_is_a_single_update(django_assert_num_queries):
    user = UserFactory()
    presence_touch(room="journey-1", user=user, now=NOW)
    with django_assert_num_queries(1):
        presence_touch(room="journey-1", user=user, cell="journey-1-name", now=NOW)


def test_touch_racing_another_first_touch_updates_instead(monkeypatch):
    """Two tabs' first polls: the other tab inserted after our UPDATE found no row."""
    user = UserFactory()
    Presence.objects.create(room="journey-1", user=user, seen_at=NOW)  # the other tab's row
    update = QuerySet.update
    calls = []

    def update_missing_the_row_once(self, **kwargs):
        calls.append(kwargs)
        return 0 if len(calls) == 1 else update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", update_missing_the_row_once)
    later = NOW + dt.timedelta(seconds=1)
    presence_touch(room="journey-1", user=user, cell="journey-1-name", now=later)

    row = Presence.objects.get(room="journey-1", user=user)
    assert (row.cell, row.seen_at, len(calls)) == ("journey-1-name", later, 2)


def test_touch_rejects_a_room_name_longer_than_the_column():
    with pytest.raises(ValueError, match="room"):
        presence_touch(room="x" * 41, user=UserFactory())


def test_list_shows_only_people_seen_within_the_ttl_ordered_by_name():
    fresh = UserFactory(username="zed", first_name="Ann", last_name="Lee")
    other = UserFactory(username="bob")
    gone = UserFactory(username="carl")
    presence_touch(room="journey-1", user=fresh, now=NOW - dt.timedelta(seconds=1))
    presence_touch(room="journey-1", user=other, cell="stage-2-thoughts", now=NOW)
    presence_touch(room="journey-1", user=gone, now=NOW - PRESENCE_TTL - dt.timedelta(seconds=1))
    presence_touch(room="journey-2", user=UserFactory(), now=NOW)

    visitors = presence_list("journey-1", now=NOW)

    assert [v.name for v in visitors] == ["Ann Lee", "bob"]
    ann, bob = visitors
    assert (ann.user_id, ann.initials, ann.cell) == (fresh.pk, "AL", "")
    assert (bob.initials, bob.cell) == ("B", "stage-2-thoughts")
    assert ann.colour == PALETTE[fresh.pk % len(PALETTE)]


def test_list_is_one_query(django_assert_num_queries):
    for _ in range(3):
        presence_touch(room="journey-1", user=UserFactory(), now=NOW)
    with django_assert_num_queries(1):
        assert len(presence_list("journey-1", now=NOW)) == 3


def test_initials_come_from_the_username_parts_without_a_name():
    user = UserFactory(username="sales-editor")
    presence_touch(room="persona-1", user=user)
    assert presence_list("persona-1")[0].initials == "SE"


def test_colour_is_stable_per_person():
    user = UserFactory()
    presence_touch(room="persona-1", user=user)
    presence_touch(room="persona-2", user=user)
    assert presence_list("persona-1")[0].colour == presence_list("persona-2")[0].colour


def test_leave_removes_the_person_at_once():
    user, other = UserFactory(), UserFactory()
    presence_touch(room="journey-1", user=user)
    presence_touch(room="journey-1", user=other)
    presence_leave(room="journey-1", user=user)
    assert [v.user_id for v in presence_list("journey-1")] == [other.pk]


def test_editors_of_a_cell_exclude_the_asking_user_and_other_cells():
    me, typing, elsewhere, stale = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    cell = "stage-4-actions"
    presence_touch(room="journey-1", user=me, cell=cell, now=NOW)
    presence_touch(room="journey-1", user=typing, cell=cell, now=NOW)
    presence_touch(room="journey-1", user=elsewhere, cell="stage-4-thoughts", now=NOW)
    presence_touch(room="journey-1", user=stale, cell=cell, now=NOW - dt.timedelta(minutes=1))

    assert [v.user_id for v in editors_of("journey-1", cell, exclude_user=me, now=NOW)] == [
        typing.pk
    ]
    assert {v.user_id for v in editors_of("journey-1", cell, now=NOW)} == {me.pk, typing.pk}
    assert editors_of("journey-1", "", exclude_user=me, now=NOW) == []


def test_inactive_users_are_not_shown():
    user = UserFactory(is_active=False)
    presence_touch(room="journey-1", user=user)
    assert presence_list("journey-1") == []


# --- change feed --------------------------------------------------------------------------


def test_latest_revision_id_is_zero_without_revisions():
    stage = StageFactory()
    assert latest_revision_id(stage.journey) == 0
    assert latest_revision_id(stage.journey.persona) == 0


def test_changes_since_covers_the_journey_and_its_stages_oldest_first():
    stage = StageFactory()
    journey = stage.journey
    author = UserFactory()
    first = revision(journey=journey, author=author)
    second = revision(journey=journey, stage=stage, field="actions", author=author)
    third = revision(journey=journey, stage=stage, field="thoughts")

    assert changes_since(journey, after_id=0) == [first, second, third]
    assert changes_since(journey, after_id=first.pk) == [second, third]
    assert changes_since(stage, after_id=first.pk) == [second, third]
    assert changes_since(journey, after_id=third.pk) == []
    assert latest_revision_id(journey) == third.pk
    assert latest_revision_id(stage) == third.pk


def test_changes_since_never_shows_another_rooms_revisions():
    journey, other = JourneyFactory(), JourneyFactory()
    other_stage = StageFactory(journey=other)
    mine = revision(journey=journey)
    revision(journey=other)
    revision(journey=other, stage=other_stage, field="actions")
    revision(persona=journey.persona)

    assert changes_since(journey, after_id=0) == [mine]
    assert latest_revision_id(journey) == mine.pk


def test_persona_room_changes_exclude_its_journeys():
    persona = PersonaFactory()
    journey = JourneyFactory(persona=persona)
    own = revision(persona=persona, field="goals")
    revision(journey=journey)
    revision(persona=PersonaFactory())

    assert changes_since(persona, after_id=0) == [own]
    assert latest_revision_id(persona) == own.pk


def test_changes_since_selects_authors(django_assert_num_queries):
    journey = JourneyFactory()
    for _ in range(3):
        revision(journey=journey, author=UserFactory())
    with django_assert_num_queries(1):
        names = [r.author.username for r in changes_since(journey, after_id=0)]
    assert len(names) == 3


def test_default_now_is_the_current_time():
    user = UserFactory()
    presence_touch(room="journey-9", user=user)
    assert Presence.objects.get(user=user).seen_at <= timezone.now()
    assert presence_list("journey-9", now=timezone.now() + PRESENCE_TTL * 2) == []
