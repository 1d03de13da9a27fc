"""REST API of circle ③: personas, journeys with their stages, campaigns with their steps."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from rest_framework import serializers
from rest_framework.routers import BaseRouter

from config.org.api import (
    DepartmentOwnedDetailSerializer,
    DepartmentOwnedSummarySerializer,
    DepartmentScopedReadOnlyViewSet,
    enum_field,
)
from journeys.filters import CampaignFilter, JourneyFilter, PersonaFilter
from journeys.models import Campaign, CampaignStep, Journey, Persona, Stage


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
            "version",
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


class CampaignStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignStep
        fields = ["id", "position", "wait_days", "subject", "body"]


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
            "segment",
            "starts_at",
            "ends_at",
            "owner_department",
            "created_at",
        ]


class CampaignDetailSerializer(DepartmentOwnedDetailSerializer):
    kind = enum_field(Campaign.Kind)
    channel = enum_field(Campaign.Channel)
    status = enum_field(Campaign.Status)
    experience_values = experience_value_codes()
    steps = CampaignStepSerializer(many=True, read_only=True)
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
            "segment",
            "trigger",
            "journey_stage",
            "experience_values",
            "holdout_percent",
            "starts_at",
            "ends_at",
            "steps",
            "owner_department",
            "shared_with",
            "created_by",
            "approved_by",
            "approved_at",
            "created_at",
        ]


class CampaignViewSet(DepartmentScopedReadOnlyViewSet):
    """Campaigns, each with its steps in order; scoped to the asking user's departments."""

    queryset = Campaign.objects.select_related("owner_department")
    serializer_class = CampaignSummarySerializer
    detail_serializer_class = CampaignDetailSerializer
    filterset_class = CampaignFilter

    def shape_queryset(self, queryset):
        if self.action == "retrieve":
            steps = CampaignStep.objects.order_by("position")
            return queryset.select_related("created_by", "approved_by").prefetch_related(
                Prefetch("steps", queryset=steps), "experience_values"
            )
        return queryset


def register(router: BaseRouter) -> None:
    """Add this circle's endpoints to the API router (called by ``config/api.py``)."""
    router.register("personas", PersonaViewSet)
    router.register("journeys", JourneyViewSet)
    router.register("campaigns", CampaignViewSet)
