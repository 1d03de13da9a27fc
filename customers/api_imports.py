"""REST API of imports: upload a customers/orders file, follow its validation, read the
bad rows, start the import — the same services as the web pages and the command.

Scoped by :class:`config.org.api.DepartmentScopedViewSet`: another department's import
answers 404. Uploading needs the editor or manager role in the chosen department; starting
an import needs the right to change the job (``ImportJob.objects.editable_by``).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _t
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from config.org.api import (
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedFilterSet,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedViewSet,
    enum_field,
    shares_prefetch,
)
from customers.imports import (
    ImportFileError,
    MappingError,
    departments_for_upload,
    import_job_create,
    import_job_run_start,
    import_job_validate_start,
    importer_kinds,
)
from customers.models import ImportJob, ImportRowError
from customers.selectors import can_view_pii, mask_text

RESULT_KEYS = (
    "format",
    "encoding",
    "delimiter",
    "headers",
    "duplicate_of",
    "valid_records",
    "bad_records",
    "counts",
    "failure",
)
"""Keys of ``ImportJob.result`` the API shows; the preview rows (personal data) are not."""


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The import is not in a state that allows this."
    default_code = "conflict"


# --------------------------------------------------------------------------- input


class ImportUploadSerializer(serializers.Serializer):
    """A file to import: validated in full as soon as it is stored."""

    file = serializers.FileField(help_text="CSV (UTF-8 or Shift_JIS) or XLSX, header row first.")
    kind = serializers.ChoiceField(choices=ImportJob.Kind.choices)
    source = serializers.SlugField(
        max_length=50, help_text="Where the rows come from, e.g. pos or webshop."
    )
    department = serializers.IntegerField(
        help_text="Id of the owner department; you must be its editor or manager."
    )
    mapping = serializers.JSONField(
        required=False,
        binary=True,
        help_text="JSON object column header → field key; guessed from the headers if omitted.",
    )

    def validate_kind(self, value: str) -> str:
        if value not in dict(importer_kinds()):
            raise serializers.ValidationError(_t("No importer handles this kind of file."))
        return value

    def validate_department(self, value: int):
        for department in departments_for_upload(self.context["request"].user):
            if department.pk == value:
                return department
        raise serializers.ValidationError(_t("Not a department where you are editor or manager."))

    def validate_mapping(self, value):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise serializers.ValidationError(
                _t("Expected a JSON object of column header → field key (both text).")
            )
        return value


class ImportConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ImportRunSerializer(serializers.Serializer):
    skip_invalid_rows = serializers.BooleanField(
        default=False, help_text="Import the valid rows of a file with errors, skipping the bad."
    )


# --------------------------------------------------------------------------- output


class ImportJobLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    errors = serializers.CharField()
    run = serializers.CharField()
    web = serializers.CharField()


class ImportJobLinksMixin(serializers.Serializer):
    links = serializers.SerializerMethodField()

    @extend_schema_field(ImportJobLinksSerializer)
    def get_links(self, job: ImportJob) -> dict[str, str]:
        request = self.context.get("request")

        def url(name: str, **kwargs) -> str:
            path = reverse(name, kwargs=kwargs)
            return request.build_absolute_uri(path) if request is not None else path

        return {
            "self": url("import-job-detail", pk=job.pk),
            "errors": url("import-job-errors", pk=job.pk),
            "run": url("import-job-run", pk=job.pk),
            "web": url("customers:import_detail", pk=job.pk),
        }


class ImportJobSummarySerializer(ImportJobLinksMixin, DepartmentOwnedSummarySerializer):
    kind = enum_field(ImportJob.Kind)
    status = enum_field(ImportJob.Status)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "original_name",
            "source",
            "owner_department",
            "total_rows",
            "processed_rows",
            "error_count",
            "created_at",
            "finished_at",
            "links",
        ]


class ImportJobDetailSerializer(ImportJobLinksMixin, DepartmentOwnedDetailSerializer):
    kind = enum_field(ImportJob.Kind)
    status = enum_field(ImportJob.Status)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    mapping = serializers.DictField(child=serializers.CharField(), read_only=True)
    result = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "original_name",
            "source",
            "owner_department",
            "shared_with",
            "mapping",
            "skip_invalid_rows",
            "total_rows",
            "processed_rows",
            "error_count",
            "result",
            "created_by",
            "created_at",
            "finished_at",
            "links",
        ]

    @extend_schema_field(
        {
            "type": "object",
            "description": "format, encoding, headers, duplicate_of, valid_records, "
            "bad_records, counts (after the import) and failure (when it failed).",
            "additionalProperties": True,
        }
    )
    def get_result(self, job: ImportJob) -> dict:
        return {key: job.result[key] for key in RESULT_KEYS if key in job.result}


class ImportRowErrorSerializer(serializers.ModelSerializer):
    """One bad row; the value is masked unless the user may see personal data."""

    class Meta:
        model = ImportRowError
        fields = ["row", "column", "value", "reason"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_pii", False):
            data["value"] = mask_text(data["value"])
        return data


class ImportJobFilter(DepartmentOwnedFilterSet):
    class Meta:
        model = ImportJob
        fields = ["owner_department"]


# --------------------------------------------------------------------------- viewset


class ImportJobViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    DepartmentScopedViewSet,
):
    """Imports owned by, or shared with, the asking user's departments, newest first."""

    queryset = ImportJob.objects.select_related("owner_department").order_by("-created_at", "-pk")
    serializer_class = ImportJobSummarySerializer
    detail_serializer_class = ImportJobDetailSerializer
    filterset_class = ImportJobFilter
    parser_classes = [MultiPartParser, FormParser]

    def shape_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action == "retrieve":
            queryset = queryset.select_related("created_by")
        return queryset

    def get_serializer_class(self):
        if self.action == "create":
            return ImportUploadSerializer
        if self.action == "errors":
            return ImportRowErrorSerializer
        if self.action == "run":
            return ImportRunSerializer
        return super().get_serializer_class()

    def _detail(self, job: ImportJob, code: int) -> Response:
        job = (
            ImportJob.objects.select_related("owner_department", "created_by")
            .prefetch_related(shares_prefetch())
            .get(pk=job.pk)
        )
        data = ImportJobDetailSerializer(job, context=self.get_serializer_context()).data
        return Response(data, status=code)

    @extend_schema(
        summary="Upload a file: stores it, saves the mapping and starts validating it",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={201: ImportJobDetailSerializer},
    )
    def create(self, request: Request) -> Response:
        if not departments_for_upload(request.user):
            raise PermissionDenied(
                _t("You need the editor or manager role in a department to import files.")
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["file"]
        mapping_error = ""
        stored = ""
        try:
            with transaction.atomic():
                job = import_job_create(
                    file=upload,
                    original_name=upload.name,
                    kind=data["kind"],
                    source=data["source"],
                    department=data["department"],
                    by=request.user,
                )
                stored = job.file.name
                try:
                    job = import_job_validate_start(
                        job=job, mapping=data.get("mapping", job.mapping), by=request.user
                    )
                except MappingError as exc:
                    # Nothing half-written: no job without a usable mapping.
                    mapping_error = str(exc)
                    transaction.set_rollback(True)
        except ImportFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from exc
        except DjangoPermissionDenied as exc:
            raise PermissionDenied from exc
        if mapping_error:
            if stored:
                job.file.storage.delete(stored)
            raise serializers.ValidationError({"mapping": [mapping_error]})
        return self._detail(job, status.HTTP_201_CREATED)

    @extend_schema(
        summary="The bad rows found by validation (row, column, value, reason)",
        responses=ImportRowErrorSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def errors(self, request: Request, pk=None) -> Response:
        job = self.get_object()
        rows = ImportRowError.objects.filter(job=job).order_by("row", "pk")
        page = self.paginate_queryset(rows)
        context = {**self.get_serializer_context(), "show_pii": can_view_pii(request.user)}
        data = ImportRowErrorSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="Start the import of a validated file",
        request=ImportRunSerializer,
        responses={202: ImportJobDetailSerializer, 409: ImportConflictSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        filterset_class=None,
        parser_classes=[JSONParser, FormParser, MultiPartParser],
    )
    def run(self, request: Request, pk=None) -> Response:
        job = self.get_object()
        if not ImportJob.objects.editable_by(request.user).filter(pk=job.pk).exists():
            raise PermissionDenied(_t("You need the editor or manager role to start this import."))
        serializer = ImportRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = import_job_run_start(
                job=job,
                skip_invalid_rows=serializer.validated_data["skip_invalid_rows"],
                by=request.user,
            )
        except MappingError as exc:
            raise Conflict(str(exc)) from exc
        return self._detail(job, status.HTTP_202_ACCEPTED)


def register(router: BaseRouter) -> None:
    """Add the import endpoints (called by ``config/api.py``)."""
    router.register("imports", ImportJobViewSet, basename="import-job")
