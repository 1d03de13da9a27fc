"""The database fails in the middle of an import: nothing of the failing chunk is stored.

No mocks: a trigger created by the test makes the database itself refuse a marked row
(SQLite ``RAISE(ABORT, …)``, PostgreSQL a plpgsql exception), halfway through the file.
The import runs through its services (create → validate → run) as the q2 tasks run it.
Afterwards the job is ``failed`` with a message naming the cause, the people, identities,
consents, orders and metrics of the failing chunk are absent, rows imported before are as
they were; once the trigger is dropped, the same job imported again completes, each person
and order once.
"""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection

from customers import imports
from customers.imports import (
    import_job_validate,
    import_job_validate_start,
)
from customers.models import (
    Consent,
    ConsentChange,
    Customer,
    CustomerMetrics,
    Identity,
    ImportJob,
)
from experience.models import Order, OrderLine
from tests.factories import ProductFactory, completed_import, validated_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp")]

MARK = "Boom"
FAULT = "injected fault"
CUSTOMERS_HEADER = "メールアドレス,電話番号,会員番号,姓,名,セイ,メイ,生年月日,メール配信\n"
ORDERS_HEADER = "注文番号,メールアドレス,電話番号,注文日時,合計,商品コード,数量,単価\n"


@contextlib.contextmanager
def refusing(table: str, column: str, value: str):
    """While the block runs, the database refuses to insert or update a row of ``table``
    whose ``column`` is ``value`` (the error aborts the statement that wrote it)."""
    quoted = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for event in ("INSERT", "UPDATE"):
                cursor.execute(
                    f"CREATE TRIGGER fault_{event.lower()} BEFORE {event} ON {quoted(table)} "
                    f"WHEN NEW.{quoted(column)} = '{value}' "
                    f"BEGIN SELECT RAISE(ABORT, '{FAULT}'); END"
                )
        else:
            cursor.execute(
                "CREATE FUNCTION fault_raise() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{FAULT}'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER fault_write BEFORE INSERT OR UPDATE ON {quoted(table)} "
                f"FOR EACH ROW WHEN (NEW.{quoted(column)} = '{value}') "
                "EXECUTE FUNCTION fault_raise()"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("DROP TRIGGER fault_insert")
                cursor.execute("DROP TRIGGER fault_update")
            else:
                cursor.execute(f"DROP TRIGGER fault_write ON {quoted(table)}")
                cursor.execute("DROP FUNCTION fault_raise()")


def again(job: ImportJob) -> ImportJob:
    """What a user does with a failed job: validate it again, then import it again."""
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    job = import_job_validate(job_id=job.pk)
    assert job.status == ImportJob.Status.VALID
    return completed_import(job)


def person(n: int, *, given: str = "", consent: str = "はい") -> str:
    return (
        f"p{n}@example.jp,,P{n:03d},山田,{given or f'名{n}'},ヤマダ,ハナコ,1990/01/02,{consent}\n"
    )


def snapshot() -> dict:
    """Everything an import of customers or orders could have written."""
    return {
        "customers": sorted(
            Customer.objects.values_list("pk", "given_name", "family_name", "birth_date")
        ),
        "identities": sorted(Identity.objects.values_list("kind", "value", "customer_id")),
        "consents": sorted(Consent.objects.values_list("customer_id", "channel", "status")),
        "consent_changes": ConsentChange.objects.count(),
        "metrics": sorted(
            CustomerMetrics.objects.values_list(
                "customer_id", "identity_count", "order_count", "revenue_total"
            )
        ),
        "orders": sorted(Order.objects.values_list("number", "customer_id", "total")),
        "order_lines": OrderLine.objects.count(),
    }


def emails_once(count: int) -> None:
    """Each of p0…p<count-1> is one person, with one identity per kind."""
    owners = dict(
        Identity.objects.filter(kind="email").values_list("value", "customer_id").order_by()
    )
    assert {f"p{n}@example.jp" for n in range(count)} <= set(owners)
    assert len({owners[f"p{n}@example.jp"] for n in range(count)}) == count
    assert Customer.objects.filter(pk__in=owners.values()).count() == len(set(owners.values()))


def test_a_database_error_mid_file_stores_nothing_of_the_file_and_a_rerun_completes(crm):
    earlier = completed_import(
        validated_import(CUSTOMERS_HEADER + person(0) + person(1), kind="customers", department=crm)
    )
    assert earlier.status == ImportJob.Status.DONE
    before = snapshot()
    # Row 2 changes person 0 (name, consent withdrawn); row 5 is the one the database refuses.
    rows = [person(0, given="変更", consent="いいえ"), person(2), person(3)]
    rows += [person(4, given=MARK), person(5), person(6)]
    job = validated_import(CUSTOMERS_HEADER + "".join(rows), kind="customers", department=crm)

    with refusing("customers_customer", "given_name", MARK):
        job = completed_import(job)

    assert job.status == ImportJob.Status.FAILED
    failure = job.result["failure"]
    assert "after row 1" in failure, failure
    assert FAULT in failure, failure
    assert job.finished_at is not None
    assert snapshot() == before  # nothing of the file, and person 0 untouched

    job = again(job)

    assert job.status == ImportJob.Status.DONE, job.result
    emails_once(7)
    assert Customer.objects.count() == 7
    assert Customer.objects.get(identities__value="p0@example.jp").given_name == "変更"
    assert Customer.objects.get(identities__value="p4@example.jp").given_name == MARK
    withdrawn = Consent.objects.get(customer__identities__value="p0@example.jp")
    assert withdrawn.status == Consent.Status.WITHDRAWN


def test_a_failing_later_chunk_keeps_the_chunks_before_it_whole(crm, monkeypatch):
    monkeypatch.setattr(imports, "CHUNK_SIZE", 2)
    rows = [person(n, given=MARK if n == 4 else "") for n in range(6)]
    job = validated_import(CUSTOMERS_HEADER + "".join(rows), kind="customers", department=crm)

    with refusing("customers_customer", "given_name", MARK):
        job = completed_import(job)

    assert job.status == ImportJob.Status.FAILED
    assert "after row 5" in job.result["failure"]  # rows 2–5 (two chunks) were stored
    assert job.result["checkpoint_row"] == 5
    assert job.processed_rows == 4
    emails_once(4)
    assert Customer.objects.count() == 4
    assert not Identity.objects.filter(value__in=["p4@example.jp", "p5@example.jp"]).exists()
    assert Consent.objects.count() == 4

    job = again(job)

    assert job.status == ImportJob.Status.DONE
    emails_once(6)
    assert Customer.objects.count() == 6
    assert Consent.objects.count() == 6


def test_a_database_error_in_an_orders_file_leaves_no_order_and_no_metric(crm):
    ProductFactory(sku="ROSE", price=1500)
    completed_import(validated_import(CUSTOMERS_HEADER + person(0), department=crm))
    completed_import(
        validated_import(
            ORDERS_HEADER + "W-0,p0@example.jp,,2026/11/20 10:00,1500,ROSE,1,1500\n",
            kind="orders",
            department=crm,
        )
    )
    before = snapshot()
    assert [(n, total) for n, _, total in before["orders"]] == [("W-0", 1500)]
    orders = (
        "W-1,p0@example.jp,,2026/11/21 10:00,3000,ROSE,2,1500\n"
        "W-2,new@example.jp,,2026/11/21 11:00,1500,ROSE,1,1500\n"
        f"{MARK},p0@example.jp,,2026/11/21 12:00,1500,ROSE,1,1500\n"
        "W-3,p0@example.jp,,2026/11/21 13:00,1500,ROSE,1,1500\n"
    )
    job = validated_import(ORDERS_HEADER + orders, kind="orders", department=crm)

    with refusing("experience_order", "number", MARK):
        job = completed_import(job)

    assert job.status == ImportJob.Status.FAILED
    assert FAULT in job.result["failure"]
    assert snapshot() == before  # no order, line, new person or metric change

    job = again(job)

    assert job.status == ImportJob.Status.DONE
    assert sorted(Order.objects.values_list("number", flat=True)) == [
        "Boom",
        "W-0",
        "W-1",
        "W-2",
        "W-3",
    ]
    metrics = CustomerMetrics.objects.get(customer__identities__value="p0@example.jp")
    assert (metrics.order_count, metrics.revenue_total) == (4, 7500)
