"""The orders importer, registered into circle ①'s import machinery.

One row per order line; the rows of one order are consecutive and share the order number,
the customer, the time and the total. The total must equal the sum of the lines, every
SKU must be a known product, and orders are upserted by number, so importing the same
file again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from customers.imports import (
    Importer,
    ImportField,
    Record,
    RowError,
    import_refresh_derived,
    register_importer,
)
from experience.models import Order, OrderLine, Product

CUSTOMER_FIELDS = {"customer_email": "email", "customer_phone": "phone", "customer_pos": "pos"}
STATUSES = {value: value for value in Order.Status.values} | {
    "": Order.Status.COMPLETED,
    "完了": Order.Status.COMPLETED,
    "キャンセル": Order.Status.CANCELLED,
    "返品": Order.Status.RETURNED,
}
JST_SUFFIX = re.compile(r"\s*(JST|\+09:?00)$", re.IGNORECASE)


def parse_ordered_at(text: str) -> dt.datetime:
    """ISO 8601 or 2026/11/22 10:00 [JST]; times without a zone are read in Japan time."""
    folded = unicodedata.normalize("NFKC", text).strip()
    japan = False
    if JST_SUFFIX.search(folded):
        folded, japan = JST_SUFFIX.sub("", folded), True
    folded = folded.replace("/", "-")
    try:
        value = dt.datetime.fromisoformat(folded)
    except ValueError:
        raise ValueError(
            _t("not a date and time (use 2026-11-22T10:00+09:00 or 2026/11/22 10:00 JST)")
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone(dt.timedelta(hours=9)) if japan else None)
        if value.tzinfo is None:
            value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def parse_yen(text: str, *, what: str) -> Decimal:
    folded = unicodedata.normalize("NFKC", text).replace(",", "").replace("¥", "").strip()
    try:
        amount = Decimal(folded.removesuffix("円"))
    except InvalidOperation:
        raise ValueError(_t("%(what)s is not an amount in yen") % {"what": what}) from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(_t("%(what)s must be whole yen") % {"what": what})
    if amount < 0:
        raise ValueError(_t("%(what)s cannot be negative") % {"what": what})
    return amount


class OrderImporter(Importer):
    """Order lines → orders with lines, upserted by order number."""

    kind = "orders"
    label = _("Orders")

    def __init__(self, *, job=None) -> None:
        super().__init__(job=job)
        self.products: dict[str, int] = dict(Product.objects.values_list("sku", "pk"))
        self.seen: dict[str, int] = {}

    def fields(self) -> list[ImportField]:
        return [
            ImportField(
                "number",
                _("Order number"),
                ("order", "order no", "order id", "注文番号", "受注番号", "伝票番号"),
                True,
            ),
            ImportField("customer_email", _("Customer email"), ("email", "メールアドレス")),
            ImportField("customer_phone", _("Customer phone"), ("phone", "電話番号")),
            ImportField("customer_pos", _("Customer POS member ID"), ("会員番号", "member id")),
            ImportField(
                "ordered_at",
                _("Ordered at"),
                ("date", "order date", "注文日時", "購入日時", "注文日"),
                True,
            ),
            ImportField(
                "total", _("Order total"), ("amount", "合計", "合計金額", "注文金額"), True
            ),
            ImportField("sku", _("SKU"), ("product", "商品コード", "品番", "jan"), True),
            ImportField("quantity", _("Quantity"), ("qty", "数量", "個数"), True),
            ImportField("unit_price", _("Unit price"), ("price", "単価", "販売単価"), True),
            ImportField("status", _("Status"), ("ステータス", "状態")),
        ]

    def records(self, rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Record]:
        current: Record | None = None
        for number, values in rows:
            order_number = values.get("number", "").strip()
            if current is not None and order_number and order_number == current.data["number"]:
                self._add_line(current, number, values)
                continue
            if current is not None:
                yield self._finish(current)
            current = self._start(number, values, order_number)
        if current is not None:
            yield self._finish(current)

    def _start(self, number: int, values: dict[str, str], order_number: str) -> Record:
        from customers.identity import IdentifierError, normalize_identifier

        record = Record(rows=[number], data={"number": order_number, "lines": []})
        errors = record.errors
        if not order_number:
            errors.append(RowError(number, "number", "", _t("the order number is missing")))
        elif len(order_number) > 50:
            errors.append(RowError(number, "number", order_number, _t("longer than 50 characters")))
        elif order_number in self.seen:
            errors.append(
                RowError(
                    number,
                    "number",
                    order_number,
                    _t(
                        "order already listed at row %(row)d; the rows of one order must be "
                        "consecutive"
                    )
                    % {"row": self.seen[order_number]},
                )
            )
        else:
            self.seen[order_number] = number
        identifiers: dict[str, str] = {}
        for key, kind in CUSTOMER_FIELDS.items():
            if raw := values.get(key, ""):
                try:
                    identifiers[kind] = normalize_identifier(kind, raw)
                except IdentifierError as exc:
                    errors.append(RowError(number, key, raw, str(exc)))
        if not identifiers and not any(e.field in CUSTOMER_FIELDS for e in errors):
            errors.append(
                RowError(
                    number,
                    "",
                    "",
                    _t("no customer: fill in the customer's email, phone or POS member ID"),
                )
            )
        record.data["identifiers"] = identifiers
        raw_time = values.get("ordered_at", "")
        try:
            record.data["ordered_at"] = parse_ordered_at(raw_time)
        except ValueError as exc:
            errors.append(RowError(number, "ordered_at", raw_time, str(exc)))
        raw_total = values.get("total", "")
        try:
            record.data["total"] = parse_yen(raw_total, what=_t("the total"))
        except ValueError as exc:
            errors.append(RowError(number, "total", raw_total, str(exc)))
        raw_status = unicodedata.normalize("NFKC", values.get("status", "")).strip().casefold()
        if raw_status in STATUSES:
            record.data["status"] = STATUSES[raw_status]
        else:
            errors.append(
                RowError(
                    number,
                    "status",
                    raw_status,
                    _t("not a status (use completed, cancelled or returned)"),
                )
            )
        record.data["raw_total"] = raw_total
        self._add_line(record, number, values)
        return record

    def _add_line(self, record: Record, number: int, values: dict[str, str]) -> None:
        if len(record.rows) > 1 or record.rows[0] != number:
            record.rows.append(number)
            if values.get("total", "") != record.data["raw_total"]:
                record.errors.append(
                    RowError(
                        number,
                        "total",
                        values.get("total", ""),
                        _t("differs from the total on row %(row)d of the same order")
                        % {"row": record.rows[0]},
                    )
                )
        errors = record.errors
        sku = values.get("sku", "").strip()
        product_id = self.products.get(sku)
        if product_id is None:
            errors.append(
                RowError(number, "sku", sku, _t("unknown SKU") if sku else _t("the SKU is missing"))
            )
        raw_quantity = unicodedata.normalize("NFKC", values.get("quantity", "")).strip()
        quantity = int(raw_quantity) if raw_quantity.isdigit() else 0
        if quantity < 1:
            errors.append(
                RowError(number, "quantity", raw_quantity, _t("not a whole number of 1 or more"))
            )
        raw_price = values.get("unit_price", "")
        try:
            unit_price = parse_yen(raw_price, what=_t("the unit price"))
        except ValueError as exc:
            errors.append(RowError(number, "unit_price", raw_price, str(exc)))
            unit_price = None
        record.data["lines"].append((product_id, quantity, unit_price))

    def _finish(self, record: Record) -> Record:
        total = record.data.get("total")
        lines = record.data["lines"]
        if total is not None and all(q and p is not None for _id, q, p in lines):
            line_sum = sum(quantity * price for _id, quantity, price in lines)
            if line_sum != total:
                record.errors.append(
                    RowError(
                        record.rows[0],
                        "total",
                        str(total),
                        _t(
                            "the total %(total)s does not equal the sum of the lines %(sum)s "
                            "(rows %(first)d–%(last)d)"
                        )
                        % {
                            "total": total,
                            "sum": line_sum,
                            "first": record.rows[0],
                            "last": record.rows[-1],
                        },
                    )
                )
        return record

    def write(self, records: list[Record], *, job, by) -> dict[str, int]:
        from customers.identity import resolve_customers

        customer_ids = resolve_customers(
            people=[record.data["identifiers"] for record in records], source=job.source, by=by
        )
        numbers = [record.data["number"] for record in records]
        existing = {order.number: order for order in Order.objects.filter(number__in=numbers)}
        existing_lines: dict[int, list[tuple[int, int, Decimal]]] = {}
        for line in OrderLine.objects.filter(order__in=existing.values()).order_by("pk"):
            existing_lines.setdefault(line.order_id, []).append(
                (line.product_id, line.quantity, line.unit_price)
            )
        new_orders: list[Order] = []
        replaced: list[Order] = []
        lines_of: dict[str, list[tuple[int, int, Decimal]]] = {}
        touched = set(customer_ids)
        for record, customer_id in zip(records, customer_ids, strict=True):
            data = record.data
            header = {
                "customer_id": customer_id,
                "ordered_at": data["ordered_at"],
                "total": data["total"],
                "status": data["status"],
            }
            order = existing.get(data["number"])
            if order is None:
                new_orders.append(Order(number=data["number"], source=job.source, **header))
                lines_of[data["number"]] = data["lines"]
                continue
            same = all(getattr(order, key) == value for key, value in header.items())
            if same and existing_lines.get(order.pk, []) == data["lines"]:
                continue
            touched.add(order.customer_id)
            for key, value in header.items():
                setattr(order, key, value)
            replaced.append(order)
            lines_of[data["number"]] = data["lines"]
        Order.objects.bulk_create(new_orders, batch_size=1000)
        if replaced:
            Order.objects.bulk_update(
                replaced, ["customer_id", "ordered_at", "total", "status"], batch_size=1000
            )
            OrderLine.objects.filter(order__in=replaced).delete()
        OrderLine.objects.bulk_create(
            [
                OrderLine(order=order, product_id=product_id, quantity=quantity, unit_price=price)
                for order in [*new_orders, *replaced]
                for product_id, quantity, price in lines_of[order.number]
            ],
            batch_size=1000,
        )
        import_refresh_derived(touched)
        return {"orders_created": len(new_orders), "orders_updated": len(replaced)}


register_importer(OrderImporter.kind, OrderImporter)
