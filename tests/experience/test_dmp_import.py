"""DMP signal imports: rows → dmp_signal events of DMP-ID profiles → detected situations."""

from __future__ import annotations

import io

import pytest

from customers.identity import resolve_customers
from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import Customer, Identity, ImportJob, LifeEvent
from experience.importers_dmp import DMP_IMPORT_KIND, DMP_SOURCE
from experience.models import Event
from experience.situations import SITUATION_EVENT, default_situation_rules

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

HEADER = "dmp_id,signal,score,observed_at\n"


def validate(text: str, department) -> ImportJob:
    job = import_job_create(
        file=io.BytesIO(text.encode()),
        original_name="signals.csv",
        kind=DMP_IMPORT_KIND,
        source="dmp",
        department=department,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    return import_job_validate(job_id=job.pk)


def run(job: ImportJob, capture) -> ImportJob:
    with capture(execute=True):  # the after-ingest pipeline runs once the chunk commits
        return run_pending_import(
            job=import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
        )


def test_the_columns_are_guessed(crm):
    job = validate(HEADER + "D-1,wedding,0.9,2026-11-01T10:00+09:00\n", crm)
    assert job.mapping == {
        "dmp_id": "dmp_id",
        "signal": "signal",
        "score": "score",
        "observed_at": "observed_at",
    }
    assert job.status == ImportJob.Status.VALID


def test_each_row_becomes_a_signal_event_and_unknown_ids_new_profiles(
    crm, django_capture_on_commit_callbacks
):
    job = validate(
        HEADER
        + "D-1,Wedding,0.9,2026-11-01T10:00+09:00\n"
        + "D-2,competitor:hanaya,0.4,2026/11/02 09:30\n",
        crm,
    )
    job = run(job, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.DONE
    events = Event.objects.filter(event_type__name="dmp_signal", source=DMP_SOURCE)
    assert sorted(e.properties["signal"] for e in events) == ["competitor:hanaya", "wedding"]
    identities = Identity.objects.filter(kind="dmp").select_related("customer")
    assert {i.value for i in identities} == {"D-1", "D-2"}
    for identity in identities:  # a new profile known by nothing but its DMP ID
        assert identity.customer.identities.count() == 1
        assert identity.customer.full_name == ""


def test_importing_the_same_file_twice_stores_nothing_new(crm, django_capture_on_commit_callbacks):
    text = HEADER + "D-1,moving,0.7,2026-11-01T10:00+09:00\n"
    run(validate(text, crm), django_capture_on_commit_callbacks)
    run(validate(text, crm), django_capture_on_commit_callbacks)
    assert Event.objects.filter(event_type__name="dmp_signal").count() == 1


def test_signals_are_detected_as_situations_by_the_rules(crm, django_capture_on_commit_callbacks):
    default_situation_rules(crm)
    job = validate(HEADER + "D-7,wedding,0.9,2026-11-20T10:00+09:00\n", crm)
    run(job, django_capture_on_commit_callbacks)

    customer = Identity.objects.get(kind="dmp", value="D-7").customer
    life_event = LifeEvent.objects.get(customer=customer)
    assert (life_event.kind, life_event.department) == ("marriage", crm)
    assert life_event.confidence == pytest.approx(0.8)
    assert Event.objects.filter(customer=customer, event_type__name=SITUATION_EVENT).exists()


def test_an_anonymous_dmp_profile_merges_when_the_person_identifies(
    crm, django_capture_on_commit_callbacks
):
    default_situation_rules(crm)
    run(
        validate(HEADER + "D-9,job_change,0.8,2026-11-20T10:00+09:00\n", crm),
        django_capture_on_commit_callbacks,
    )
    anonymous = Identity.objects.get(kind="dmp", value="D-9").customer_id
    (known,) = resolve_customers(people=[{"email": "hanako@example.jp"}], source="test")

    (winner,) = resolve_customers(
        people=[{"email": "hanako@example.jp", "dmp": "D-9"}], source="test"
    )

    assert winner in {known, anonymous}
    loser = ({known, anonymous} - {winner}).pop()
    assert Customer.objects.get(pk=loser).merged_into_id == winner
    assert Event.objects.filter(customer_id=winner, event_type__name="dmp_signal").exists()
    assert LifeEvent.objects.filter(customer_id=winner, kind="job_change").exists()


def test_bad_rows_name_their_row_and_column(crm):
    job = validate(
        HEADER
        + ",wedding,0.9,2026-11-01T10:00+09:00\n"
        + "D-2,,0.5,2026-11-01T10:00+09:00\n"
        + "D-3,moving,1.5,2026-11-01T10:00+09:00\n"
        + "D-4,moving,high,2026-11-01T10:00+09:00\n"
        + "D-5,moving,0.5,yesterday\n"
        + "D-6,moving,0.5,2001-01-01T10:00+09:00\n",
        crm,
    )

    assert job.status == ImportJob.Status.INVALID
    errors = sorted(job.row_errors.values_list("row", "column"))
    assert errors == [
        (2, "dmp_id"),
        (3, "signal"),
        (4, "score"),
        (5, "score"),
        (6, "observed_at"),
        (7, "observed_at"),
    ]
    assert not Event.objects.exists()
