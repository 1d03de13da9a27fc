"""Circle ③'s front page: personas, journeys and the latest campaigns."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path

from journeys.selectors import campaign_list, journey_list, persona_list

CAMPAIGNS_SHOWN = 50


def index(request):
    """Personas, journeys and the latest campaigns the user's departments can see."""
    user = request.user
    return render(
        request,
        "journeys/index.html",
        {
            "active_circle": "platform",
            "section": "index",
            "personas": persona_list(user),
            "journeys": journey_list(user),
            "campaigns": campaign_list(user)[:CAMPAIGNS_SHOWN],
            "campaigns_shown": CAMPAIGNS_SHOWN,
            "own_department_ids": set(user.department_ids),
        },
    )


urlpatterns = [
    path("", index, name="index"),
]
