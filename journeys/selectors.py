"""Reads of circle ③: personas, journeys and campaigns, always scoped to the asking user."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from journeys.models import Campaign, Delivery, Journey, Persona

ACTIVE_CAMPAIGN_STATUSES = (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED)


def platform_headline(user, *, since: dt.datetime) -> dict[str, int]:
    """Active campaigns the user can see, and their deliveries created since ``since``."""
    campaigns = Campaign.objects.visible_to(user)
    return {
        "campaigns_active": campaigns.filter(status__in=ACTIVE_CAMPAIGN_STATUSES).count(),
        "deliveries_30d": Delivery.objects.filter(
            campaign__in=campaigns.values("pk"), created_at__gte=since
        ).count(),
    }


def persona_list(user) -> QuerySet[Persona]:
    """Personas the user can see, with owner department and backing segment."""
    return (
        Persona.objects.visible_to(user)
        .select_related("owner_department", "segment")
        .order_by("name")
    )


def journey_list(user) -> QuerySet[Journey]:
    """Journeys the user can see, with their persona and owner department."""
    return (
        Journey.objects.visible_to(user)
        .select_related("owner_department", "persona")
        .order_by("name")
    )


def campaign_list(user) -> QuerySet[Campaign]:
    """Campaigns the user can see, newest first."""
    return (
        Campaign.objects.visible_to(user)
        .select_related("owner_department")
        .order_by("-created_at", "-pk")
    )
