"""REST API of circle ①: customer profiles (company-wide, masked) and segments (scoped).

Customers are read by every department member; editors and managers of any department
create and change them, add or remove identifiers and record consent, always through
``customers.services``. Personal data is masked without ``view_pii``, and every response
that shows a profile unmasked is written to the audit log.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from config.org.api import (
    CompanyWideReadOnlyViewSet,
    HasDepartmentMembership,
    reject_nul,
    service_call,
)
from config.org.services import audit_record
from customers import services
from customers.api_privacy import SubjectRequestActions
from customers.filters import CustomerFilter
from customers.identity import IdentifierError, mask_identifier, normalize_identifier
from customers.models import Channel, Consent, ConsentChange, Customer, Identity
from customers.selectors import can_view_pii, mask_text


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


@extend_schema_field(
    {"type": "string", "enum": list(Identity.Kind.values)}, component_name="IdentityKindEnum"
)
class IdentityKindField(serializers.ChoiceField):
    """Identity kinds, named in the schema so they do not collide with other ``kind`` enums."""

    def __init__(self, **kwargs):
        super().__init__(choices=Identity.Kind.choices, **kwargs)


class IdentitySerializer(serializers.ModelSerializer):
    kind = IdentityKindField(read_only=True)

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


class CustomerInputSerializer(serializers.Serializer):
    """What a client may write on a profile; ``customers.services`` validates the values."""

    family_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    given_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    family_name_kana = serializers.CharField(required=False, allow_blank=True, max_length=100)
    given_name_kana = serializers.CharField(required=False, allow_blank=True, max_length=100)
    birth_date = serializers.DateField(required=False, allow_null=True)
    gender = serializers.ChoiceField(
        choices=Customer.Gender.choices, required=False, allow_blank=True
    )
    postal_code = serializers.CharField(required=False, allow_blank=True, max_length=10)
    prefecture = serializers.CharField(required=False, allow_blank=True, max_length=20)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    language = serializers.ChoiceField(
        choices=Customer._meta.get_field("language").choices, required=False
    )
    attributes = serializers.DictField(
        required=False,
        help_text="Custom attribute key → value, typed by its definition; null removes a key.",
    )


class IdentityInputSerializer(serializers.Serializer):
    kind = IdentityKindField()
    value = serializers.CharField(max_length=300, trim_whitespace=True)
    source = serializers.CharField(max_length=50, default="api")


class ConsentChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConsentChange
        fields = ["status", "source", "changed_by", "changed_at"]


class ConsentSerializer(serializers.ModelSerializer):
    changes = ConsentChangeSerializer(many=True, read_only=True)

    class Meta:
        model = Consent
        fields = ["channel", "status", "source", "updated_at", "changes"]


class ConsentInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=Consent.Status.choices)
    source = serializers.CharField(max_length=50, default="api")


class CanEditCustomers(BasePermission):
    """Reading needs a membership; writing needs editor or manager in any department."""

    message = "You need the editor or manager role in a department to change customers."

    def has_permission(self, request: Request, view) -> bool:
        return request.method in SAFE_METHODS or services.can_edit_customers(request.user)


class CustomerViewSet(SubjectRequestActions, mixins.CreateModelMixin, CompanyWideReadOnlyViewSet):
    """Customer profiles, company-wide (DESIGN §4) for every department member.

    Lists carry no personal data; a detail masks it for users without ``view_pii``, and
    every unmasked detail is written to the audit log. Editors create and change profiles
    (``PATCH``), add or remove identifiers and record consent.
    """

    queryset = Customer.objects.all()
    serializer_class = CustomerSummarySerializer
    detail_serializer_class = CustomerDetailSerializer
    filterset_class = CustomerFilter
    permission_classes = [HasDepartmentMembership, CanEditCustomers]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("retrieve", "lookup"):
            queryset = queryset.prefetch_related("identities")
        return queryset

    def get_serializer_class(self):
        if self.action in ("create", "partial_update"):
            return CustomerInputSerializer
        if self.action == "lookup":
            return CustomerDetailSerializer
        return super().get_serializer_class()

    def _detail_response(self, customer: Customer, *, via: str, code=status.HTTP_200_OK):
        """The profile, masked without ``view_pii``; an unmasked answer is audited."""
        show_pii = can_view_pii(self.request.user)
        customer = Customer.objects.prefetch_related("identities").get(pk=customer.pk)
        data = CustomerDetailSerializer(
            customer, context={**self.get_serializer_context(), "show_pii": show_pii}
        ).data
        if show_pii:
            audit_record(
                actor=self.request.user,
                action="customer.view_pii",
                target=customer,
                detail={"via": via},
                ip_address=self.request.META.get("REMOTE_ADDR"),
            )
        return Response(data, status=code)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return self._detail_response(self.get_object(), via="api")

    @extend_schema(request=CustomerInputSerializer, responses={201: CustomerDetailSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = CustomerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = service_call(
            services.customer_create, by=request.user, **serializer.validated_data
        )
        return self._detail_response(customer, via="api-create", code=status.HTTP_201_CREATED)

    @extend_schema(request=CustomerInputSerializer, responses=CustomerDetailSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        customer = self.get_object()
        serializer = CustomerInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = service_call(
            services.customer_update,
            customer=customer,
            by=request.user,
            **serializer.validated_data,
        )
        return self._detail_response(customer, via="api-update")

    @extend_schema(
        summary="Find a customer by any identifier",
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=Identity.Kind.values, required=True),
            OpenApiParameter("value", OpenApiTypes.STR, required=True),
        ],
        responses={
            200: CustomerDetailSerializer,
            404: OpenApiResponse(description="No customer has this identifier."),
        },
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def lookup(self, request: Request) -> Response:
        """The profile holding identifier (kind, value), normalised first; 404 when unknown."""
        kind = request.query_params.get("kind", "")
        raw = reject_nul("value", request.query_params.get("value", ""))
        if kind not in Identity.Kind.values:
            raise APIValidationError(
                {"kind": [f"expected one of: {', '.join(Identity.Kind.values)}"]}
            )
        try:
            value = normalize_identifier(kind, raw)
        except IdentifierError as exc:
            raise APIValidationError({"value": [str(exc)]}) from exc
        identity = (
            Identity.objects.select_related("customer").filter(kind=kind, value=value).first()
        )
        if identity is None:
            raise NotFound("No customer has this identifier.")
        return self._detail_response(identity.customer, via="api-lookup")

    @extend_schema(
        summary="Add an identifier to a customer",
        request=IdentityInputSerializer,
        responses={201: IdentitySerializer},
    )
    @action(detail=True, methods=["post"], url_path="identities")
    def identities(self, request: Request, pk=None) -> Response:
        customer = self.get_object()
        serializer = IdentityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        identity = service_call(
            services.identity_add, customer=customer, by=request.user, **serializer.validated_data
        )
        data = IdentitySerializer(identity, context={"show_pii": can_view_pii(request.user)}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Remove an identifier from a customer", request=None, responses={204: None}
    )
    @action(detail=True, methods=["delete"], url_path=r"identities/(?P<identity_id>[0-9]+)")
    def remove_identity(self, request: Request, pk=None, identity_id=None) -> Response:
        customer = self.get_object()
        identity = get_object_or_404(Identity, pk=identity_id, customer=customer)
        services.identity_remove(identity=identity, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="A customer's consents with their history",
        request=None,
        responses=ConsentSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Record a customer's consent for one channel",
        request=ConsentInputSerializer,
        responses=ConsentSerializer,
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def consents(self, request: Request, pk=None) -> Response:
        customer = self.get_object()
        if request.method == "POST":
            serializer = ConsentInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            consent = service_call(
                services.consent_set,
                customer=customer,
                by=request.user,
                **serializer.validated_data,
            )
            consent = Consent.objects.prefetch_related("changes__changed_by").get(pk=consent.pk)
            return Response(ConsentSerializer(consent).data)
        consents = customer.consents.order_by("channel").prefetch_related("changes__changed_by")
        return Response(ConsentSerializer(consents, many=True).data)


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("customers", CustomerViewSet)
