"""Filters of the platform API: personas, journeys and campaigns."""

from __future__ import annotations

from config.org.api import DepartmentOwnedFilterSet, IdFilter
from journeys.models import Campaign, Journey, Persona


class PersonaFilter(DepartmentOwnedFilterSet):
    segment = IdFilter(field_name="segment_id")

    class Meta:
        model = Persona
        fields = []


class JourneyFilter(DepartmentOwnedFilterSet):
    persona = IdFilter(field_name="persona_id")

    class Meta:
        model = Journey
        fields = []


class CampaignFilter(DepartmentOwnedFilterSet):
    segment = IdFilter(field_name="segment_id")

    class Meta:
        model = Campaign
        fields = ["status", "channel", "kind"]
