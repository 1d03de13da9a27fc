"""The orders importer: lines grouped by order number, SKUs checked, totals equal to lines."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import Identity, ImportJob
from experience.importers import parse_ordered_at
from experience.models import Order
from tests.factories import IdentityFactory, ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "注文番号,メールアドレス,電話番号,注文日時,合計,商品コード,数量,単価\n"
GOOD = (
    "W-1,hanako@example.jp,,2026/11/22 10:00 JST,5000,ROSE,2,1500\n"
    "W-1,hanako@example.jp,,2026/11/22 10:00 JST,5000,VASE,1,2000\n"
    "W-2,,090-1111-2222,2026-11-23T09:30:00+09:00,1500,ROSE,1,1500\n"
)


@pytest.fixture(autouse=True)
def _setup(media_in_tmp):
    ProductFactory(sku="ROSE", price=1500)
    ProductFactory(sku="VASE", price=2000)


def validated(data: str, department) -> ImportJob:
    job = import_job_create(
        file=io.BytesIO(data.encode()),
        original_name="orders.csv",
        kind="orders",
        source="webshop",
        department=department,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    return import_job_validate(job_id=job.pk)


def imported(job: ImportJob, *, skip=False) -> ImportJob:
    job = import_job_run_start(job=job, skip_invalid_rows=skip, by=None, queue=False)
    return run_pending_import(job=job)


def test_mapping_is_guessed_from_japanese_headers(crm):
    job = validated(HEADER + GOOD, crm)
    assert job.mapping == {
        "注文番号": "number",
        "メールアドレス": "customer_email",
        "電話番号": "customer_phone",
        "注文日時": "ordered_at",
        "合計": "total",
        "商品コード": "sku",
        "数量": "quantity",
        "単価": "unit_price",
    }


def test_orders_are_grouped_by_number_and_linked_to_customers(crm):
    known = IdentityFactory(kind="email", value="hanako@example.jp").customer
    job = imported(validated(HEADER + GOOD, crm))
    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"]["orders_created"] == 2
    first = Order.objects.get(number="W-1")
    assert first.customer == known
    assert first.total == Decimal(5000)
    assert sorted((line.product.sku, line.quantity) for line in first.lines.all()) == [
        ("ROSE", 2),
        ("VASE", 1),
    ]
    assert first.ordered_at.isoformat() == "2026-11-22T01:00:00+00:00"
    second = Order.objects.get(number="W-2")
    assert Identity.objects.get(kind="phone", value="+819011112222").customer == second.customer


def test_unknown_sku_and_wrong_total_are_reported_and_nothing_is_written(crm):
    bad = (
        "W-3,a@example.jp,,2026/11/22 10:00,3000,ROSE,1,1500\n"
        "W-3,a@example.jp,,2026/11/22 10:00,3000,TULIP,1,1500\n"
        "W-4,b@example.jp,,2026/11/22 11:00,9999,ROSE,1,1500\n"
        "W-5,,,yesterday,1500,ROSE,1,1500\n"
    )
    job = validated(HEADER + GOOD + bad, crm)
    assert job.status == ImportJob.Status.INVALID
    assert list(job.row_errors.order_by("row", "column").values_list("row", "column")) == [
        (6, "商品コード"),
        (7, "合計"),
        (8, ""),
        (8, "注文日時"),
    ]
    assert job.row_errors.get(row=6).reason == "unknown SKU"
    assert "does not equal the sum of the lines 1500" in job.row_errors.get(row=7).reason
    assert not Order.objects.exists()
    assert not Identity.objects.exists()
    job = imported(job, skip=True)
    assert set(Order.objects.values_list("number", flat=True)) == {"W-1", "W-2"}
    assert job.result["counts"]["records_skipped"] == 3


def test_rows_of_one_order_must_be_consecutive_and_agree_on_the_total(crm):
    data = (
        "W-1,a@example.jp,,2026/11/22 10:00,3000,ROSE,1,1500\n"
        "W-2,a@example.jp,,2026/11/22 10:00,1500,ROSE,1,1500\n"
        "W-1,a@example.jp,,2026/11/22 10:00,3000,ROSE,1,1500\n"
        "W-3,a@example.jp,,2026/11/22 10:00,3000,ROSE,1,1500\n"
        "W-3,a@example.jp,,2026/11/22 10:00,3001,ROSE,1,1500\n"
    )
    job = validated(HEADER + data, crm)
    reasons: dict[int, str] = {}
    for row, reason in job.row_errors.values_list("row", "reason"):
        reasons[row] = reasons.get(row, "") + reason + "; "
    assert "already listed at row 2" in reasons[4]
    assert "differs from the total on row 5" in reasons[6]


def test_reimporting_orders_changes_nothing_and_a_corrected_file_updates(crm):
    imported(validated(HEADER + GOOD, crm))
    lines = list(Order.objects.values_list("number", "lines__product__sku", "lines__quantity"))
    again = imported(validated(HEADER + GOOD, crm))
    assert again.result["counts"]["orders_created"] == 0
    assert again.result["counts"]["orders_updated"] == 0
    assert lines == list(
        Order.objects.values_list("number", "lines__product__sku", "lines__quantity")
    )
    corrected = GOOD.replace(
        "W-2,,090-1111-2222,2026-11-23T09:30:00+09:00,1500,ROSE,1,1500",
        "W-2,,090-1111-2222,2026-11-23T09:30:00+09:00,3000,VASE,1,3000",
    )
    job = imported(validated(HEADER + corrected, crm))
    assert job.result["counts"]["orders_updated"] == 1
    order = Order.objects.get(number="W-2")
    assert order.total == 3000
    assert [line.product.sku for line in order.lines.all()] == ["VASE"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/11/22 10:00 JST", "2026-11-22T10:00:00+09:00"),
        ("2026-11-22T10:00:00+09:00", "2026-11-22T10:00:00+09:00"),
        ("2026-11-22T01:00:00Z", "2026-11-22T01:00:00+00:00"),
        ("2026/11/22", "2026-11-22T00:00:00+09:00"),
    ],
)
def test_ordered_at_reads_iso_and_japanese_notation(text, expected):
    assert parse_ordered_at(text).isoformat() == expected
