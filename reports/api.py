"""Report API: the catalogue, and each report's figures as JSON.

A report answers exactly what its page shows (the same blocks, built by the same
``build``), so a figure on the page, its CSV and its API answer agree. Filters are the page's
query parameters; a bad one answers 400 naming the parameter.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from config.org.api import HasDepartmentMembership
from config.org.authentication import ApiTokenAuthentication
from reports.catalog import block_json, report_spec, report_specs
from reports.forms import ReportFilterForm


class ReportSummarySerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    filters = serializers.ListField(child=serializers.CharField())


class MetricSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    unit = serializers.CharField()
    previous = serializers.JSONField(allow_null=True)


class ColumnSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField()


class BlockSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    metrics = MetricSerializer(many=True)
    columns = ColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.DictField())


class ReportSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    filters = serializers.DictField()
    blocks = BlockSerializer(many=True)


FILTER_PARAMETERS = [
    OpenApiParameter("period", str, description="7, 30, 90, 365 (days up to today) or custom"),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (custom period)"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day (custom period)"),
    OpenApiParameter("compare", str, enum=["previous", "year", "none"]),
    OpenApiParameter("department", int),
    OpenApiParameter("segment", int),
    OpenApiParameter("channel", str),
    OpenApiParameter("persona", int),
]


@extend_schema(responses=ReportSummarySerializer(many=True), summary="The report catalogue")
@api_view(["GET"])
@authentication_classes([SessionAuthentication, ApiTokenAuthentication])
@permission_classes([HasDepartmentMembership])
def report_list(request: Request) -> Response:
    """Every report, with the filters it takes."""
    data = [
        {
            "slug": spec.slug,
            "title": str(spec.title),
            "summary": str(spec.summary),
            "filters": list(spec.filters),
        }
        for spec in report_specs()
    ]
    return Response(ReportSummarySerializer(data, many=True).data)


@extend_schema(
    responses=ReportSerializer, parameters=FILTER_PARAMETERS, summary="One report's figures"
)
@api_view(["GET"])
@authentication_classes([SessionAuthentication, ApiTokenAuthentication])
@permission_classes([HasDepartmentMembership])
def report_detail(request: Request, slug: str) -> Response:
    """A report's blocks (metrics and tables) for the filters given as query parameters."""
    try:
        spec = report_spec(slug)
    except LookupError:
        raise Http404 from None
    form = ReportFilterForm.for_report(request.query_params, user=request.user, spec=spec)
    if not form.is_valid():
        raise ValidationError(form.errors)
    filters = form.filters()
    blocks = spec.build(request.user, filters)
    return Response(
        {
            "slug": spec.slug,
            "title": str(spec.title),
            "filters": filters.as_dict(),
            # Blocks without numbers (the overview's subscribe button) are page furniture.
            "blocks": [block_json(block) for block in blocks if block.metrics or block.table],
        }
    )
