"""REST API of data-subject requests: a person's data as JSON, and erasure on request.

Only a manager of any department who may read personal data, or the administrator, may
call these (``customers.privacy.can_handle_subject_requests``); integration tokens never.
The serializers below describe the answers exactly for the OpenAPI schema; the data itself
comes from ``customers.privacy``.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from config.org.api import parse_id
from customers.models import Customer
from customers.privacy import (
    can_handle_subject_requests,
    person_profiles,
    subject_erase,
    subject_export,
)

CUSTOMER_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Customer id."
)


class CanHandleSubjectRequests(BasePermission):
    message = "Only a manager with personal-data access, or the administrator, may do this."

    def has_permission(self, request: Request, view) -> bool:
        return can_handle_subject_requests(request.user)


# --- the export's shape (for the schema; the data is built by customers.privacy) ------------


class SubjectProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    family_name = serializers.CharField(allow_blank=True)
    given_name = serializers.CharField(allow_blank=True)
    family_name_kana = serializers.CharField(allow_blank=True)
    given_name_kana = serializers.CharField(allow_blank=True)
    birth_date = serializers.DateField(allow_null=True)
    gender = serializers.CharField(allow_blank=True)
    postal_code = serializers.CharField(allow_blank=True)
    prefecture = serializers.CharField(allow_blank=True)
    city = serializers.CharField(allow_blank=True)
    language = serializers.CharField()
    time_zone = serializers.CharField(allow_blank=True)
    lifecycle_stage = serializers.CharField()
    is_anonymous = serializers.BooleanField()
    merged_into = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    erased_at = serializers.DateTimeField(allow_null=True)


class SubjectIdentitySerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    kind = serializers.CharField()
    value = serializers.CharField()
    source = serializers.CharField(allow_blank=True)
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField(allow_null=True)


class SubjectConsentChangeSerializer(serializers.Serializer):
    status = serializers.CharField()
    source = serializers.CharField()
    changed_at = serializers.DateTimeField()
    changed_by = serializers.CharField(allow_null=True, help_text="Username of the staff member.")


class SubjectConsentSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    channel = serializers.CharField()
    status = serializers.CharField()
    source = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()
    history = SubjectConsentChangeSerializer(many=True)


class SubjectImportantDateSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField(allow_blank=True)
    year = serializers.IntegerField(allow_null=True)
    month = serializers.IntegerField()
    day = serializers.IntegerField()
    self_declared = serializers.BooleanField()


class SubjectAttributeSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    key = serializers.CharField()
    value = serializers.JSONField()
    label = serializers.CharField(allow_blank=True)
    purpose = serializers.CharField(allow_blank=True)
    retention_days = serializers.IntegerField(allow_null=True)


class SubjectLifeEventSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    kind = serializers.CharField()
    detected_at = serializers.DateTimeField()
    source = serializers.CharField(allow_blank=True)
    confidence = serializers.FloatField()
    detail = serializers.DictField()
    handled_at = serializers.DateTimeField(allow_null=True)


class SubjectMetricsSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    identity_count = serializers.IntegerField()
    order_count = serializers.IntegerField()
    revenue_total = serializers.IntegerField()
    first_order_at = serializers.DateTimeField(allow_null=True)
    last_order_at = serializers.DateTimeField(allow_null=True)
    average_order_value = serializers.IntegerField()
    event_count = serializers.IntegerField()
    last_event_at = serializers.DateTimeField(allow_null=True)
    last_event_by_type = serializers.DictField()
    last_nps = serializers.IntegerField(allow_null=True)
    rfm_recency = serializers.IntegerField(allow_null=True)
    rfm_frequency = serializers.IntegerField(allow_null=True)
    rfm_monetary = serializers.IntegerField(allow_null=True)
    lead_score = serializers.IntegerField()
    lead_stage = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class SubjectSegmentSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    segment_id = serializers.IntegerField()
    segment = serializers.CharField()
    department = serializers.CharField(allow_null=True)
    added_at = serializers.DateTimeField()


class SubjectExportSerializer(serializers.Serializer):
    """Everything held about one person (and the profiles merged into theirs)."""

    format = serializers.CharField()
    generated_at = serializers.DateTimeField()
    customer = SubjectProfileSerializer()
    merged_profiles = SubjectProfileSerializer(many=True)
    identities = SubjectIdentitySerializer(many=True)
    consents = SubjectConsentSerializer(many=True)
    important_dates = SubjectImportantDateSerializer(many=True)
    attributes = SubjectAttributeSerializer(many=True)
    life_events = SubjectLifeEventSerializer(many=True)
    metrics = SubjectMetricsSerializer(many=True)
    segments = SubjectSegmentSerializer(many=True)
    sections = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="Rows of the outer circles by section: events, orders, deliveries…",
    )


class ErasureRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", trim_whitespace=True
    )


class ErasureResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    erased_at = serializers.DateTimeField()
    profiles = serializers.ListField(
        child=serializers.IntegerField(), help_text="This profile and the ones merged into it."
    )


class SubjectRequestActions:
    """Data-subject requests on one customer, mixed into ``CustomerViewSet``:
    ``customers/{id}/personal-data/`` and ``customers/{id}/erase/``."""

    def _customer(self, pk) -> Customer:
        number = parse_id(pk)
        customer = Customer.objects.filter(pk=number).first() if number else None
        if customer is None:
            raise NotFound("No such customer.")
        return customer

    @extend_schema(
        summary="Everything held about a customer (data-subject access request)",
        description="The profile and every profile merged into it, with identifiers, consent "
        "history, dates, attributes, situations, metrics, segments and the outer circles' rows. "
        "Audited as customer.subject_export.",
        parameters=[CUSTOMER_ID],
        request=None,
        responses=SubjectExportSerializer,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="personal-data",
        permission_classes=[CanHandleSubjectRequests],
    )
    def personal_data(self, request: Request, pk=None) -> Response:
        data = subject_export(customer=self._customer(pk), by=request.user)
        return Response(data)

    @extend_schema(
        summary="Erase a customer's personal data (data-subject erasure request)",
        description="Blanks personal fields, replaces identifiers by keyed hashes, withdraws "
        "consents and removes free text, keeping aggregates; idempotent. Audited as "
        "customer.erase with the reason.",
        parameters=[CUSTOMER_ID],
        request=ErasureRequestSerializer,
        responses=ErasureResultSerializer,
    )
    @action(detail=True, methods=["post"], permission_classes=[CanHandleSubjectRequests])
    def erase(self, request: Request, pk=None) -> Response:
        customer = self._customer(pk)
        serializer = ErasureRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subject_erase(
            customer=customer, by=request.user, reason=serializer.validated_data["reason"]
        )
        profiles = [profile.pk for profile in person_profiles(customer)]
        return Response(
            ErasureResultSerializer(
                {"id": customer.pk, "erased_at": customer.erased_at, "profiles": profiles}
            ).data
        )
