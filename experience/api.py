"""REST API of circle ②: touchpoints and surveys (scoped), event types and products."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from config.org.api import (
    CompanyWideReadOnlyViewSet,
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    enum_field,
)
from config.org.authentication import ApiTokenAuthentication, IntegrationPrincipal
from experience.commerce import catalogue_editable_by, product_update
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
            "question_en",
            "choices",
            "attribute",
            "is_active",
            "touchpoint",
            "owner_department",
            "shared_with",
            "created_at",
        ]


class SurveyInvitationRequestSerializer(serializers.Serializer):
    """Whom to invite: an existing customer by id, or by identifiers (kind → value)."""

    customer = serializers.IntegerField(required=False, min_value=1)
    identifiers = serializers.DictField(child=serializers.CharField(), required=False)
    valid_days = serializers.IntegerField(required=False, min_value=1, max_value=365, default=30)

    def validate(self, attrs):
        if ("customer" in attrs) == ("identifiers" in attrs):
            raise serializers.ValidationError(
                {"customer": ["give either customer (an id) or identifiers, not both"]}
            )
        return attrs


class SurveyInvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="The public one-time link to send to the customer.")
    expires_at = serializers.DateTimeField()


class SurveyViewSet(DepartmentScopedReadOnlyViewSet):
    """Surveys (NPS, CSAT, preference) owned by, or shared with, the asking user's departments."""

    queryset = Survey.objects.select_related("owner_department")
    serializer_class = SurveySummarySerializer
    detail_serializer_class = SurveyDetailSerializer
    filterset_class = SurveyFilter

    @extend_schema(
        request=SurveyInvitationRequestSerializer,
        responses={201: SurveyInvitationSerializer},
        summary="Invite an existing customer to answer the survey; returns the one-time link",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="invitations",
        authentication_classes=[SessionAuthentication, ApiTokenAuthentication],
    )
    def invitations(self, request, pk=None):
        """Editors of the survey's department (and its integration tokens) invite a customer."""
        from customers.models import Customer
        from experience.surveys import (
            customer_for_identifiers,
            invitation_create,
            invitation_url,
            survey_can_edit,
        )

        survey = self.get_object()
        if not survey_can_edit(survey=survey, user=request.user):
            raise ApiPermissionDenied("Inviting needs the editor role in the survey's department.")
        incoming = SurveyInvitationRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            if "customer" in data:
                customer = Customer.objects.filter(pk=data["customer"]).first()
                if customer is None:
                    raise DjangoValidationError({"customer": ["no customer has this id"]})
            else:
                customer = customer_for_identifiers(data["identifiers"])
            invitation = invitation_create(
                survey=survey, customer=customer, valid_days=data["valid_days"]
            )
        except DjangoValidationError as exc:
            raise ApiValidationError(exc.message_dict) from exc
        body = {
            "id": invitation.pk,
            "url": invitation_url(invitation, request=request),
            "expires_at": invitation.expires_at,
        }
        return Response(SurveyInvitationSerializer(body).data, status=201)


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


class ProductUpdateSerializer(serializers.Serializer):
    """PATCH of a product: any of these fields; the service checks the rules."""

    name = serializers.CharField(required=False, allow_blank=True)
    category = serializers.CharField(required=False, allow_blank=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=0, required=False)
    stock = serializers.IntegerField(required=False)
    is_active = serializers.BooleanField(required=False)


class ProductSkuFilter(ProductFilter):
    sku = django_filters.CharFilter(field_name="sku")


class CanEditCatalogue(BasePermission):
    """Reads for every member; changes for editors and managers of any department, and for
    integration tokens (an editor of their department)."""

    message = "Changing the catalogue needs the editor or manager role in a department."

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return catalogue_editable_by(request.user)


class ProductViewSet(CompanyWideReadOnlyViewSet):
    """The product catalogue; company-wide. ``PATCH`` corrects price, stock, name…

    Every price or stock change is recorded (source: the token's source, or ``api`` for
    staff signed in), which is what back-in-stock and price-drop triggers read.
    """

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    filterset_class = ProductSkuFilter
    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]
    permission_classes = [*CompanyWideReadOnlyViewSet.permission_classes, CanEditCatalogue]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(
        request=ProductUpdateSerializer,
        responses=ProductSerializer,
        summary="Change a product's price, stock, name, category or active flag",
    )
    def partial_update(self, request, pk=None):
        product = self.get_object()
        incoming = ProductUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        token = request.auth if isinstance(request.user, IntegrationPrincipal) else None
        try:
            product = product_update(
                product=product,
                source=token.source if token is not None else "api",
                by=None if token is not None else request.user,
                **incoming.validated_data,
            )
        except DjangoValidationError as exc:
            raise ApiValidationError(exc.message_dict) from exc
        return Response(ProductSerializer(product).data)


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("touchpoints", TouchpointViewSet)
    router.register("surveys", SurveyViewSet)
    router.register("event-types", EventTypeViewSet, basename="event-type")
    router.register("products", ProductViewSet)
