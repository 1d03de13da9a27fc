"""Circle ③ page: the campaign calendar, one month at a time (htmx swaps the month)."""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
from collections import defaultdict

from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from journeys.selectors import campaign_calendar


def _month_of(value: str, today: dt.date) -> dt.date:
    """The first day of ``YYYY-MM`` (this month when missing or malformed)."""
    try:
        year, month = (int(part) for part in value.split("-"))
        return dt.date(year, month, 1)
    except (TypeError, ValueError):
        return today.replace(day=1)


@require_GET
def calendar_month(request):
    """Run slots (done and upcoming) and always-on trigger campaigns of a month, for the
    campaigns the user may see, in the current time zone."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate()
    first = _month_of(request.GET.get("month", ""), today)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(following, dt.time.min, tzinfo=zone)
    data = campaign_calendar(request.user, start, end)

    by_day = defaultdict(list)
    for item in data["runs"]:
        by_day[timezone.localtime(item.at, zone).date()].append(item)
    weeks = [
        [
            {"date": day, "in_month": day.month == first.month, "items": by_day.get(day, [])}
            for day in week
        ]
        for week in pycalendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    ]
    template = "journeys/calendar.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#month"
    response = render(
        request,
        template,
        {
            "active_circle": "platform",
            "section": "calendar",
            "month": first,
            "previous": f"{previous:%Y-%m}",
            "next": f"{following:%Y-%m}",
            "this_month": f"{today:%Y-%m}",
            "today": today,
            "weeks": weeks,
            "weekdays": [dt.date(2024, 1, day) for day in range(1, 8)],  # Monday…Sunday
            "spans": data["spans"],
            "has_items": bool(data["runs"] or data["spans"]),
        },
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


urlpatterns = [
    path("calendar/", calendar_month, name="calendar"),
]
