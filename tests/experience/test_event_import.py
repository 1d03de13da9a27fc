"""The CSV import of offline events: the ingest checks per row, the same idempotent store."""

from __future__ import annotations

import io

import pytest

from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import Identity, ImportJob
from experience.models import Event
from tests.factories import EventTypeFactory, IdentityFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

HEADER = "type,occurred_at,event_id,会員番号,email,touchpoint,prop_minutes,prop_staffed,values\n"
GOOD = (
    "store_visit,2026/11/20 10:00,v-1,M-001,,ginza,25,true,reassurance\n"
    "store_visit,2026-11-20T11:00:00+09:00,v-2,,hanako@example.jp,ginza,,0,\n"
)


@pytest.fixture(autouse=True)
def _setup(media_in_tmp, crm):
    EventTypeFactory(
        name="store_visit", property_schema={"minutes": "integer", "staffed": "boolean"}
    )
    TouchpointFactory(code="ginza", owner_department=crm)


def validated(data: str, department, source="pos-nightly") -> ImportJob:
    job = import_job_create(
        file=io.BytesIO(data.encode()),
        original_name="visits.csv",
        kind="events",
        source=source,
        department=department,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    return import_job_validate(job_id=job.pk)


def imported(job: ImportJob, *, skip=False) -> ImportJob:
    job = import_job_run_start(job=job, skip_invalid_rows=skip, by=None, queue=False)
    return run_pending_import(job=job)


def test_mapping_is_guessed_including_identifier_and_property_columns(crm):
    job = validated(HEADER + GOOD, crm)
    assert job.mapping == {
        "type": "type",
        "occurred_at": "occurred_at",
        "event_id": "event_id",
        "会員番号": "pos",
        "email": "email",
        "touchpoint": "touchpoint",
        "prop_minutes": "prop_minutes",
        "prop_staffed": "prop_staffed",
        "values": "values",
    }


def test_valid_file_is_stored_with_typed_properties(crm):
    member = IdentityFactory(kind=Identity.Kind.POS, value="M-001").customer

    job = imported(validated(HEADER + GOOD, crm))

    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"]["events_stored"] == 2
    first = Event.objects.get(event_id="v-1")
    assert first.customer == member
    assert first.source == "pos-nightly"
    assert first.properties == {"minutes": 25, "staffed": True}
    assert first.value_bits == 8  # reassurance
    assert first.occurred_at.isoformat() == "2026-11-20T01:00:00+00:00"  # read as Japan time
    assert Event.objects.get(event_id="v-2").properties == {"staffed": False}


def test_importing_the_same_file_again_stores_nothing(crm):
    imported(validated(HEADER + GOOD, crm))

    again = imported(validated(HEADER + GOOD, crm))

    assert again.result["counts"]["events_stored"] == 0
    assert again.result["counts"]["events_duplicate"] == 2
    assert Event.objects.count() == 2


def test_bad_rows_are_reported_by_row_and_column(crm):
    bad = (
        "store_visit,2026/11/20 12:00,v-3,M-002,,ginza,twenty,true,\n"  # row 4
        "store_walk,2026/11/20 12:00,v-4,M-003,,ginza,,,\n"  # row 5
        "store_visit,someday,v-5,,not-an-email,nowhere,,,joy\n"  # row 6
        "store_visit,2026/11/20 12:00,v-6,,,ginza,,,\n"  # row 7
    )
    job = validated(HEADER + GOOD + bad, crm)

    assert job.status == ImportJob.Status.INVALID
    errors = {(e.row, e.column) for e in job.row_errors.all()}
    assert errors == {
        (4, "prop_minutes"),
        (5, "type"),
        (6, "occurred_at"),
        (6, "email"),
        (6, "touchpoint"),
        (6, "values"),
        (7, ""),
    }
    reasons = {e.row: e.reason for e in job.row_errors.filter(row__in=[4, 5])}
    assert "whole number" in reasons[4]
    assert "unknown event type 'store_walk'" in reasons[5]


def test_skipping_bad_rows_stores_the_good_ones(crm):
    job = validated(HEADER + GOOD + "store_walk,2026/11/20 12:00,v-9,M-9,,,,,\n", crm)

    job = imported(job, skip=True)

    assert job.status == ImportJob.Status.DONE
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["v-1", "v-2"]


def test_properties_json_column(crm):
    data = 'type,occurred_at,pos,properties\nstore_visit,2026/11/20 10:00,M-1,"{""minutes"": 5}"\n'
    job = imported(validated(data, crm))
    assert job.status == ImportJob.Status.DONE
    assert Event.objects.get().properties == {"minutes": 5}

    bad = validated("type,occurred_at,pos,properties\nstore_visit,2026/11/20 10:00,M-1,[1]\n", crm)
    assert [(e.row, e.column) for e in bad.row_errors.all()] == [(2, "properties")]
