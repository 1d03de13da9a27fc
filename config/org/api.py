"""API bases every circle builds on, so scoping and membership checks cannot be forgotten.

A circle's viewset inherits :class:`DepartmentScopedViewSet` for department-owned records
or :class:`CompanyWideViewSet` for company-wide data (customers, catalogue); both refuse
users without a department membership. The ``/api/v1/me/`` endpoint lives here too.
"""

from __future__ import annotations

import datetime
import functools

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Choices, Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _
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


MAX_ID = 2**63 - 1  # the largest id a (big) integer column holds, on SQLite and PostgreSQL


class IdFormField(forms.IntegerField):
    """An id: a whole number from 1 to :data:`MAX_ID`; larger ones would overflow the query."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_python(self, value):
        # Django's IntegerField reads "7.0" as 7; an id is written in digits only.
        if isinstance(value, str) and value.strip() and not value.strip().isdigit():
            raise DjangoValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def parse_id(raw) -> int | None:
    """The id that a query parameter's text names, or None: digits only, 1 to :data:`MAX_ID`.

    A bigger number would overflow the database's integer (a 500 on both backends).
    """
    text = str(raw or "").strip()
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def reject_nul(name: str, value: str | None) -> str | None:
    """``value`` unchanged, or a 400 naming ``name``: PostgreSQL text cannot hold NUL."""
    if value and "\x00" in value:
        raise APIValidationError({name: ["Must not contain NUL characters."]})
    return value


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """Filter on a foreign key by its id, without validating it against any table."""

    field_class = IdFormField


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``); anything else is an error, not "no filter".

    django-filter's own reads ``?is_active=yes please`` as "not given" and returns every
    row, so a client's typo silently widened the list.
    """

    # The raw text reaches to_python: NullBooleanSelect would turn garbage into None first.
    widget = forms.TextInput
    TRUE = {"true", "True", "1"}
    FALSE = {"false", "False", "0"}

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value is True or value in self.TRUE:
            return True
        if value is False or value in self.FALSE:
            return False
        raise DjangoValidationError(_("Enter true or false."), code="invalid")

    def validate(self, value) -> None:
        return None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, read in UTC: PostgreSQL refuses offsets beyond ±15:59."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError:
            raise DjangoValidationError(_("Enter a valid date/time."), code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``created_after=…`` and the like: any ISO 8601 offset, compared in UTC."""

    field_class = UtcDateTimeField


class StrictFilterSet(django_filters.FilterSet):
    """A filter set whose model boolean fields refuse values other than true/false."""

    FILTER_DEFAULTS = {
        **django_filters.filterset.FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class DepartmentOwnedFilterSet(StrictFilterSet):
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


ERROR_COMPONENT = "RequestError"
ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Why the request was refused: ``detail`` for a general reason, or the names of the "
        "fields and parameters at fault, each with its messages."
    ),
    "additionalProperties": {},
}
PAGING_PARAMETERS = {"limit", "offset", "cursor", "page_size"}
COMMON_ERRORS = {
    "400": "Invalid input: the body names each field or parameter at fault.",
    "403": "Not signed in, no department membership, no permission, or a missing CSRF token.",
    "404": "No such record, or one of another department (the same answer).",
    "415": "The body's media type is not one the operation reads.",
    "429": "Too many requests: retry after the ``Retry-After`` seconds.",
}


def document_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the errors every operation can answer.

    DRF answers 403 (authentication, permission, CSRF) and 429 (throttle) on every
    endpoint, 400 and 415 wherever it reads a body (400 for query parameters too), and 404
    wherever a path names a record. Annotating each view alone would miss some, and
    clients (and the fuzz tests) rely on every status an operation answers being
    documented. Responses an operation documents itself are kept. Optional query
    parameters other than paging ones are marked ``allowEmptyValue``: ``?kind=`` filters
    nothing, as a form's empty select does.
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            locations = {parameter["in"] for parameter in operation.get("parameters", [])}
            applies = {
                "400": "requestBody" in operation or "query" in locations,
                "403": True,
                "404": "path" in locations,
                "415": "requestBody" in operation,
                "429": True,
            }
            for parameter in operation.get("parameters", []):
                if (
                    parameter["in"] == "query"
                    and not parameter.get("required")
                    and parameter["name"] not in PAGING_PARAMETERS
                ):
                    # Filters (django-filter, report forms) read an empty value as "not given".
                    parameter["allowEmptyValue"] = True
            responses = operation.setdefault("responses", {})
            for status_code, description in COMMON_ERRORS.items():
                if applies[status_code] and status_code not in responses:
                    responses[status_code] = {
                        "content": {"application/json": {"schema": reference}},
                        "description": description,
                    }
    return result


def refuse_numbers_as_text() -> None:
    """Make every DRF text field refuse a JSON number or boolean (a 400 naming the field).

    DRF's ``CharField`` quietly turns ``{"reason": 0.3}`` into ``"0.3"``, while the OpenAPI
    schema promises a string: a client sending a number has a bug we should tell it about,
    and the fuzz test (tests/security/test_api_fuzz.py) holds the API to its schema. Applied
    once from ``OrgConfig.ready``, so every serializer, hand-written or model-made, agrees.
    """
    original = serializers.CharField.to_internal_value
    if getattr(original, "refuses_numbers", False):
        return

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return original(self, data)

    to_internal_value.refuses_numbers = True
    serializers.CharField.to_internal_value = to_internal_value
