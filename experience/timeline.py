"""Circle ②'s part of the customer 360 timeline: events, orders and survey answers.

Registered into ``customers.timeline`` at app start (see apps.py). Each source is one query
on a (customer, time) index, newest first, limited to the page size.
"""

from __future__ import annotations

import functools

from django.db.models import BooleanField, Exists, OuterRef, QuerySet, Value
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from customers.timeline import (
    TimelineCursor,
    TimelineEntry,
    TimelineFilters,
    cursor_q,
    register_timeline_source,
)
from experience.models import Event, Order, Survey, SurveyResponse, Touchpoint

CHANNEL_LABELS = dict(Touchpoint.Channel.choices)

# Properties worth a glance on the timeline, in this order; the rest stay in the admin.
EVENT_DETAIL_KEYS = (
    "note",
    "outcome",
    "sku",
    "query",
    "price",
    "quantity",
    "os",
    "url",
    "campaign",
)


def visible_flag(model, field: str, viewer):
    """An annotation: may ``viewer`` see the department-owned row that ``field`` points at?

    Names of other departments' touchpoints and surveys stay hidden; the customer's own
    behaviour (what, when, through which channel) is company-wide like the profile.
    """
    if viewer is None or not viewer.is_authenticated:
        return Value(False, output_field=BooleanField())
    if viewer.is_superuser:
        return Value(True, output_field=BooleanField())
    return Exists(model.objects.visible_to(viewer).filter(pk=OuterRef(field)))


def _touchpoint_filters(queryset: QuerySet, filters: TimelineFilters) -> QuerySet:
    if filters.channel:
        queryset = queryset.filter(touchpoint__channel=filters.channel)
    if filters.department_id:
        queryset = queryset.filter(touchpoint__owner_department_id=filters.department_id)
    return queryset


@functools.lru_cache(maxsize=128)
def _channel_label(channel: str, language: str | None) -> str:
    """The channel's label in ``language`` (the active one): translating a lazy label costs
    ~0.1 ms, several milliseconds over a page of 50 rows (B7)."""
    return str(CHANNEL_LABELS.get(channel, channel))


def _touchpoint_bits(
    touchpoint_id: int | None, channel: str, name: str, department: str, visible: bool
) -> tuple[str, str, str, str]:
    """(channel, channel label, department name, touchpoint name or "") of a row's
    touchpoint, from plain values (the events source reads rows, not instances)."""
    if touchpoint_id is None:
        return "", "", "", ""
    label = _channel_label(channel, get_language())
    return channel, label, department, name if visible else ""


def _event_detail(properties: dict) -> str:
    if not isinstance(properties, dict):
        return ""
    shown = [f"{key}: {properties[key]}" for key in EVENT_DETAIL_KEYS if key in properties]
    return " · ".join(shown)[:200]


def events_fetch(
    customer_id: int, *, before: TimelineCursor | None, limit: int, filters: TimelineFilters
) -> list[TimelineEntry]:
    """Behaviour events; index Event (customer, occurred_at)."""
    events = _touchpoint_filters(
        Event.objects.filter(customer_id=customer_id).filter(
            cursor_q(before, source="events", at_field="occurred_at")
        ),
        filters,
    )
    # Plain rows, not model instances: a page reads limit + 1 events of a person who may
    # have 100k, and building an Event, EventType, Touchpoint and Department per row was
    # most of this source's time (B7).
    rows = (
        events.annotate(
            touchpoint_visible=visible_flag(Touchpoint, "touchpoint_id", filters.viewer)
        )
        .order_by("-occurred_at", "-pk")
        .values_list(
            "pk",
            "occurred_at",
            "properties",
            "event_type__name",
            "event_type__description",
            "touchpoint_id",
            "touchpoint__name",
            "touchpoint__channel",
            "touchpoint__owner_department__name",
            "touchpoint_visible",
        )[:limit]
    )
    entries = []
    for pk, at, properties, kind, description, touchpoint_id, name, channel, owner, seen in rows:
        channel, channel_label, department, place = _touchpoint_bits(
            touchpoint_id, channel, name, owner, seen
        )
        detail = " · ".join(part for part in (place, _event_detail(properties)) if part)
        entries.append(
            TimelineEntry(
                at=at,
                source="events",
                id=pk,
                kind=kind,
                title=description or kind,
                detail=detail,
                channel=channel,
                channel_label=channel_label,
                department=department,
                icon="event",
            )
        )
    return entries


