"""Circle ③'s front page: personas, journeys and the latest campaigns."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import path

from config.org.models import Role
from config.org.selectors import has_role_anywhere
from journeys.maps.selectors import activity_feed
from journeys.selectors import campaign_list, journey_list, persona_list

CAMPAIGNS_SHOWN = 50
ACTIVITY_SHOWN = 15


def index(request):
    """Personas, journeys, their latest changes and comments, and the latest campaigns the
    user's departments can see."""
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
            "activity": activity_feed(user, limit=ACTIVITY_SHOWN),
            "can_create": has_role_anywhere(user, Role.EDITOR),
        },
    )


urlpatterns = [
    path("", index, name="index"),
]
