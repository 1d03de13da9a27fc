"""Exports of any customer queryset (the customer list, a segment's members) to CSV or XLSX.

Personal data is masked unless the user may view it (``can_view_pii``), every export is
audit-logged with its size and format, and rows are produced in batches so a large list
never sits in memory: CSV streams to the browser, XLSX is written by openpyxl's
write-only mode. Cells that would run as spreadsheet formulas are neutralised
(``config.spreadsheets``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _t

from config.org.services import audit_record
from config.spreadsheets import FORMATS, download_response
from customers.models import Customer, Identity
from customers.selectors import can_view_pii

BATCH = 2_000
MASK = "***"
EXPORT_IDENTIFIERS = (Identity.Kind.EMAIL, Identity.Kind.PHONE, Identity.Kind.POS)


class ExportError(ValueError):
    """The export cannot be made as asked; the message names the parameter."""


def _columns() -> list[tuple[str, str, bool]]:
    """(key, header, is personal data) for each exported column."""
    return [
        ("id", _t("Customer ID"), False),
        ("family_name", _t("Family name"), True),
        ("given_name", _t("Given name"), True),
        ("family_name_kana", _t("Family name (kana)"), True),
        ("given_name_kana", _t("Given name (kana)"), True),
        ("email", _t("Email"), True),
        ("phone", _t("Phone"), True),
        ("pos", _t("POS member ID"), True),
        ("birth_date", _t("Birth date"), True),
        ("gender", _t("Gender"), False),
        ("postal_code", _t("Postal code"), True),
        ("prefecture", _t("Prefecture"), False),
        ("city", _t("City"), True),
        ("language", _t("Language"), False),
        ("lifecycle_stage", _t("Lifecycle stage"), False),
        ("created_at", _t("Created"), False),
    ]


def _rows(queryset: QuerySet[Customer], *, show_pii: bool) -> Iterator[list[Any]]:
    """The header, then one row per customer, loading identifiers one batch at a time."""
    columns = _columns()
    yield [header for _key, header, _pii in columns]
    batch: list[Customer] = []
    for customer in queryset.order_by("pk").iterator(chunk_size=BATCH):
        batch.append(customer)
        if len(batch) >= BATCH:
            yield from _batch_rows(batch, columns, show_pii=show_pii)
            batch = []
    yield from _batch_rows(batch, columns, show_pii=show_pii)


def _batch_rows(batch: list[Customer], columns, *, show_pii: bool) -> Iterator[list[Any]]:
    if not batch:
        return
    identifiers: dict[tuple[int, str], str] = {}
    if show_pii:
        for customer_id, kind, value in (
            Identity.objects.filter(
                customer_id__in=[c.pk for c in batch], kind__in=EXPORT_IDENTIFIERS
            )
            .order_by("-pk")
            .values_list("customer_id", "kind", "value")
        ):
            identifiers[(customer_id, kind)] = value  # the oldest identifier of a kind wins
    local = timezone.get_current_timezone()
    for customer in batch:
        row: list[Any] = []
        for key, _header, pii in columns:
            if pii and not show_pii:
                row.append(MASK)
            elif key in EXPORT_IDENTIFIERS:
                row.append(identifiers.get((customer.pk, key), ""))
            elif key == "created_at":
                row.append(customer.created_at.astimezone(local).strftime("%Y-%m-%d %H:%M"))
            elif key == "birth_date":
                row.append(customer.birth_date.isoformat() if customer.birth_date else "")
            else:
                row.append(getattr(customer, key))
        yield row


def export_customers(
    queryset: QuerySet[Customer], *, fmt: str, user, description: str = "", target=None
) -> tuple[str, Iterator[list[Any]]]:
    """(file name without extension, rows) of ``queryset``, header first, for CSV or XLSX.

    Masks personal data unless ``can_view_pii(user)``; writes a ``customer.export`` audit
    entry with the count, the format and whether personal data was included.
    """
    if fmt not in FORMATS:
        raise ExportError(_t("format: use csv or xlsx, not “%(fmt)s”.") % {"fmt": fmt})
    show_pii = can_view_pii(user)
    count = queryset.count()
    audit_record(
        actor=user,
        action="customer.export",
        target=target,
        department=getattr(target, "owner_department", None),
        detail={
            "count": count,
            "format": fmt,
            "pii": show_pii,
            **({"what": description} if description else {}),
        },
    )
    filename = f"customers-{timezone.localtime():%Y%m%d-%H%M}"
    return filename, _rows(queryset, show_pii=show_pii)


def export_response(
    queryset: QuerySet[Customer], *, fmt: str, user, description: str, target=None
) -> HttpResponse:
    """The export as a download: CSV streamed, XLSX whole; a bad format answers 400.

    ``target`` (a segment) is named in the audit entry, so its department's managers see it.
    """
    try:
        filename, rows = export_customers(
            queryset, fmt=fmt, user=user, description=description, target=target
        )
    except ExportError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    return download_response(rows, fmt=fmt, filename=filename, title=_t("Customers"))
