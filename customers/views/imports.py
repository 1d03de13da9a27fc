"""Circle ① pages: imports of customers and orders (upload, mapping, report, progress), export."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.org.models import Department
from config.org.selectors import get_visible_or_404
from customers.exports import export_response
from customers.forms import CustomerSearchForm
from customers.imports import (
    ImportFileError,
    MappingError,
    departments_for_upload,
    get_importer,
    import_job_create,
    import_job_run_start,
    import_job_validate_start,
    importer_kinds,
)
from customers.models import ImportJob
from customers.selectors import can_view_pii

ERRORS_PAGE_SIZE = 50
JOBS_PAGE_SIZE = 25
RUNNING = {ImportJob.Status.VALIDATING, ImportJob.Status.IMPORTING}
EDITABLE_MAPPING = {
    ImportJob.Status.UPLOADED,
    ImportJob.Status.INVALID,
    ImportJob.Status.VALID,
    ImportJob.Status.FAILED,
}


class UploadForm(forms.Form):
    file = forms.FileField(label=_("File (CSV or XLSX)"))
    kind = forms.ChoiceField(label=_("What the file holds"))
    source = forms.SlugField(
        label=_("Source"),
        max_length=50,
        help_text=_("Where the rows come from, e.g. pos or webshop; stored on each identifier."),
    )
    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.none(), empty_label=None
    )

    def __init__(self, *args, departments: list[Department], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = importer_kinds()
        self.fields["department"].queryset = Department.objects.filter(
            pk__in=[d.pk for d in departments]
        )


def _job_for_edit(user, pk: int) -> ImportJob:
    """The job if the user may see it (else 404) and change it (else 403)."""
    job = get_visible_or_404(ImportJob.objects.select_related("owner_department"), user, pk=pk)
    if not ImportJob.objects.editable_by(user).filter(pk=job.pk).exists():
        raise PermissionDenied
    return job


@require_GET
def import_list(request):
    """The imports of the user's departments, newest first."""
    jobs = (
        ImportJob.objects.visible_to(request.user)
        .select_related("owner_department", "created_by")
        .order_by("-created_at", "-pk")
    )
    page_obj = Paginator(jobs, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "customers/imports/list.html",
        {
            "active_circle": "customer",
            "page_obj": page_obj,
            "can_upload": bool(departments_for_upload(request.user)),
        },
    )


@require_http_methods(["GET", "POST"])
def import_upload(request):
    """Upload a file for one of the departments where the user is editor or manager."""
    departments = departments_for_upload(request.user)
    if not departments:
        raise PermissionDenied
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        departments=departments,
        initial={"kind": ImportJob.Kind.CUSTOMERS},
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = import_job_create(
                file=upload,
                original_name=upload.name,
                kind=form.cleaned_data["kind"],
                source=form.cleaned_data["source"],
                department=form.cleaned_data["department"],
                by=request.user,
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("customers:import_mapping", pk=job.pk)
    return render(
        request, "customers/imports/upload.html", {"active_circle": "customer", "form": form}
    )


@require_http_methods(["GET", "POST"])
def import_mapping(request, pk: int):
    """Map the file's columns to fields, with a preview; posting validates the whole file."""
    if request.method == "POST":
        job = _job_for_edit(request.user, pk)
    else:
        job = get_visible_or_404(ImportJob.objects, request.user, pk=pk)
    headers = job.result.get("headers", [])
    error = ""
    mapping = job.mapping
    if request.method == "POST":
        mapping = {header: request.POST.get(f"col_{i}", "") for i, header in enumerate(headers)}
        try:
            import_job_validate_start(job=job, mapping=mapping, by=request.user)
        except MappingError as exc:
            error = str(exc)
        else:
            return redirect("customers:import_detail", pk=job.pk)
    fields = get_importer(job.kind)(job=job).fields()
    columns = [
        {"index": i, "header": header, "selected": mapping.get(header, "")}
        for i, header in enumerate(headers)
    ]
    return render(
        request,
        "customers/imports/mapping.html",
        {
            "active_circle": "customer",
            "job": job,
            "columns": columns,
            "fields": fields,
            "preview": job.result.get("preview", []),
            "error": error,
            "can_change": job.status in EDITABLE_MAPPING,
        },
        status=400 if error else 200,
    )


def _detail_context(request, job: ImportJob) -> dict:
    errors = Paginator(job.row_errors.order_by("row", "pk"), ERRORS_PAGE_SIZE)
    return {
        "active_circle": "customer",
        "job": job,
        "running": job.status in RUNNING,
        "percent": round(job.processed_rows * 100 / job.total_rows) if job.total_rows else 100,
        "errors_page": errors.get_page(request.GET.get("page")),
        "counts": job.result.get("counts", {}),
        "can_edit": ImportJob.objects.editable_by(request.user).filter(pk=job.pk).exists(),
        "show_pii": can_view_pii(request.user),
    }


@require_GET
def import_detail(request, pk: int):
    """Progress, the validation report (every bad row) and, once imported, the result."""
    job = get_visible_or_404(
        ImportJob.objects.select_related("owner_department", "created_by"), request.user, pk=pk
    )
    return render(request, "customers/imports/detail.html", _detail_context(request, job))


@require_GET
def import_progress(request, pk: int):
    """The progress partial, polled by htmx every second while the job runs.

    When the job has finished, an htmx poll reloads the page, which then shows the report
    and stops polling.
    """
    job = get_visible_or_404(ImportJob.objects, request.user, pk=pk)
    running = job.status in RUNNING
    response = render(
        request,
        "customers/imports/detail.html#progress",
        {
            "job": job,
            "running": running,
            "percent": round(job.processed_rows * 100 / job.total_rows) if job.total_rows else 100,
        },
    )
    if request.htmx and not running:
        response["HX-Refresh"] = "true"
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
def import_run(request, pk: int):
    """Start the import of a validated file (or, if accepted, of its rows without errors)."""
    job = _job_for_edit(request.user, pk)
    try:
        import_job_run_start(
            job=job,
            skip_invalid_rows=request.POST.get("skip_invalid_rows") == "on",
            by=request.user,
        )
    except MappingError as exc:
        context = _detail_context(request, job)
        context["run_error"] = str(exc)
        return render(request, "customers/imports/detail.html", context, status=400)
    return redirect("customers:import_detail", pk=job.pk)


@require_GET
def customer_export(request):
    """The customer list, searched and filtered as on its page, as CSV or XLSX (PII masked)."""
    form = CustomerSearchForm(request.GET)
    if not form.is_valid():
        return HttpResponse(
            form.errors.as_text(), status=400, content_type="text/plain; charset=utf-8"
        )
    filters = {key: value for key, value in form.cleaned_data.items() if value}
    return export_response(
        form.customers(request.user),
        fmt=request.GET.get("format", "csv"),
        user=request.user,
        description=f"customer list {filters}" if filters else "customer list",
    )


urlpatterns = [
    path("imports/", import_list, name="imports"),
    path("imports/upload/", import_upload, name="import_upload"),
    path("imports/<int:pk>/", import_detail, name="import_detail"),
    path("imports/<int:pk>/mapping/", import_mapping, name="import_mapping"),
    path("imports/<int:pk>/progress/", import_progress, name="import_progress"),
    path("imports/<int:pk>/run/", import_run, name="import_run"),
    path("export/", customer_export, name="export"),
]
