"""The products importer: the store system's nightly stock and price file.

One row per SKU with any of name, category, price, stock and active. A blank cell keeps
the product's current value, so a stock-only file is fine; a new SKU needs a name, a
category and a price. Products are upserted by SKU through
:func:`experience.commerce.products_upsert`, which records every price and stock change
(what back-in-stock and price-drop triggers read), so importing the same file again
changes nothing and records nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from customers.imports import Importer, ImportField, Record, RowError, register_importer
from experience.commerce import NEW_PRODUCT_FIELDS, clean_product_fields, products_upsert
from experience.models import Product

VALUE_FIELDS = ("name", "category", "price", "stock", "is_active")


class ProductImporter(Importer):
    """Rows of SKUs → products created or changed, with their price and stock history."""

    kind = "products"
    label = _("Products (price and stock)")

    def __init__(self, *, job=None) -> None:
        super().__init__(job=job)
        self.known: set[str] = set(Product.objects.values_list("sku", flat=True))
        self.seen: dict[str, int] = {}

    def fields(self) -> list[ImportField]:
        return [
            ImportField("sku", _("SKU"), ("商品コード", "品番", "jan", "product code"), True),
            ImportField("name", _("Product name"), ("name", "商品名", "品名")),
            ImportField("category", _("Category"), ("カテゴリ", "カテゴリー", "分類")),
            ImportField("price", _("Price"), ("売価", "価格", "販売価格", "単価")),
            ImportField("stock", _("Stock"), ("在庫", "在庫数", "quantity", "qty")),
            ImportField("is_active", _("Active"), ("active", "販売中", "有効")),
        ]

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        for number, values in rows:
            yield self._record(number, values)

    def _record(self, number: int, values: dict[str, str]) -> Record:
        record = Record(rows=[number])
        sku = unicodedata.normalize("NFKC", values.get("sku", "")).strip()
        if not sku:
            record.errors.append(RowError(number, "sku", "", _t("the SKU is missing")))
            return record
        if len(sku) > 50:
            record.errors.append(RowError(number, "sku", sku, _t("longer than 50 characters")))
            return record
        if sku in self.seen:
            record.errors.append(
                RowError(
                    number,
                    "sku",
                    sku,
                    _t("SKU already listed at row %(row)d") % {"row": self.seen[sku]},
                )
            )
            return record
        self.seen[sku] = number
        given = {
            key: unicodedata.normalize("NFKC", values[key]).strip()
            for key in VALUE_FIELDS
            if values.get(key, "").strip()
        }
        clean, errors = clean_product_fields(given)
        for key, reason in errors.items():
            record.errors.append(RowError(number, key, given.get(key, ""), reason))
        if sku not in self.known:
            for key in NEW_PRODUCT_FIELDS:
                if key not in given:
                    record.errors.append(
                        RowError(number, key, "", _t("needed for a new product (unknown SKU)"))
                    )
        record.data = {"sku": sku, **clean}
        return record

    def write(self, records: list[Record], *, job, by) -> dict[str, int]:
        counts = products_upsert(rows=[record.data for record in records], source=job.source)
        self.known.update(record.data["sku"] for record in records)
        return counts


register_importer(ProductImporter.kind, ProductImporter)
