"""REST API of circle ③: personas, journeys, campaigns, their deliveries and staff tasks.

Campaigns are read by the departments that own them or share them, and change status
through ``journeys.services.campaign_transition`` (approve, pause…), which checks the
asking person's role. Deliveries are listed only for visible campaigns, newest first with a
cursor (the table grows by millions), and their addresses are masked without ``view_pii``.

Authentication: the browser's session everywhere; an integration's API token (an editor of
one department, never allowed personal data) may also *read* campaigns, their results and
their deliveries, for warehouses and reporting tools. Status changes need a person, since
approval is a manager's decision and the audit log names who took it, and staff tasks
belong to the signed-in salesperson, so neither accepts tokens.
"""

from __future__ import annotations

import dataclasses
import re

import django_filters
from django.db.models import Count, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.viewsets import GenericViewSet

from config.org.api import (
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    HasDepartmentMembership,
    IdFilter,
    enum_field,
    service_call,
)
from config.org.authentication import ApiTokenAuthentication
from config.org.services import audit_record
from customers.identity import mask_identifier
from customers.selectors import can_view_pii, mask_text
from journeys.filters import CampaignFilter, JourneyFilter, PersonaFilter
from journeys.models import (
    Campaign,
    CampaignStep,
    Delivery,
    Journey,
    Persona,
    StaffTask,
    Stage,
    Variant,
)
from journeys.services import CAMPAIGN_ACTIONS, campaign_transition


def experience_value_codes() -> serializers.SlugRelatedField:
    """The five values as their codes (``deal``, ``fun``…); needs the relation prefetched."""
    return serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)


class PersonaSummarySerializer(DepartmentOwnedSummarySerializer):
    experience_values = experience_value_codes()

    class Meta:
        model = Persona
        fields = [
            "id",
            "name",
            "initials",
            "color",
            "segment",
            "experience_values",
            "owner_department",
            "updated_at",
        ]


class PersonaDetailSerializer(DepartmentOwnedDetailSerializer):
    experience_values = experience_value_codes()

    class Meta:
        model = Persona
        fields = [
            "id",
            "name",
            "initials",
            "color",
            "profile",
            "goals",
            "pains",
            "situations",
            "values",
            "preferred_channels",
            "quotes",
            "segment",
            "experience_values",
            "owner_department",
            "shared_with",
            "updated_at",
        ]


class PersonaViewSet(DepartmentScopedReadOnlyViewSet):
    """Personas owned by, or shared with, the asking user's departments."""

    queryset = Persona.objects.select_related("owner_department").prefetch_related(
        "experience_values"
    )
    serializer_class = PersonaSummarySerializer
    detail_serializer_class = PersonaDetailSerializer
    filterset_class = PersonaFilter


class PersonaRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Persona
        fields = ["id", "name"]


class StageSerializer(serializers.ModelSerializer):
    experience_values = experience_value_codes()

    class Meta:
        model = Stage
        fields = [
            "id",
            "position",
            "name",
            "customer_goal",
            "actions",
            "thoughts",
            "emotion",
            "pain_points",
            "opportunities",
            "kpi",
            "owner",
            "touchpoints",
            "experience_values",
            "versions",
        ]


class JourneySummarySerializer(DepartmentOwnedSummarySerializer):
    persona = PersonaRefSerializer(read_only=True)
    stage_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Journey
        fields = ["id", "name", "persona", "stage_count", "owner_department", "updated_at"]


class JourneyDetailSerializer(DepartmentOwnedDetailSerializer):
    persona = PersonaRefSerializer(read_only=True)
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "description",
            "persona",
            "stages",
            "owner_department",
            "shared_with",
            "updated_at",
        ]


class JourneyViewSet(DepartmentScopedReadOnlyViewSet):
    """Journeys, each with its stages in order; scoped to the asking user's departments."""

    queryset = Journey.objects.select_related("owner_department", "persona")
    serializer_class = JourneySummarySerializer
    detail_serializer_class = JourneyDetailSerializer
    filterset_class = JourneyFilter

    def shape_queryset(self, queryset):
        if self.action == "retrieve":
            stages = Stage.objects.order_by("position").prefetch_related(
                "touchpoints", "experience_values"
            )
            return queryset.prefetch_related(Prefetch("stages", queryset=stages))
        return queryset.annotate(stage_count=Count("stages"))


