"""Circle ② pages: the touchpoint map."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from experience.selectors import touchpoint_list

RECENT_WINDOW = dt.timedelta(days=30)


def index(request):
    """Touchpoints the user's departments own or were shared, grouped by kind."""
    touchpoints = touchpoint_list(request.user, since=timezone.now() - RECENT_WINDOW)
    return render(
        request,
        "experience/index.html",
        {"active_circle": "experience", "touchpoints": touchpoints},
    )


urlpatterns = [
    path("", index, name="index"),
]
