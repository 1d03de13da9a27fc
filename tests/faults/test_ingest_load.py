"""The event API under a bounded local load: what it says it stored is what it stored.

A real ``manage.py runserver`` (threaded) on 127.0.0.1 serves ``POST /api/v1/events`` from
the database of the test run (SQLite: a ``VACUUM INTO`` copy; PostgreSQL: the test database).
Eight client threads post 40 batches of 250 events with an API token; the batches repeat
event ids inside themselves and across batches (replays arriving concurrently) and hold a
few invalid items. Afterwards the events stored are exactly the accepted ones (by
``(source, event_id)``), none twice, the duplicates are counted as such, and every invalid
item is named in its response. The rate is printed, not asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from config.org.tokens import api_token_create
from tests.factories import DepartmentFactory, EventTypeFactory
from tests.faults.helpers import Database, kill_cluster, start_server

THREADS = 8
BATCHES = 40
BATCH_SIZE = 250
REPEATS_INSIDE = 5
"""Items per batch repeating an event id of the same batch."""
REPLAYS = 10
"""Items per batch repeating an event of one of the batches posted alongside it."""
INVALID = 3
COOKIES = 300
EMAILS = 50
"""Cookies c-0…c-49 also come with an email: the same person, never a merge of two."""
SEED = 9


def item(n: int, occurred_at: str) -> dict:
    """Event ``e-<n>``, always the same: a replay repeats it exactly."""
    rng = random.Random(f"{SEED}-{n}")
    person = rng.randrange(COOKIES)
    identifiers = {"cookie": f"c-{person}"}
    if person < EMAILS and rng.random() < 0.5:
        identifiers["email"] = f"u{person}@example.jp"
    return {
        "type": "page_view",
        "occurred_at": occurred_at,
        "event_id": f"e-{n}",
        "identifiers": identifiers,
        "properties": {"path": f"/p/{n % 97}"},
    }


def invalid_items(batch: int, occurred_at: str) -> list[dict]:
    return [
        {
            "type": "page_veiw",
            "occurred_at": occurred_at,
            "event_id": f"bad-{batch}-0",
            "identifiers": {"cookie": "c-1"},
        },
        {
            "type": "page_view",
            "occurred_at": occurred_at,
            "event_id": f"bad-{batch}-1",
            "identifiers": {"email": "not-an-email"},
        },
        {"type": "page_view", "event_id": f"bad-{batch}-2", "identifiers": {"cookie": "c-2"}},
    ][:INVALID]


def batches() -> tuple[list[list[dict]], set[str], list[set[int]]]:
    """The batches, the distinct valid event ids in them, and each batch's invalid indexes."""
    rng = random.Random(SEED)
    occurred_at = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    fresh_per_batch = BATCH_SIZE - REPEATS_INSIDE - REPLAYS - INVALID
    made: list[list[dict]] = []
    invalid: list[set[int]] = []
    n = 0
    for batch in range(BATCHES):
        events = []
        for _ in range(fresh_per_batch):
            events.append(item(n, occurred_at))
            n += 1
        events += [dict(rng.choice(events)) for _ in range(REPEATS_INSIDE)]
        # Replays of the batches that run at the same time (the one before, or after).
        partner = batch + 1 if batch % 2 == 0 else batch - 1
        first = partner * fresh_per_batch
        events += [
            item(number, occurred_at)
            for number in rng.sample(range(first, first + fresh_per_batch), REPLAYS)
        ]
        rng.shuffle(events)
        positions = sorted(rng.sample(range(len(events) + INVALID), INVALID))
        for position, bad in zip(positions, invalid_items(batch, occurred_at), strict=True):
            events.insert(position, bad)
        made.append(events)
        invalid.append(set(positions))
    valid_ids = {event["event_id"] for events in made for event in events}
    valid_ids -= {f"bad-{b}-{i}" for b in range(BATCHES) for i in range(INVALID)}
    return made, valid_ids, invalid


def post(url: str, secret: str, events: list[dict]) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read().decode(errors="replace")[:2000]}


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_store_exactly_the_accepted_events_once(tmp_path, capsys):
    EventTypeFactory(name="page_view", property_schema={"path": "string"})
    _token, secret = api_token_create(
        name="Load", department=DepartmentFactory(), source="load", by=None
    )
    made, valid_ids, invalid = batches()
    db = Database(tmp_path)
    db.publish()
    log = tmp_path / "server.log"
    server, url = start_server(db, log)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            responses = list(pool.map(lambda events: post(url, secret, events), made))
        elapsed = time.monotonic() - started
    finally:
        kill_cluster(server)

    failures = [(n, code, body) for n, (code, body) in enumerate(responses) if code != 200]
    assert not failures, (failures[:3], log.read_text()[-3000:])
    accepted = sum(body["accepted"] for _code, body in responses)
    duplicates = sum(body["duplicates"] for _code, body in responses)
    stored = db.rows(
        "SELECT event_id, COUNT(*) FROM experience_event WHERE source = 'load' GROUP BY event_id"
    )
    assert all(count == 1 for _event_id, count in stored)  # none twice
    assert {event_id for event_id, _count in stored} == valid_ids
    assert accepted == len(stored) == len(valid_ids)  # what it said it stored, exactly
    sent_valid = sum(len(events) - INVALID for events in made)
    assert duplicates == sent_valid - accepted
    for n, (_code, body) in enumerate(responses):
        named = {rejection["index"] for rejection in body["rejected"]}
        assert named == invalid[n], (n, body["rejected"])
        assert all(rejection["reason"] for rejection in body["rejected"])
    total = BATCHES * BATCH_SIZE
    with capsys.disabled():
        print(
            f"\n[ingest-load {db.vendor}] {THREADS} threads, {BATCHES}×{BATCH_SIZE} items: "
            f"{accepted} accepted, {duplicates} duplicates, {BATCHES * INVALID} rejected in "
            f"{elapsed:.1f} s ({total / elapsed:.0f} items/s, {accepted / elapsed:.0f} stored/s)"
        )
