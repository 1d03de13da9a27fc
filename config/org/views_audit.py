"""The audit log, browsable by managers (their departments and their people) and the
administrator, and downloadable as CSV.

The log grows with every unmasked view and export, so the page pages by keyset (the id of
the last entry shown) and never counts the whole table. Times are shown in Tokyo. A
download of the log is itself personal data about staff, so it is audited too
("audit.export").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _t
from django.views.decorators.http import require_GET

from config.org.filters import AUDIT_TIME_ZONE, AuditLogFilter
from config.org.models import AuditLog, Role
from config.org.selectors import (
    audit_entries_page,
    audit_entries_visible_to,
    audit_targets_existing,
    has_role_anywhere,
)
from config.org.services import audit_record
from config.spreadsheets import csv_bytes_stream

PAGE_SIZE = 50
EXPORT_CHUNK = 2_000
DETAIL_SHOWN = 200

# Pages an entry's target may link to, by (app label, model); other targets show as text.
TARGET_PAGES = {
    ("customers", "customer"): "customers:detail",
    ("customers", "segment"): "customers:segment_detail",
    ("customers", "importjob"): "customers:import_detail",
    ("journeys", "persona"): "journeys:persona_detail",
    ("journeys", "journey"): "journeys:journey_detail",
    ("journeys", "campaign"): "journeys:campaign_detail",
}


@dataclass(frozen=True)
class AuditRow:
    """One entry as the page shows it."""

    entry: AuditLog
    target_label: str
    target_url: str
    detail_text: str


def _require_auditor(user) -> None:
    """Managers (of any department) and the administrator; everyone else gets 403."""
    if not has_role_anywhere(user, Role.MANAGER):
        raise PermissionDenied


def _filtered(request) -> AuditLogFilter:
    return AuditLogFilter(
        request.GET or None,
        queryset=audit_entries_visible_to(request.user).select_related(
            "actor", "department", "target_type"
        ),
        user=request.user,
    )


def _detail_text(detail: Any) -> str:
    if not detail:
        return ""
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= DETAIL_SHOWN else text[: DETAIL_SHOWN - 1] + "…"


def _rows(entries: list[AuditLog]) -> list[AuditRow]:
    existing = audit_targets_existing(entries, set(TARGET_PAGES))
    rows = []
    for entry in entries:
        ct = entry.target_type
        label, url = "", ""
        if ct is not None:
            label = f"{ct.name} #{entry.target_id}" if entry.target_id else str(ct.name)
            if (ct.pk, entry.target_id) in existing:
                try:
                    url = reverse(TARGET_PAGES[(ct.app_label, ct.model)], args=[entry.target_id])
                except NoReverseMatch:
                    url = ""
        rows.append(AuditRow(entry, label, url, _detail_text(entry.detail)))
    return rows


def _filter_query(filterset: AuditLogFilter) -> str:
    """The valid filters as a query string (no cursor), for paging and the export link."""
    if not filterset.is_bound or not filterset.is_valid():
        return ""
    pairs = []
    for name in filterset.filters:
        value = filterset.form.cleaned_data.get(name)
        if value in (None, ""):
            continue
        pairs.append((name, getattr(value, "pk", value)))
    return urlencode(pairs)


@require_GET
def audit_list(request):
    """The entries the user may see, newest first, filtered; 400 names a bad filter."""
    _require_auditor(request.user)
    filterset = _filtered(request)
    status, rows, next_before = 200, [], None
    if filterset.is_bound and not filterset.is_valid():
        status = 400
    else:
        before = filterset.form.cleaned_data.get("before") if filterset.is_bound else None
        entries, next_before = audit_entries_page(filterset.qs, before=before, size=PAGE_SIZE)
        rows = _rows(entries)
    filters = _filter_query(filterset)
    return render(
        request,
        "org/audit.html",
        {
            "filter": filterset,
            "form": filterset.form,
            "rows": rows,
            "next_before": next_before,
            "is_first_page": not request.GET.get("before"),
            "filters": filters,
            "time_zone": AUDIT_TIME_ZONE.key,
        },
        status=status,
    )


def _export_rows(queryset: QuerySet[AuditLog]) -> Iterator[list[Any]]:
    yield [
        _t("Time (%(zone)s)") % {"zone": AUDIT_TIME_ZONE.key},
        _t("Actor"),
        _t("Department"),
        _t("Action"),
        _t("Target type"),
        _t("Target ID"),
        _t("Detail"),
        _t("IP address"),
    ]
    for entry in queryset.order_by("-at", "-pk").iterator(chunk_size=EXPORT_CHUNK):
        yield [
            entry.at.astimezone(AUDIT_TIME_ZONE).strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor.get_username() if entry.actor else "",
            entry.department.name if entry.department else "",
            entry.action,
            f"{entry.target_type.app_label}.{entry.target_type.model}" if entry.target_type else "",
            entry.target_id,
            json.dumps(entry.detail, ensure_ascii=False, sort_keys=True, default=str)
            if entry.detail
            else "",
            entry.ip_address or "",
        ]


@require_GET
def audit_export(request):
    """The filtered entries as CSV (formula cells neutralised); the download is audited."""
    _require_auditor(request.user)
    filterset = _filtered(request)
    if filterset.is_bound and not filterset.is_valid():
        return HttpResponse(
            filterset.form.errors.as_text(), status=400, content_type="text/plain; charset=utf-8"
        )
    audit_record(
        actor=request.user,
        action="audit.export",
        detail={"filters": _filter_query(filterset)},
        ip_address=request.META.get("REMOTE_ADDR"),
    )
    response = StreamingHttpResponse(
        csv_bytes_stream(_export_rows(filterset.qs)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().astimezone(AUDIT_TIME_ZONE)
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp:%Y%m%d-%H%M}.csv"'
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("audit/", audit_list, name="audit"),
    path("audit/export.csv", audit_export, name="audit_export"),
]
