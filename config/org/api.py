"""API bases every circle builds on, so scoping and membership checks cannot be forgotten.

A circle's viewset inherits :class:`DepartmentScopedViewSet` for department-owned records
or :class:`CompanyWideViewSet` for company-wide data (customers, catalogue); both refuse
users without a department membership. The ``/api/v1/me/`` endpoint lives here too.
"""

from __future__ import annotations

import functools

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Choices, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from config.org.models import Department, Share
from config.org.selectors import memberships_for


def service_call(function, **kwargs):
    """Run a service; its ``ValidationError`` becomes a 400 naming the field."""
    try:
        return function(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        raise APIValidationError(detail) from exc


class HasDepartmentMembership(BasePermission):
    """Staff with at least one department membership, or the administrator (superuser)."""

    message = "You need a department membership to use this endpoint."

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or bool(user.roles_by_department)


class ListDetailSerializerMixin:
    """List with ``serializer_class``; retrieve with ``detail_serializer_class`` when set.

    STYLE: one serializer is not stretched over two shapes; a list row is a summary.
    """

    detail_serializer_class: type[serializers.BaseSerializer] | None = None

    def get_serializer_class(self):
        if self.action == "retrieve" and self.detail_serializer_class is not None:
            return self.detail_serializer_class
        return super().get_serializer_class()


class CompanyWideViewSet(ListDetailSerializerMixin, GenericViewSet):
    """Base for company-wide data (customers, event types, products): members only."""

    permission_classes = [HasDepartmentMembership]


class DepartmentScopedViewSet(ListDetailSerializerMixin, GenericViewSet):
    """Base for department-owned records: every queryset passes through ``visible_to``.

    Subclasses declare ``queryset`` (joins and prefetches included) and may refine it per
    action in :meth:`shape_queryset`; scoping is applied last, in :meth:`get_queryset`,
    which subclasses may not override. A record of another department answers 404, the
    same as a missing one.
    """

    permission_classes = [HasDepartmentMembership]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not override get_queryset(): refine the queryset in "
                "shape_queryset() so that department scoping always applies."
            )

    def shape_queryset(self, queryset: QuerySet) -> QuerySet:
        """Per-action joins, prefetches and annotations; scoping is added afterwards."""
        return queryset

    def unscoped_queryset(self) -> QuerySet:
        """Every record of the model, regardless of department: never serve it as is."""
        queryset = super().get_queryset()
        if self.action == "retrieve":
            # Every detail says whom the record is shared with.
            queryset = queryset.prefetch_related(shares_prefetch())
        return self.shape_queryset(queryset)

    def get_queryset(self) -> QuerySet:
        return self.unscoped_queryset().visible_to(self.request.user)


class CompanyWideReadOnlyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, CompanyWideViewSet
):
    """List and retrieve of company-wide data."""


class DepartmentScopedReadOnlyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, DepartmentScopedViewSet
):
    """List and retrieve of department-owned records visible to the asking user."""


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """Filter on a foreign key by its id, without validating it against any table."""

    field_class = forms.IntegerField


class DepartmentOwnedFilterSet(django_filters.FilterSet):
    """Filters shared by department-owned records; ids, never model choices.

    A model-choice filter would validate ids against every department's rows and so tell
    one department which ids another one holds.
    """

    owner_department = IdFilter(field_name="owner_department_id")


@functools.cache
def _enum_field_class(choices: type[Choices], component_name: str) -> type[serializers.ChoiceField]:
    field_class = type(f"{component_name}Field", (serializers.ChoiceField,), {})
    schema = {"type": "string", "enum": list(choices.values)}
    return extend_schema_field(schema, component_name=component_name)(field_class)


def enum_field(choices: type[Choices]) -> serializers.ChoiceField:
    """A read-only choice field whose OpenAPI enum is named after the model's choice set.

    drf-spectacular names enums after the field, so the ``kind`` of segments, touchpoints,
    surveys and campaigns would collide (``Kind9feEnum``); ``Segment.Kind`` becomes
    ``SegmentKindEnum`` instead, stable for client generators.
    """
    component_name = f"{choices.__qualname__.replace('.', '')}Enum"
    return _enum_field_class(choices, component_name)(choices=choices.choices, read_only=True)


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "slug", "name"]


class ShareSerializer(serializers.ModelSerializer):
    department = DepartmentSerializer(read_only=True)

    class Meta:
        model = Share
        fields = ["department", "can_edit"]


def shares_prefetch() -> Prefetch:
    """Prefetch of a department-owned record's shares with their departments."""
    return Prefetch("shares", queryset=Share.objects.select_related("department"))


class DepartmentOwnedSummarySerializer(serializers.ModelSerializer):
    """Fields every department-owned list row carries; needs ``owner_department`` joined."""

    owner_department = DepartmentSerializer(read_only=True)


class DepartmentOwnedDetailSerializer(DepartmentOwnedSummarySerializer):
    """Adds the departments a record is shared with; needs :func:`shares_prefetch`."""

    shared_with = ShareSerializer(source="shares", many=True, read_only=True)


class MeDepartmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="department.id")
    slug = serializers.CharField(source="department.slug")
    name = serializers.CharField(source="department.name")
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    departments = MeDepartmentSerializer(many=True)


@extend_schema(responses=MeSerializer, summary="The asking user, their departments and roles")
@api_view(["GET"])
def me(request: Request) -> Response:
    """Who is asking: username, administrator flag, and a role in each department."""
    user = request.user
    data = {
        "username": user.get_username(),
        "is_superuser": user.is_superuser,
        "departments": memberships_for(user).order_by("department__name"),
    }
    return Response(MeSerializer(data).data)
