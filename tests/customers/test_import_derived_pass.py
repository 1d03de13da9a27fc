"""An import's derived data: metrics per chunk, segment membership once after the last chunk.

People new to the company get their metrics rows inserted directly (identifier count, no
orders); known people given a new identifier are rebuilt. Dynamic segment membership of
everyone written is evaluated once, after the last chunk, from id ranges kept with the
checkpoint: an interrupted final pass is finished by the next run of the job, and a job
that fails on a later chunk still gives the earlier chunks their membership.
"""

from __future__ import annotations

import pytest

from customers import imports, segments
from customers.imports import (
    DERIVED_KEY,
    import_job_run_start,
    merge_id_ranges,
    run_pending_import,
)
from customers.models import Customer, CustomerMetrics, ImportJob, Segment, SegmentMembership
from customers.segments import segment_refresh
from tests.factories import (
    CustomerFactory,
    IdentityFactory,
    SegmentFactory,
    completed_import,
    validated_import,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

HEADER = "メールアドレス,電話番号,会員番号,姓,名,都道府県\n"


def tokyo() -> Segment:
    segment = SegmentFactory(
        kind=Segment.Kind.DYNAMIC,
        rules={"type": "profile", "field": "prefecture", "value": ["東京都"]},
    )
    segment_refresh(segment=segment)
    return segment


def members(segment: Segment) -> set[str]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list(
            "customer__identities__value", flat=True
        )
    )


def row(n: int, prefecture: str = "東京都", *, phone: str = "") -> str:
    return f"p{n}@example.jp,{phone},P{n:03d},山田,花子,{prefecture}\n"


def test_new_people_get_default_metrics_and_known_people_given_an_identifier_are_rebuilt(crm):
    known = CustomerFactory()
    IdentityFactory(customer=known, kind="email", value="p0@example.jp")
    job = completed_import(validated_import(HEADER + row(0) + row(1) + row(2), department=crm))

    assert job.status == ImportJob.Status.DONE
    assert DERIVED_KEY not in job.result
    counts = dict(CustomerMetrics.objects.values_list("customer_id", "identity_count"))
    # p0 was known by email and gained the POS member ID; p1 and p2 are new (email + POS).
    assert counts[known.pk] == 2
    new = Customer.objects.exclude(pk=known.pk)
    assert {counts[pk] for pk in new.values_list("pk", flat=True)} == {2}
    fresh = CustomerMetrics.objects.filter(customer__in=new)
    assert set(fresh.values_list("order_count", "revenue_total", "event_count", "rfm_recency")) == {
        (0, 0, 0, None)
    }
    assert set(new.values_list("lifecycle_stage", flat=True)) == {"prospect"}


def test_segment_membership_is_evaluated_once_after_the_last_chunk(crm, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    segment = tokyo()
    calls: list[list[int]] = []
    original = segments.segment_membership_sync

    def counting(*, customer_ids, recount=False):
        calls.append(list(customer_ids))
        return original(customer_ids=customer_ids, recount=recount)

    monkeypatch.setattr(segments, "segment_membership_sync", counting)
    rows = [row(n, "東京都" if n % 2 == 0 else "大阪府") for n in range(6)]
    job = completed_import(validated_import(HEADER + "".join(rows), department=crm))

    assert job.status == ImportJob.Status.DONE
    assert len(calls) == 1  # three chunks, one pass
    assert members(segment) == {
        "p0@example.jp",
        "p2@example.jp",
        "p4@example.jp",
        "P000",
        "P002",
        "P004",
    }
    segment.refresh_from_db()
    assert segment.member_count == 3


def test_an_interrupted_final_pass_is_finished_by_the_next_run(crm, monkeypatch):
    segment = tokyo()
    original = segments.segment_membership_sync

    def crash(**kwargs):
        raise KeyboardInterrupt  # the worker dies between the last chunk and the pass

    monkeypatch.setattr(segments, "segment_membership_sync", crash)
    job = validated_import(HEADER + row(0) + row(1, "大阪府"), department=crm)
    job = import_job_run_start(job=job, skip_invalid_rows=False, by=None, queue=False)
    with pytest.raises(KeyboardInterrupt):
        run_pending_import(job=job)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.IMPORTING
    assert job.result[DERIVED_KEY]
    assert Customer.objects.count() == 2
    assert not members(segment)

    monkeypatch.setattr(segments, "segment_membership_sync", original)
    job = run_pending_import(job=job)

    assert job.status == ImportJob.Status.DONE
    assert DERIVED_KEY not in job.result
    assert members(segment) == {"p0@example.jp", "P000"}
    assert job.result["counts"]["profiles_created"] == 2


def test_a_failing_later_chunk_still_gives_the_earlier_chunks_their_membership(crm, monkeypatch):
    from tests.faults.test_import_db_error import refusing

    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    segment = tokyo()
    rows = [row(n) for n in range(4)] + ["p4@example.jp,,P004,Boom,花子,東京都\n"]
    job = validated_import(HEADER + "".join(rows), department=crm)

    with refusing("customers_customer", "family_name", "Boom"):
        job = completed_import(job)

    assert job.status == ImportJob.Status.FAILED
    assert len({value for value in members(segment) if value.endswith("example.jp")}) == 4
    assert DERIVED_KEY not in job.result


def test_id_ranges_stay_few_however_scattered_the_ids(monkeypatch):
    assert merge_id_ranges([], [5, 1, 2, 3, 9]) == [[1, 3], [5, 5], [9, 9]]
    assert merge_id_ranges([[1, 3], [9, 9]], [4, 8, 20]) == [[1, 4], [8, 9], [20, 20]]
    monkeypatch.setattr(imports, "MAX_DERIVED_RANGES", 3)
    merged = merge_id_ranges([], [1, 10, 11, 30, 100, 101, 102])
    assert len(merged) == 3
    covered = {pk for low, high in merged for pk in range(low, high + 1)}
    assert {1, 10, 11, 30, 100, 101, 102} <= covered
