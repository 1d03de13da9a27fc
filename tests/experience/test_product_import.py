"""The products importer: the store system's nightly stock and price file."""

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
from customers.models import ImportJob
from experience.models import Product, ProductChange
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

HEADER = "商品コード,商品名,カテゴリ,売価,在庫数\n"


@pytest.fixture(autouse=True)
def _setup(media_in_tmp):
    ProductFactory(sku="ROSE", name="Rose", price=1500, stock=0)
    ProductFactory(sku="VASE", name="Vase", price=2000, stock=4)


def validated(data: str, department) -> ImportJob:
    job = import_job_create(
        file=io.BytesIO(data.encode()),
        original_name="stock.csv",
        kind="products",
        source="store-nightly",
        department=department,
        by=None,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=None, queue=False)
    return import_job_validate(job_id=job.pk)


def imported(job: ImportJob, *, skip=False) -> ImportJob:
    job = import_job_run_start(job=job, skip_invalid_rows=skip, by=None, queue=False)
    return run_pending_import(job=job)


def test_mapping_is_guessed_from_japanese_headers(crm):
    job = validated(HEADER + "ROSE,,,1200,5\n", crm)

    assert job.mapping == {
        "商品コード": "sku",
        "商品名": "name",
        "カテゴリ": "category",
        "売価": "price",
        "在庫数": "stock",
    }


def test_import_changes_creates_and_records_price_and_stock_changes(crm):
    data = HEADER + 'ROSE,,,1200,5\nVASE,,,2000,4\nLILY,Lily,flowers,"1,100",12\n'
    job = imported(validated(data, crm))

    assert job.status == ImportJob.Status.DONE
    assert job.result["counts"] == {
        "rows_imported": 3,
        "records_skipped": 0,
        "products_created": 1,
        "products_updated": 1,
        "price_changes": 1,
        "stock_changes": 1,
    }
    rose = Product.objects.get(sku="ROSE")
    assert (rose.name, rose.price, rose.stock) == ("Rose", 1200, 5)
    assert Product.objects.get(sku="LILY").price == 1100
    assert sorted(
        ProductChange.objects.values_list("field", "old_value", "new_value", "source")
    ) == [
        ("price", 1500, 1200, "store-nightly"),
        ("stock", 0, 5, "store-nightly"),
    ]


def test_importing_the_same_file_again_records_nothing_new(crm):
    data = HEADER + "ROSE,,,1200,5\n"
    imported(validated(data, crm))
    imported(validated(data, crm))

    assert ProductChange.objects.count() == 2


def test_bad_rows_are_reported_by_row_and_column(crm):
    data = HEADER + "ROSE,,,-5,5\nVASE,,,2000,lots\nNEW,,,100,1\nROSE,,,1,1\n"
    job = validated(data, crm)

    assert job.status == ImportJob.Status.INVALID
    errors = list(job.row_errors.values_list("row", "column", "reason"))
    assert (2, "売価", "cannot be negative") in errors
    assert (3, "在庫数", "not a whole number") in errors
    assert (4, "商品名", "needed for a new product (unknown SKU)") in errors
    assert (4, "カテゴリ", "needed for a new product (unknown SKU)") in errors
    assert (5, "商品コード", "SKU already listed at row 2") in errors


def test_skipping_bad_rows_imports_the_good_ones_only(crm):
    job = imported(validated(HEADER + "ROSE,,,-5,5\nVASE,,,1800,4\n", crm), skip=True)

    assert job.status == ImportJob.Status.DONE
    assert Product.objects.get(sku="ROSE").price == 1500
    assert list(ProductChange.objects.values_list("field", "new_value")) == [("price", 1800)]