def orders_fetch(
    customer_id: int, *, before: TimelineCursor | None, limit: int, filters: TimelineFilters
) -> list[TimelineEntry]:
    """Orders in any channel; index Order (customer, ordered_at)."""
    orders = _touchpoint_filters(
        Order.objects.filter(customer_id=customer_id).filter(
            cursor_q(before, source="orders", at_field="ordered_at")
        ),
        filters,
    )
    orders = (
        orders.select_related("touchpoint__owner_department")
        .annotate(touchpoint_visible=visible_flag(Touchpoint, "touchpoint_id", filters.viewer))
        .order_by("-ordered_at", "-pk")[:limit]
    )
    entries = []
    for order in orders:
        touchpoint = order.touchpoint
        channel, channel_label, department, place = _touchpoint_bits(
            order.touchpoint_id,
            touchpoint.channel if touchpoint else "",
            touchpoint.name if touchpoint else "",
            touchpoint.owner_department.name if touchpoint else "",
            order.touchpoint_visible,
        )
        title = _("Order %(number)s: ¥%(total)s") % {
            "number": order.number,
            "total": f"{order.total:,.0f}",
        }
        detail = " · ".join(part for part in (str(order.get_status_display()), place) if part)
        entries.append(
            TimelineEntry(
                at=order.ordered_at,
                source="orders",
                id=order.pk,
                kind=order.status,
                title=title,
                detail=detail,
                channel=channel,
                channel_label=channel_label,
                department=department,
                icon="order",
            )
        )
    return entries


def surveys_fetch(
    customer_id: int, *, before: TimelineCursor | None, limit: int, filters: TimelineFilters
) -> list[TimelineEntry]:
    """Survey answers (NPS score and comment); index SurveyResponse (customer, answered_at).

    The department is the survey's owner; the channel is where it was answered.
    """
    responses = SurveyResponse.objects.filter(customer_id=customer_id).filter(
        cursor_q(before, source="surveys", at_field="answered_at")
    )
    if filters.channel:
        responses = responses.filter(touchpoint__channel=filters.channel)
    if filters.department_id:
        responses = responses.filter(survey__owner_department_id=filters.department_id)
    responses = (
        responses.select_related("survey__owner_department", "touchpoint")
        .annotate(survey_visible=visible_flag(Survey, "survey_id", filters.viewer))
        .order_by("-answered_at", "-pk")[:limit]
    )
    entries = []
    for response in responses:
        survey = response.survey
        if survey.kind == Survey.Kind.NPS:
            title = _("NPS answer: %(score)s / 10") % {"score": response.score}
        else:
            title = _("Satisfaction answer: %(score)s / 5") % {"score": response.score}
        name = survey.name if response.survey_visible else ""
        detail = " · ".join(part for part in (response.comment, name) if part)
        touchpoint = response.touchpoint
        entries.append(
            TimelineEntry(
                at=response.answered_at,
                source="surveys",
                id=response.pk,
                kind=survey.kind,
                title=title,
                detail=detail,
                channel=touchpoint.channel if touchpoint else "",
                channel_label=str(touchpoint.get_channel_display()) if touchpoint else "",
                department=survey.owner_department.name,
                icon="survey",
            )
        )
    return entries


register_timeline_source(
    "events",
    events_fetch,
    label=gettext_lazy("Events"),
    channels=Touchpoint.Channel.choices,
)
register_timeline_source(
    "orders",
    orders_fetch,
    label=gettext_lazy("Orders"),
    channels=Touchpoint.Channel.choices,
)
register_timeline_source(
    "surveys",
    surveys_fetch,
    label=gettext_lazy("Survey answers"),
    channels=Touchpoint.Channel.choices,
)
