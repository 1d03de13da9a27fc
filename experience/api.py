"""REST API of circle ②: touchpoints and surveys (scoped), event types and products."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.routers import BaseRouter

from config.org.api import (
    CompanyWideReadOnlyViewSet,
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    enum_field,
)
from experience.filters import ProductFilter, SurveyFilter, TouchpointFilter
from experience.models import EventType, Product, Survey, Touchpoint


def experience_value_codes() -> serializers.SlugRelatedField:
    """The five values as their codes (``deal``, ``fun``…); needs the relation prefetched."""
    return serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)


class TouchpointSummarySerializer(DepartmentOwnedSummarySerializer):
    channel = enum_field(Touchpoint.Channel)
    kind = enum_field(Touchpoint.Kind)
    experience_values = experience_value_codes()

    class Meta:
        model = Touchpoint
        fields = [
            "id",
            "code",
            "name",
            "channel",
            "kind",
            "is_active",
            "experience_values",
            "owner_department",
        ]


class TouchpointDetailSerializer(DepartmentOwnedDetailSerializer):
    channel = enum_field(Touchpoint.Channel)
    kind = enum_field(Touchpoint.Kind)
    experience_values = experience_value_codes()

    class Meta:
        model = Touchpoint
        fields = [
            "id",
            "code",
            "name",
            "channel",
            "kind",
            "description",
            "is_active",
            "experience_values",
            "owner_department",
            "shared_with",
        ]


class TouchpointViewSet(DepartmentScopedReadOnlyViewSet):
    """Touchpoints owned by, or shared with, the asking user's departments."""

    queryset = Touchpoint.objects.select_related("owner_department").prefetch_related(
        "experience_values"
    )
    serializer_class = TouchpointSummarySerializer
    detail_serializer_class = TouchpointDetailSerializer
    filterset_class = TouchpointFilter


class SurveySummarySerializer(DepartmentOwnedSummarySerializer):
    kind = enum_field(Survey.Kind)

    class Meta:
        model = Survey
        fields = ["id", "name", "kind", "is_active", "touchpoint", "owner_department", "created_at"]


class SurveyDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Survey.Kind)

    class Meta:
        model = Survey
        fields = [
            "id",
            "name",
            "kind",
            "question",
            "is_active",
            "touchpoint",
            "owner_department",
            "shared_with",
            "created_at",
        ]


class SurveyViewSet(DepartmentScopedReadOnlyViewSet):
    """Surveys (NPS, CSAT) owned by, or shared with, the asking user's departments."""

    queryset = Survey.objects.select_related("owner_department")
    serializer_class = SurveySummarySerializer
    detail_serializer_class = SurveyDetailSerializer
    filterset_class = SurveyFilter


class EventTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = EventType
        fields = ["id", "name", "description", "property_schema", "owner_department"]


class EventTypeViewSet(CompanyWideReadOnlyViewSet):
    """The registry of event names every integration sends; company-wide."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    filterset_fields = ["name"]


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "category", "price", "stock", "is_active"]


class ProductViewSet(CompanyWideReadOnlyViewSet):
    """The product catalogue; company-wide."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    filterset_class = ProductFilter


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("touchpoints", TouchpointViewSet)
    router.register("surveys", SurveyViewSet)
    router.register("event-types", EventTypeViewSet, basename="event-type")
    router.register("products", ProductViewSet)
