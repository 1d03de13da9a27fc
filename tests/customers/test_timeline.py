"""The timeline registry: merging sources newest first, keyset pages without gaps or repeats."""

from __future__ import annotations

import datetime as dt

import pytest

from customers import timeline
from customers.timeline import (
    TimelineCursor,
    TimelineCursorError,
    TimelineEntry,
    TimelineFilters,
    register_timeline_source,
    timeline_channels,
    timeline_page,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def fake_source(name: str, stamps: list[dt.datetime], calls: list | None = None):
    """A source over an in-memory list that honours the fetch contract like a query would."""
    rows = [
        TimelineEntry(at=at, source=name, id=index + 1, kind=name, title=f"{name} {index + 1}")
        for index, at in enumerate(stamps)
    ]

    def fetch(customer_id, *, before, limit, filters):
        if calls is not None:
            calls.append((name, before, limit))
        older = [row for row in rows if before is None or row.cursor < before]
        return sorted(older, key=lambda row: (row.at, row.id), reverse=True)[:limit]

    return fetch


@pytest.fixture
def sources(monkeypatch):
    """An empty registry for the test; the real sources come back afterwards."""
    monkeypatch.setattr(timeline, "_SOURCES", {})


def all_pages(limit: int, filters=None) -> list[list[TimelineEntry]]:
    pages, before = [], None
    while True:
        entries, before = timeline_page(1, before=before, limit=limit, filters=filters)
        pages.append(entries)
        if before is None:
            return pages


def test_page_merges_sources_newest_first(sources):
    register_timeline_source("events", fake_source("events", [T0, T0 + dt.timedelta(hours=2)]))
    register_timeline_source("orders", fake_source("orders", [T0 + dt.timedelta(hours=1)]))

    entries, next_cursor = timeline_page(1, limit=10)

    assert [(entry.source, entry.id) for entry in entries] == [
        ("events", 2),
        ("orders", 1),
        ("events", 1),
    ]
    assert next_cursor is None


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_pages_cover_everything_once_even_with_identical_timestamps(sources, limit):
    # Many ties: the same instant in both sources and within each source.
    stamps = [T0 + dt.timedelta(minutes=index // 4) for index in range(23)]
    register_timeline_source("events", fake_source("events", stamps))
    register_timeline_source("orders", fake_source("orders", stamps[:11]))

    pages = all_pages(limit)
    seen = [(entry.source, entry.id) for page in pages for entry in page]

    assert len(seen) == len(set(seen)) == 34
    assert all(len(page) == limit for page in pages[:-1])
    flat = [entry for page in pages for entry in page]
    keys = [(entry.at, entry.source, entry.id) for entry in flat]
    assert keys == sorted(keys, reverse=True)


def test_each_source_is_asked_for_one_more_than_the_page(sources):
    calls: list = []
    register_timeline_source("events", fake_source("events", [T0] * 3, calls))
    register_timeline_source("orders", fake_source("orders", [T0] * 3, calls))

    entries, next_cursor = timeline_page(1, limit=4)

    assert [limit for _name, _before, limit in calls] == [5, 5]
    assert len(entries) == 4
    assert next_cursor == entries[-1].cursor


def test_a_full_last_page_has_no_older_link(sources):
    register_timeline_source("events", fake_source("events", [T0] * 4))

    entries, next_cursor = timeline_page(1, limit=4)

    assert len(entries) == 4
    assert next_cursor is None


def test_type_filter_asks_only_the_chosen_sources(sources):
    calls: list = []
    register_timeline_source("events", fake_source("events", [T0], calls))
    register_timeline_source("orders", fake_source("orders", [T0], calls))

    entries, _cursor = timeline_page(1, filters=TimelineFilters(sources=frozenset({"orders"})))

    assert [entry.source for entry in entries] == ["orders"]
    assert [name for name, _before, _limit in calls] == ["orders"]


def test_cursor_round_trips_and_rejects_garbage(sources):
    register_timeline_source("events", fake_source("events", []))
    cursor = TimelineCursor(at=T0, source="events", id=42)

    assert TimelineCursor.decode(cursor.encode()) == cursor
    with pytest.raises(TimelineCursorError, match="before: not a timeline position"):
        TimelineCursor.decode("!!nonsense")
    with pytest.raises(TimelineCursorError, match="unknown timeline source"):
        TimelineCursor.decode(TimelineCursor(at=T0, source="secrets", id=1).encode())


def test_channel_choices_are_the_union_of_every_source(sources):
    register_timeline_source("events", fake_source("events", []), channels=[("web", "Website")])
    register_timeline_source(
        "deliveries",
        fake_source("deliveries", []),
        channels=[("email", "Email"), ("web", "Website")],
    )

    assert timeline_channels() == [("email", "Email"), ("web", "Website")]


def test_real_sources_are_registered_by_the_outer_apps():
    assert {source.name for source in timeline.timeline_sources()} >= {
        "events",
        "orders",
        "surveys",
        "deliveries",
        "tasks",
    }
