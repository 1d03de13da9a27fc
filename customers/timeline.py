"""The unified timeline of the customer 360 page, merged from sources the outer circles register.

Circle ① cannot import events, orders or deliveries (they live further out), so each outer
app registers a *source* at start-up (``experience/timeline.py``, ``journeys/timeline.py``).
A source answers one question: "the newest ``limit`` entries of this customer older than this
cursor". ``timeline_page`` asks every source the same question and merges the answers, so a
page costs one indexed query per source however long the person's history is.

Entries are ordered newest first by ``(at, source, id)``; that triple is unique (ids are
unique per table, one table per source) and is the keyset cursor, so ties on identical
timestamps neither repeat nor skip entries across pages.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.models import Q


class TimelineCursorError(ValueError):
    """A ``before`` cursor that was tampered with or is not one of ours."""


@dataclass(frozen=True, order=True)
class TimelineCursor:
    """Position in the timeline: entries strictly older than this one come next."""

    at: dt.datetime
    source: str
    id: int

    def encode(self) -> str:
        """A short URL-safe token for the "older" link."""
        raw = f"{self.at.isoformat()}|{self.source}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> TimelineCursor:
        """Parse a token made by ``encode``; raise ``TimelineCursorError`` naming the problem."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            at_text, source, id_text = raw.split("|")
            at = dt.datetime.fromisoformat(at_text)
            entry_id = int(id_text)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise TimelineCursorError(f"before: not a timeline position ({token[:40]!r})") from exc
        if at.tzinfo is None:
            raise TimelineCursorError("before: the position carries no time zone")
        if source not in _SOURCES:
            raise TimelineCursorError(f"before: unknown timeline source {source!r}")
        return cls(at=at, source=source, id=entry_id)


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline, already worded for display (in the active language)."""

    at: dt.datetime
    source: str  # registered source name; also the "type" filter value
    id: int  # primary key within the source's table
    kind: str  # finer kind within the source: event type, order status, NPS, task status…
    title: str
    detail: str = ""
    channel: str = ""  # channel code (touchpoint or campaign channel)
    channel_label: str = ""
    department: str = ""  # name of the department owning the touchpoint / campaign / survey
    icon: str = ""  # icon and colour key for the template

    @property
    def cursor(self) -> TimelineCursor:
        return TimelineCursor(at=self.at, source=self.source, id=self.id)


@dataclass(frozen=True)
class TimelineFilters:
    """What the viewer asked to see; ``viewer`` lets sources hide other departments' names."""

    viewer: object = None
    sources: frozenset[str] = field(default_factory=frozenset)  # empty: every source
    channel: str = ""
    department_id: int | None = None


TimelineFetch = Callable[..., list[TimelineEntry]]


@dataclass(frozen=True)
class TimelineSource:
    name: str
    label: object
    fetch: TimelineFetch
    channels: tuple[tuple[str, object], ...] = ()


_SOURCES: dict[str, TimelineSource] = {}


def register_timeline_source(
    name: str,
    fetch: TimelineFetch,
    *,
    label: object | None = None,
    channels: Sequence[tuple[str, object]] = (),
) -> None:
    """Plug a source into the timeline.

    ``fetch(customer_id, *, before: TimelineCursor | None, limit: int, filters:
    TimelineFilters) -> list[TimelineEntry]`` returns at most ``limit`` entries of that
    customer strictly older than ``before`` (use ``cursor_q``), newest first, in ONE
    indexed query, applying ``filters.channel`` and ``filters.department_id`` itself.
    ``channels`` lists the channel codes and labels the source can produce, for the filter.
    Registering the same name again replaces the source (module reloads in tests).
    """
    if "|" in name:
        raise ValueError(f"timeline source name {name!r} must not contain '|'")
    _SOURCES[name] = TimelineSource(
        name=name, label=label or name, fetch=fetch, channels=tuple(channels)
    )


def timeline_sources() -> list[TimelineSource]:
    """Registered sources in a stable order (their names), for the type filter."""
    return [_SOURCES[name] for name in sorted(_SOURCES)]


def timeline_channels() -> list[tuple[str, object]]:
    """Every channel any source can produce, for the channel filter."""
    seen: dict[str, object] = {}
    for source in timeline_sources():
        for code, label in source.channels:
            seen.setdefault(code, label)
    return sorted(seen.items(), key=lambda item: str(item[1]))


def cursor_q(
    before: TimelineCursor | None, *, source: str, at_field: str, id_field: str = "pk"
) -> Q:
    """The keyset condition "older than ``before``" for one source's table.

    Written as ``at <= X AND (…)`` so the database can range-scan the (customer, at) index
    rather than filter row by row.
    """
    if before is None:
        return Q()
    at_le = Q(**{f"{at_field}__lte": before.at})
    if source < before.source:
        return at_le
    if source > before.source:
        return Q(**{f"{at_field}__lt": before.at})
    return at_le & (Q(**{f"{at_field}__lt": before.at}) | Q(**{f"{id_field}__lt": before.id}))


def _sort_key(entry: TimelineEntry) -> tuple:
    return (entry.at, entry.source, entry.id)


def timeline_page(
    customer_id: int,
    *,
    before: TimelineCursor | None = None,
    limit: int = 50,
    filters: TimelineFilters | None = None,
) -> tuple[list[TimelineEntry], TimelineCursor | None]:
    """One page of the customer's timeline, newest first, and the cursor of the next page.

    Each source is asked for ``limit + 1`` entries older than ``before``: the page is the
    newest ``limit`` of their union, and anything left over proves an older page exists.
    """
    filters = filters or TimelineFilters()
    merged: list[TimelineEntry] = []
    for source in timeline_sources():
        if filters.sources and source.name not in filters.sources:
            continue
        merged.extend(source.fetch(customer_id, before=before, limit=limit + 1, filters=filters))
    merged.sort(key=_sort_key, reverse=True)
    page = merged[:limit]
    next_cursor = page[-1].cursor if len(merged) > limit else None
    return page, next_cursor
