"""Reads of circle ②: touchpoints the user may see and the behaviour recorded there."""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from experience.models import Event, Touchpoint

KIND_ORDER = (Touchpoint.Kind.ONLINE, Touchpoint.Kind.OFFLINE, Touchpoint.Kind.APP)


def experience_headline(user, *, since: dt.datetime) -> dict[str, int]:
    """Active touchpoints the user can see, and events company-wide since ``since``.

    Events are behaviour of company-wide customers, so they are counted for everyone; the
    count is a range scan of the ``(occurred_at, event_type)`` index.
    """
    return {
        "touchpoints_active": Touchpoint.objects.visible_to(user).filter(is_active=True).count(),
        "events_30d": Event.objects.filter(occurred_at__gte=since).count(),
    }


def touchpoint_list(user, *, since: dt.datetime) -> QuerySet[Touchpoint]:
    """Touchpoints visible to the user, online → offline → app, with events since ``since``.

    One query for the rows (owner department joined, event count as a correlated
    sub-query over the ``(touchpoint, occurred_at)`` index) plus one prefetch of values.
    """
    recent_events = (
        Event.objects.filter(touchpoint=OuterRef("pk"), occurred_at__gte=since)
        .order_by()
        .values("touchpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Touchpoint.objects.visible_to(user)
        .select_related("owner_department")
        .prefetch_related("experience_values")
        .annotate(
            recent_event_count=Coalesce(Subquery(recent_events, output_field=IntegerField()), 0)
        )
        .order_by(
            Case(
                *(
                    When(kind=kind, then=Value(position))
                    for position, kind in enumerate(KIND_ORDER)
                ),
                default=Value(len(KIND_ORDER)),
            ),
            "name",
        )
    )
