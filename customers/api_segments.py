"""REST API of segments: CRUD with rule-tree validation, live count, members, "is X a member".

Scoped by :class:`config.org.api.DepartmentScopedViewSet`: another department's segment
answers 404; viewers read, editors (of the owner or of an edit-share) write, and the rule
tree is validated with errors that name the JSON path (``rules.children[2].value: …``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from config.org.api import (
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedViewSet,
    enum_field,
    parse_id,
)
from config.org.models import Department
from config.org.services import audit_record
from customers.api import mask_text
from customers.filters import SegmentFilter
from customers.models import Segment, SegmentMembership
from customers.segments import (
    SegmentInUse,
    SegmentRuleError,
    segment_contains,
    segment_count,
    segment_create,
    segment_delete,
    segment_update,
    validate_rules,
)
from customers.selectors import can_view_pii


class SegmentSummarySerializer(DepartmentOwnedSummarySerializer):
    kind = enum_field(Segment.Kind)

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "kind",
            "owner_department",
            "member_count",
            "computed_at",
            "created_at",
            "updated_at",
        ]


class SegmentDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Segment.Kind)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

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
            "member_count",
            "computed_at",
            "created_by",
            "created_at",
            "updated_at",
        ]


class SegmentWriteSerializer(serializers.Serializer):
    """What a client sends: the rule tree is validated here, errors name its path."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, default=Segment.Kind.DYNAMIC)
    rules = serializers.JSONField(
        help_text="Rule tree: {op: and|or, children: [...]}, {op: not, child: {...}} or "
        "{type: <condition>, ...params}; see customers/segments.py."
    )
    owner_department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False
    )

    def validate_rules(self, value):
        try:
            return validate_rules(value, user=self.context["request"].user, segment=self.instance)
        except SegmentRuleError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs):
        if self.instance is None and "owner_department" not in attrs:
            raise serializers.ValidationError({"owner_department": "This field is required."})
        owner = attrs.get("owner_department")
        if self.instance is not None and owner and owner.pk != self.instance.owner_department_id:
            raise serializers.ValidationError(
                {"owner_department": "The owner of a segment does not change."}
            )
        return attrs


class SegmentMemberSerializer(serializers.Serializer):
    """One member: ids and non-personal facts; the name only with ``view_pii``, else masked."""

    customer = serializers.IntegerField(source="customer_id")
    name = serializers.SerializerMethodField()
    lifecycle_stage = serializers.CharField(source="customer.lifecycle_stage")
    prefecture = serializers.CharField(source="customer.prefecture")
    added_at = serializers.DateTimeField()

    def get_name(self, membership) -> str:
        name = membership.customer.full_name
        return name if self.context.get("show_pii") else mask_text(name)


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    DepartmentScopedViewSet,
):
    """Segments owned by, or shared with, the asking user's departments."""

    queryset = Segment.objects.select_related("owner_department")
    serializer_class = SegmentSummarySerializer
    detail_serializer_class = SegmentDetailSerializer
    filterset_class = SegmentFilter

    def shape_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action == "retrieve":
            queryset = queryset.select_related("created_by")
        return queryset

    def get_serializer_class(self):
        if self.action in {"create", "update", "partial_update"}:
            return SegmentWriteSerializer
        if self.action == "members":
            return SegmentMemberSerializer
        return super().get_serializer_class()

    def _detail(self, segment: Segment, code: int) -> Response:
        segment = self.get_queryset().select_related("created_by").get(pk=segment.pk)
        data = SegmentDetailSerializer(segment, context=self.get_serializer_context()).data
        return Response(data, status=code)

    @extend_schema(request=SegmentWriteSerializer, responses={201: SegmentDetailSerializer})
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        segment = segment_create(
            name=data["name"],
            description=data["description"],
            kind=data["kind"],
            rules=data["rules"],
            owner_department=data["owner_department"],
            by=request.user,
        )
        return self._detail(segment, status.HTTP_201_CREATED)

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentDetailSerializer)
    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        segment = self.get_object()
        serializer = self.get_serializer(segment, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        fields = {k: v for k, v in serializer.validated_data.items() if k != "owner_department"}
        segment_update(segment=segment, by=request.user, **fields)
        return self._detail(segment, status.HTTP_200_OK)

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentDetailSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        responses={
            204: None,
            400: OpenApiResponse(
                inline_serializer("SegmentInUse", {"detail": serializers.CharField()}),
                description="Campaigns target this segment; change them first.",
            ),
        }
    )
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: Segment) -> None:
        try:
            segment_delete(segment=instance, by=self.request.user)
        except SegmentInUse as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from exc

    @extend_schema(
        responses=inline_serializer(
            "SegmentCount",
            {
                "count": serializers.IntegerField(),
                "member_count": serializers.IntegerField(allow_null=True),
                "computed_at": serializers.DateTimeField(allow_null=True),
            },
        ),
        summary="Live count of a dynamic segment (snapshot size of a static one)",
    )
    @action(detail=True, methods=["get"])
    def count(self, request: Request, pk=None) -> Response:
        segment = self.get_object()
        live = (
            segment.member_count or 0
            if segment.kind == Segment.Kind.STATIC
            else segment_count(segment.rules)
        )
        return Response(
            {
                "count": live,
                "member_count": segment.member_count,
                "computed_at": segment.computed_at,
            }
        )

    @extend_schema(
        summary="Members of the materialised membership, paginated",
        responses=inline_serializer(
            "PaginatedSegmentMemberList",
            {
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": SegmentMemberSerializer(many=True),
            },
        ),
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def members(self, request: Request, pk=None) -> Response:
        segment = self.get_object()
        memberships = (
            SegmentMembership.objects.filter(segment=segment)
            .select_related("customer")
            .order_by("customer_id")
        )
        page = self.paginate_queryset(memberships)
        show_pii = can_view_pii(request.user)
        context = {**self.get_serializer_context(), "show_pii": show_pii}
        data = SegmentMemberSerializer(page, many=True, context=context).data
        if show_pii and page:
            audit_record(
                actor=request.user,
                action="segment.members_view_pii",
                target=segment,
                department=segment.owner_department,
                detail={"via": "api", "customers": [row["customer"] for row in data]},
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return self.get_paginated_response(data)

    @extend_schema(
        parameters=[OpenApiParameter("customer", int, required=True)],
        responses=inline_serializer("SegmentContains", {"member": serializers.BooleanField()}),
        summary="Is this customer in the segment now?",
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def contains(self, request: Request, pk=None) -> Response:
        segment = self.get_object()
        customer_id = parse_id(request.query_params.get("customer", ""))
        if customer_id is None:
            return Response(
                {"customer": "Give the customer id as ?customer=<integer>."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"member": segment_contains(segment=segment, customer_id=customer_id)})


def register(router: BaseRouter) -> None:
    """Add the segment endpoints; they replace read-only segment routes registered earlier."""
    router.registry[:] = [entry for entry in router.registry if entry[2] != "segment"]
    if hasattr(router, "_urls"):
        del router._urls
    router.register("segments", SegmentViewSet, basename="segment")