# --- campaigns ------------------------------------------------------------------------------


class VariantSerializer(serializers.ModelSerializer):
    content = serializers.JSONField(
        read_only=True,
        help_text='Language code → {"subject": …, "body": …}, in Django template syntax.',
    )

    class Meta:
        model = Variant
        fields = ["id", "label", "weight", "content"]


class CampaignStepSerializer(serializers.ModelSerializer):
    condition = serializers.JSONField(
        read_only=True, help_text="A segment rule tree checked when the step is due; {} = always."
    )
    variants = VariantSerializer(many=True, read_only=True)

    class Meta:
        model = CampaignStep
        fields = ["id", "position", "name", "delay_minutes", "condition", "variants"]


class CampaignSummarySerializer(DepartmentOwnedSummarySerializer):
    kind = enum_field(Campaign.Kind)
    channel = enum_field(Campaign.Channel)
    status = enum_field(Campaign.Status)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "kind",
            "channel",
            "status",
            "preset",
            "segment",
            "priority",
            "holdout_percent",
            "starts_at",
            "ends_at",
            "next_run_at",
            "approval_requested_at",
            "approved_at",
            "owner_department",
            "created_at",
        ]


class CampaignDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Campaign.Kind)
    channel = enum_field(Campaign.Channel)
    status = enum_field(Campaign.Status)
    trigger = serializers.JSONField(
        read_only=True,
        help_text=(
            "By kind — event: event_type, properties; date: date_kind, days_before; "
            "situation: situation; every kind: unless (event types that end an enrolment)."
        ),
    )
    audience_rules = serializers.JSONField(
        read_only=True, help_text="A segment rule tree every person must match to enter."
    )
    experience_values = experience_value_codes()
    steps = CampaignStepSerializer(many=True, read_only=True)
    task_assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "goal",
            "kind",
            "channel",
            "status",
            "preset",
            "segment",
            "audience_rules",
            "trigger",
            "cron",
            "journey_stage",
            "experience_values",
            "priority",
            "is_marketing",
            "respect_quiet_hours",
            "holdout_percent",
            "conversion_window_days",
            "webhook_url",
            "task_assignee",
            "task_store",
            "starts_at",
            "ends_at",
            "next_run_at",
            "steps",
            "owner_department",
            "shared_with",
            "created_by",
            "approval_requested_at",
            "approved_by",
            "approved_at",
            "created_at",
            "updated_at",
        ]


class CampaignTransitionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=CAMPAIGN_ACTIONS,
        help_text=(
            "request_approval (editors, drafts), approve / reject (managers of the owner "
            "department), pause (editors), resume / complete (managers)."
        ),
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="Why a draft is rejected; ignored by the other actions.",
    )


class FunnelSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    converted = serializers.IntegerField()


class OutcomeSerializer(serializers.Serializer):
    status = serializers.CharField()
    label = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class LiftSerializer(serializers.Serializer):
    """Enrolments converted, treatment vs holdout; rates and interval null when too few."""

    treatment_n = serializers.IntegerField()
    treatment_converted = serializers.IntegerField()
    holdout_n = serializers.IntegerField()
    holdout_converted = serializers.IntegerField()
    enough = serializers.BooleanField(help_text="Both groups are big enough for an interval.")
    treatment_rate = serializers.FloatField(allow_null=True)
    holdout_rate = serializers.FloatField(allow_null=True)
    difference = serializers.FloatField(
        allow_null=True, help_text="Treatment rate − holdout rate (0.012 = 1.2 points)."
    )
    ci_low = serializers.FloatField(allow_null=True, help_text="95 % interval of the difference.")
    ci_high = serializers.FloatField(allow_null=True)
    relative = serializers.FloatField(allow_null=True, help_text="Difference ÷ holdout rate.")
    significant = serializers.BooleanField(help_text="The 95 % interval excludes zero.")


class LatencySerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Sends measured (the latest ones).")
    p50 = serializers.FloatField(allow_null=True, help_text="Seconds, trigger → channel.")
    p95 = serializers.FloatField(allow_null=True)


