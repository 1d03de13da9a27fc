"""Who is in a persona or journey right now, and what changed there since a client's last poll.

An open page polls every 1.5 s: each poll upserts the visitor's ``Presence`` row (one cheap
UPDATE once the row exists) and asks for the revisions after the last id it has seen. A row
older than ``PRESENCE_TTL`` means the person has left (closed the tab, lost the network), so
nobody has to say goodbye for the presence bar to be right. The table, not the cache, holds
presence so that every web process sees every other's visitors.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys.models import Journey, Persona, Presence, Revision, Stage

PRESENCE_TTL = dt.timedelta(seconds=8)  # polls come every 1.5 s: five missed polls = gone

# Distinct, readable on white and on the app's dark header; one per user, chosen by id.
PALETTE = (
    "#2a6f97",
    "#c44536",
    "#2d6a4f",
    "#8e5572",
    "#b5651d",
    "#5a4fcf",
    "#00798c",
    "#6b705c",
)

_ROOM_MAX = Presence._meta.get_field("room").max_length
_CELL_MAX = Presence._meta.get_field("cell").max_length
_NAME_PARTS = re.compile(r"[\s._@+-]+")


@dataclass(frozen=True)
class Visitor:
    """One person in a room, as the presence bar and the soft-lock warning show them."""

    user_id: int
    name: str
    initials: str
    cell: str
    colour: str


def room_for(record) -> str:
    """The live room of a record: ``"journey-5"`` or ``"persona-3"``; a stage lives in its
    journey's room, since the journey page shows all its stages."""
    if isinstance(record, Persona):
        return f"persona-{record.pk}"
    if isinstance(record, Journey):
        return f"journey-{record.pk}"
    if isinstance(record, Stage):
        return f"journey-{record.journey_id}"
    raise TypeError(f"No live room for {type(record).__name__}.")


def _check(room: str, cell: str) -> None:
    if not room or len(room) > _ROOM_MAX:
        raise ValueError(f"room: expected 1 to {_ROOM_MAX} characters, got {room!r}.")
    if len(cell) > _CELL_MAX:
        raise ValueError(f"cell: expected at most {_CELL_MAX} characters.")


def presence_touch(*, room: str, user, cell: str = "", now=None) -> None:
    """Mark the user present in the room (and editing ``cell``, blank: just viewing).

    One UPDATE on every poll after the first; the first poll INSERTs, and two first polls
    racing each other (two tabs) meet the unique constraint, so the loser updates instead.
    """
    _check(room, cell)
    now = now or timezone.now()
    rows = Presence.objects.filter(room=room, user=user)
    if rows.update(seen_at=now, cell=cell):
        return
    try:
        with transaction.atomic():
            Presence.objects.create(room=room, user=user, cell=cell, seen_at=now)
    except IntegrityError:
        rows.update(seen_at=now, cell=cell)


def presence_leave(*, room: str, user) -> None:
    """Forget the user in the room at once (page closed), rather than after the TTL."""
    Presence.objects.filter(room=room, user=user).delete()


def _initials(user) -> str:
    """Given and family name's first letters, else the first letters of the username's parts."""
    names = [part for part in (user.first_name.strip(), user.last_name.strip()) if part]
    if not names:
        names = [part for part in _NAME_PARTS.split(user.username) if part] or [user.username]
    return "".join(name[0] for name in names[:2]).upper()


def colour_for(user_id: int) -> str:
    """A stable colour per person, so the same face has the same colour on every page."""
    return PALETTE[user_id % len(PALETTE)]


def _visitor(presence: Presence) -> Visitor:
    user = presence.user
    return Visitor(
        user_id=user.pk,
        name=user.get_full_name().strip() or user.username,
        initials=_initials(user),
        cell=presence.cell,
        colour=colour_for(user.pk),
    )


def presence_list(room: str, *, now=None) -> list[Visitor]:
    """Everyone seen in the room within ``PRESENCE_TTL``, ordered by name (one query)."""
    now = now or timezone.now()
    rows = (
        Presence.objects.filter(room=room, seen_at__gte=now - PRESENCE_TTL, user__is_active=True)
        .select_related("user")
        .only(
            "cell",
            "user__id",
            "user__username",
            "user__first_name",
            "user__last_name",
        )
    )
    return sorted((_visitor(row) for row in rows), key=lambda v: (v.name.casefold(), v.user_id))


def editors_of(room: str, cell: str, *, exclude_user=None, now=None) -> list[Visitor]:
    """The others editing ``cell`` in the room right now: the soft lock warns, never blocks."""
    if not cell:
        return []
    excluded = getattr(exclude_user, "pk", exclude_user)
    return [
        visitor
        for visitor in presence_list(room, now=now)
        if visitor.cell == cell and visitor.user_id != excluded
    ]


def _room_revisions(record):
    """The revisions of a record's room: a journey's (its stages' included) or a persona's."""
    if isinstance(record, Persona):
        return Revision.objects.filter(persona_id=record.pk, journey__isnull=True)
    if isinstance(record, Journey):
        return Revision.objects.filter(journey_id=record.pk)
    if isinstance(record, Stage):
        return Revision.objects.filter(journey_id=record.journey_id)
    raise TypeError(f"No revisions for {type(record).__name__}.")


def latest_revision_id(record) -> int:
    """The newest revision id of the record's room, 0 when none: a page's ``since``."""
    return _room_revisions(record).order_by("-id").values_list("id", flat=True).first() or 0


def changes_since(record, *, after_id: int) -> list[Revision]:
    """The room's revisions after ``after_id``, oldest first, with their authors."""
    return list(
        _room_revisions(record)
        .filter(id__gt=after_id)
        .select_related("author", "stage")
        .order_by("id")
    )
