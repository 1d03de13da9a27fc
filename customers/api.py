"""REST API of circle ①: customer profiles (company-wide, masked) and segments (scoped)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from config.org.api import (
    CompanyWideReadOnlyViewSet,
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    enum_field,
)
from config.org.services import audit_record
from customers.filters import CustomerFilter, SegmentFilter
from customers.models import Customer, Identity, Segment
from customers.selectors import can_view_pii

MASK = "***"


def mask_text(value: str) -> str:
    """Keep the first character so staff can tell records apart; hide the rest."""
    return f"{value[:1]}{MASK}" if value else ""


def mask_identifier(kind: str, value: str) -> str:
    """Mask an identifier; an email keeps its domain, which is not personal on its own."""
    if kind == Identity.Kind.EMAIL and "@" in value:
        local, _at, domain = value.partition("@")
        return f"{mask_text(local)}@{domain}"
    return mask_text(value)


class CustomerSummarySerializer(serializers.ModelSerializer):
    """A list row: no personal data at all, so lists need neither masking nor audit."""

    class Meta:
        model = Customer
        fields = [
            "id",
            "uuid",
            "lifecycle_stage",
            "is_anonymous",
            "prefecture",
            "language",
            "merged_into",
            "created_at",
            "updated_at",
        ]


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "kind", "value", "source", "first_seen_at", "last_seen_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_pii", False):
            data["value"] = mask_identifier(instance.kind, instance.value)
        return data


class CustomerDetailSerializer(serializers.ModelSerializer):
    """One profile; personal data is masked unless the context says ``show_pii``."""

    PII_TEXT_FIELDS = (
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "full_name",
        "postal_code",
        "city",
    )
    PII_DATE_FIELDS = ("birth_date",)

    full_name = serializers.CharField(read_only=True)
    identities = IdentitySerializer(many=True, read_only=True)
    pii_masked = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "uuid",
            "full_name",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "birth_date",
            "gender",
            "postal_code",
            "prefecture",
            "city",
            "language",
            "lifecycle_stage",
            "is_anonymous",
            "merged_into",
            "created_at",
            "updated_at",
            "identities",
            "pii_masked",
        ]

    @extend_schema_field(serializers.BooleanField())
    def get_pii_masked(self, instance) -> bool:
        return not self.context.get("show_pii", False)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_pii", False):
            for field in self.PII_TEXT_FIELDS:
                data[field] = mask_text(data[field])
            for field in self.PII_DATE_FIELDS:
                data[field] = None
        return data


class CustomerViewSet(CompanyWideReadOnlyViewSet):
    """Customer profiles, company-wide (DESIGN §4) for every department member.

    Lists carry no personal data; a detail masks it for users without ``view_pii``, and
    every unmasked detail is written to the audit log.
    """

    queryset = Customer.objects.all()
    serializer_class = CustomerSummarySerializer
    detail_serializer_class = CustomerDetailSerializer
    filterset_class = CustomerFilter

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("identities")
        return queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["show_pii"] = self.action == "retrieve" and can_view_pii(self.request.user)
        return context

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        customer = self.get_object()
        serializer = self.get_serializer(customer)
        if serializer.context["show_pii"]:
            audit_record(
                actor=request.user,
                action="customer.view_pii",
                target=customer,
                detail={"via": "api"},
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return Response(serializer.data)


class SegmentSummarySerializer(DepartmentOwnedSummarySerializer):
    kind = enum_field(Segment.Kind)

    class Meta:
        model = Segment
        fields = ["id", "name", "kind", "owner_department", "created_at", "updated_at"]


class SegmentDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Segment.Kind)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "rules",
            "owner_department",
            "shared_with",
            "created_by",
            "created_at",
            "updated_at",
        ]


class SegmentViewSet(DepartmentScopedReadOnlyViewSet):
    """Segments owned by, or shared with, the asking user's departments."""

    queryset = Segment.objects.select_related("owner_department")
    serializer_class = SegmentSummarySerializer
    detail_serializer_class = SegmentDetailSerializer
    filterset_class = SegmentFilter

    def shape_queryset(self, queryset):
        if self.action == "retrieve":
            queryset = queryset.select_related("created_by")
        return queryset


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("customers", CustomerViewSet)
    router.register("segments", SegmentViewSet)