class VariantResultSerializer(serializers.Serializer):
    step = serializers.IntegerField(source="step_id")
    step_position = serializers.IntegerField(source="step__position")
    step_name = serializers.CharField(source="step__name", allow_blank=True)
    variant = serializers.CharField(source="variant__label", allow_null=True)
    total = serializers.IntegerField()
    holdout = serializers.IntegerField()
    sent = serializers.IntegerField(source="sent_at")
    delivered = serializers.IntegerField(source="delivered_at")
    opened = serializers.IntegerField(source="opened_at")
    clicked = serializers.IntegerField(source="clicked_at")
    converted = serializers.IntegerField(source="converted_at")
    revenue = serializers.IntegerField(allow_null=True)
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    conversion_rate = serializers.FloatField(allow_null=True)


class CampaignResultsSerializer(serializers.Serializer):
    """``journeys.selectors.campaign_results`` as JSON: the results page's figures."""

    total = serializers.IntegerField(help_text="Deliveries, holdout included.")
    holdout = serializers.IntegerField(help_text="Deliveries held out (never sent).")
    pending = serializers.IntegerField(help_text="Waiting to be sent (or being sent).")
    funnel = FunnelSerializer(help_text="Sends reaching each stage, from the timestamps.")
    revenue = serializers.IntegerField(help_text="Attributed order revenue (yen).")
    outcomes = OutcomeSerializer(many=True, help_text="Not sent or deferred, by reason.")
    lift = LiftSerializer()
    latency = LatencySerializer()
    by_variant = VariantResultSerializer(many=True)


def results_data(results: dict) -> dict:
    """The selector's dict in the API's shape: the funnel as an object, the lift as data."""
    lift = results["lift"]
    return {
        **results,
        "funnel": dict(results["funnel"]),
        "lift": {**dataclasses.asdict(lift), "significant": lift.significant},
    }


CAMPAIGN_RESULTS_EXAMPLE = OpenApiExample(
    "A completed email with a holdout group",
    value={
        "total": 2000,
        "holdout": 200,
        "pending": 0,
        "funnel": {"sent": 1780, "delivered": 1760, "opened": 702, "clicked": 233, "converted": 61},
        "revenue": 412300,
        "outcomes": [
            {"status": "suppressed", "label": "Suppressed", "reason": "no_consent", "count": 20}
        ],
        "lift": {
            "treatment_n": 1800,
            "treatment_converted": 61,
            "holdout_n": 200,
            "holdout_converted": 2,
            "enough": True,
            "treatment_rate": 0.0339,
            "holdout_rate": 0.01,
            "difference": 0.0239,
            "ci_low": 0.0082,
            "ci_high": 0.0396,
            "relative": 2.39,
            "significant": True,
        },
        "latency": {"n": 1780, "p50": 4.2, "p95": 18.0},
        "by_variant": [
            {
                "step": 31,
                "step_position": 1,
                "step_name": "",
                "variant": "A",
                "total": 2000,
                "holdout": 200,
                "sent": 1780,
                "delivered": 1760,
                "opened": 702,
                "clicked": 233,
                "converted": 61,
                "revenue": 412300,
                "open_rate": 0.394,
                "click_rate": 0.131,
                "conversion_rate": 0.0343,
            }
        ],
    },
    response_only=True,
)


class CampaignViewSet(DepartmentScopedReadOnlyViewSet):
    """Campaigns with their steps and variants, scoped to the asking user's departments."""

    queryset = Campaign.objects.select_related("owner_department")
    serializer_class = CampaignSummarySerializer
    detail_serializer_class = CampaignDetailSerializer
    filterset_class = CampaignFilter
    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]

    def shape_queryset(self, queryset):
        if self.action in ("retrieve", "transition"):
            variants = Variant.objects.order_by("label")
            steps = CampaignStep.objects.order_by("position").prefetch_related(
                Prefetch("variants", queryset=variants)
            )
            return queryset.select_related(
                "created_by", "approved_by", "task_assignee"
            ).prefetch_related(Prefetch("steps", queryset=steps), "experience_values")
        return queryset

    def get_serializer_class(self):
        if self.action == "transition":
            return CampaignTransitionSerializer
        return super().get_serializer_class()

    @extend_schema(
        summary="Move a campaign through its lifecycle (approve, pause, resume…)",
        request=CampaignTransitionSerializer,
        responses={
            200: CampaignDetailSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="A bad action, or the campaign's status or content does not allow it.",
                examples=[
                    OpenApiExample(
                        "Unknown action",
                        value={"action": ['"launch" is not a valid choice.']},
                        response_only=True,
                    ),
                    OpenApiExample(
                        "Not a draft",
                        value={"status": ["only a draft is approved"]},
                        response_only=True,
                    ),
                ],
            ),
            403: OpenApiResponse(description="Your role does not allow this action."),
            404: OpenApiResponse(description="No campaign with this id is visible to you."),
        },
        examples=[
            OpenApiExample("Approve", value={"action": "approve"}, request_only=True),
            OpenApiExample(
                "Reject with a note",
                value={"action": "reject", "note": "Add the English subject, please."},
                request_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"], authentication_classes=[SessionAuthentication])
    def transition(self, request: Request, pk=None) -> Response:
        """Session only: approvals and stops are a person's decision, audited by name."""
        campaign = self.get_object()
        incoming = CampaignTransitionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        service_call(
            campaign_transition,
            campaign=campaign,
            action=incoming.validated_data["action"],
            note=incoming.validated_data["note"],
            by=request.user,
        )
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(
            CampaignDetailSerializer(campaign, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Funnel, revenue and lift against the holdout group",
        responses={200: CampaignResultsSerializer},
        examples=[CAMPAIGN_RESULTS_EXAMPLE],
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def results(self, request: Request, pk=None) -> Response:
        """The figures of the campaign's results page, as ``journeys.selectors`` computes them."""
        from journeys.selectors import campaign_results

        results = results_data(campaign_results(self.get_object()))
        return Response(CampaignResultsSerializer(results).data)


# --- deliveries -----------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(Delivery.Status.values)})
class DeliveryStatusFilter(django_filters.ChoiceFilter):
    """A delivery status, named in the schema as an enum."""


class DeliveryFilter(django_filters.FilterSet):
    """Ids, never model choices, so no department learns which ids another one holds."""

    campaign = IdFilter(field_name="campaign_id")
    customer = IdFilter(field_name="customer_id")
    step = IdFilter(field_name="step_id")
    status = DeliveryStatusFilter(choices=Delivery.Status.choices)
    occurrence = django_filters.CharFilter()

    class Meta:
        model = Delivery
        fields = []


class DeliveryCursorPagination(CursorPagination):
    """Newest first by id: stable under inserts and one index range per page, at any depth."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


_EMAIL = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+")


class DeliverySerializer(serializers.ModelSerializer):
    """One send; ``address`` (and addresses quoted in ``error``) masked without ``view_pii``."""

    status = enum_field(Delivery.Status)
    step_position = serializers.IntegerField(source="step.position", read_only=True)
    variant = serializers.SlugRelatedField(slug_field="label", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "campaign",
            "step",
            "step_position",
            "customer",
            "occurrence",
            "variant",
            "status",
            "reason",
            "address",
            "due_at",
            "created_at",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "converted_at",
            "order",
            "revenue",
            "attempts",
            "error",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_pii", False):
            kind = "email" if instance.campaign.channel == Campaign.Channel.EMAIL else "other"
            data["address"] = mask_identifier(kind, instance.address)
            error = data["error"]
            if instance.address:
                error = error.replace(instance.address, data["address"])
            data["error"] = _EMAIL.sub(lambda m: mask_identifier("email", m.group()), error)
        return data


DELIVERY_EXAMPLE = OpenApiExample(
    "A page of deliveries (masked)",
    value={
        "next": "http://localhost:8000/api/v1/deliveries/?campaign=12&cursor=cD0xMjM0NQ%3D%3D",
        "previous": None,
        "results": [
            {
                "id": 12346,
                "campaign": 12,
                "step": 31,
                "step_position": 1,
                "customer": 4711,
                "occurrence": "r202611271000",
                "variant": "A",
                "status": "clicked",
                "reason": "",
                "address": "h***@example.jp",
                "due_at": "2026-11-27T10:00:00+09:00",
                "created_at": "2026-11-27T10:00:00+09:00",
                "sent_at": "2026-11-27T10:00:04+09:00",
                "delivered_at": None,
                "opened_at": "2026-11-27T12:31:10+09:00",
                "clicked_at": "2026-11-27T12:31:40+09:00",
                "converted_at": None,
                "order": None,
                "revenue": None,
                "attempts": 1,
                "error": "",
            }
        ],
    },
    response_only=True,
)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Deliveries of the campaigns the asking user can see, newest first (cursor pages).

    Filter with ``?campaign=…&status=…&customer=…``. Addresses are masked for roles
    without personal-data access; an unmasked page is written to the audit log.
    """

    queryset = Delivery.objects.select_related("campaign", "step", "variant")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter
    pagination_class = DeliveryCursorPagination
    permission_classes = [HasDepartmentMembership]
    authentication_classes = [SessionAuthentication, ApiTokenAuthentication]

    def get_queryset(self) -> QuerySet[Delivery]:
        visible = Campaign.objects.visible_to(self.request.user).values("pk")
        return super().get_queryset().filter(campaign__in=visible)

    @extend_schema(summary="One delivery of a visible campaign")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        delivery = self.get_object()
        show_pii = can_view_pii(request.user)
        context = {**self.get_serializer_context(), "show_pii": show_pii}
        if show_pii:
            audit_record(
                actor=request.user,
                action="delivery.view_pii",
                target=delivery,
                detail={"rows": 1},
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return Response(DeliverySerializer(delivery, context=context).data)

    @extend_schema(
        summary="Deliveries of visible campaigns, newest first, with cursor pagination",
        examples=[DELIVERY_EXAMPLE],
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        show_pii = can_view_pii(request.user)
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), "show_pii": show_pii}
        data = DeliverySerializer(page, many=True, context=context).data
        if show_pii and page:
            audit_record(
                actor=request.user,
                action="delivery.view_pii",
                detail={
                    "filters": {
                        key: request.query_params.get(key)
                        for key in DeliveryFilter.base_filters
                        if key in request.query_params
                    },
                    "rows": len(page),
                },
                ip_address=request.META.get("REMOTE_ADDR"),
            )
        return self.get_paginated_response(data)


# --- staff tasks ----------------------------------------------------------------------------


class CampaignRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name"]


class StaffTaskSerializer(serializers.ModelSerializer):
    """A task of the asking salesperson; the customer's name masked without ``view_pii``."""

    status = enum_field(StaffTask.Status)
    outcome_code = serializers.CharField(read_only=True)
    campaign = CampaignRefSerializer(read_only=True)
    customer_name = serializers.SerializerMethodField()
    store = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = StaffTask
        fields = [
            "id",
            "campaign",
            "customer",
            "customer_name",
            "store",
            "title",
            "instructions",
            "due_at",
            "status",
            "outcome_code",
            "outcome",
            "completed_at",
            "created_at",
        ]

    def get_customer_name(self, task) -> str:
        name = task.customer.full_name
        return name if self.context.get("show_pii") else mask_text(name)


class StaffTaskQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[*StaffTask.Status.values, "all"], default=StaffTask.Status.OPEN
    )
    scope = serializers.ChoiceField(
        choices=["mine", "department"],
        default="mine",
        help_text=(
            "mine: assigned to you, or unassigned in your departments and stores; "
            "department: every task of the departments you manage."
        ),
    )


class StaffTaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """The asking user's staff tasks (visits, calls), as the tasks page lists them.

    Session only: a task belongs to a person, and an API token is nobody in particular.
    """

    queryset = StaffTask.objects.none()
    lookup_value_regex = r"\d+"
    serializer_class = StaffTaskSerializer
    filterset_class = None
    permission_classes = [HasDepartmentMembership]

    @extend_schema(
        summary="My staff tasks: visits and calls, soonest due first",
        parameters=[StaffTaskQuerySerializer],
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        from journeys.selectors import staff_tasks_for

        query = StaffTaskQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tasks = staff_tasks_for(request.user, **query.validated_data)
        page = self.paginate_queryset(tasks)
        context = {**self.get_serializer_context(), "show_pii": can_view_pii(request.user)}
        data = StaffTaskSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    @extend_schema(summary="One of my staff tasks (or of a department I manage)")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        from journeys.selectors import staff_task_for

        task = staff_task_for(request.user, int(kwargs["pk"]))
        context = {**self.get_serializer_context(), "show_pii": can_view_pii(request.user)}
        return Response(StaffTaskSerializer(task, context=context).data)


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("personas", PersonaViewSet)
    router.register("journeys", JourneyViewSet)
    router.register("campaigns", CampaignViewSet)
    router.register("deliveries", DeliveryViewSet, basename="delivery")
    router.register("staff-tasks", StaffTaskViewSet, basename="staff-task")
