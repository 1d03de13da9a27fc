"""Circle ②'s share of CustomerMetrics: orders, events and NPS, registered into circle ①.

Each function returns querysets grouped by ``customer_id`` whose columns are named after
CustomerMetrics fields; ``customers.metrics.metrics_rebuild`` joins them in one upsert.

Lead score: engagement in the last 30 days, each event weighted by how close it is to a
purchase — product view 1, app open 1, push opened 1, email or LINE click 2, favourite
added 2, add to cart 3, store visit 3, checkout started 4, purchase 5 — capped at 100.
Other event types (page views, sent messages…) do not count.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import JSONObject, Least

from customers.metrics import IsoTimestamp, JSONStripNulls, register_metric_source
from experience.models import Event, EventType, Order, Survey, SurveyResponse

#: Event types whose latest time is kept in ``last_event_by_type``.
KEY_EVENT_TYPES = ("purchase", "add_to_cart", "product_view", "app_open", "store_visit")

LEAD_WINDOW = dt.timedelta(days=30)
LEAD_WEIGHTS = {
    "product_view": 1,
    "app_open": 1,
    "push_opened": 1,
    "email_clicked": 2,
    "line_clicked": 2,
    "favorite_added": 2,
    "add_to_cart": 3,
    "store_visit": 3,
    "checkout_started": 4,
    "purchase": 5,
}
LEAD_CAP = 100


@register_metric_source
def order_metrics(*, scope: dict, now: dt.datetime) -> list[QuerySet]:
    """Completed orders: count, revenue, first and last order."""
    return [
        Order.objects.filter(status=Order.Status.COMPLETED, **scope)
        .order_by()
        .values("customer_id")
        .annotate(
            order_count=Count("pk"),
            revenue_total=Sum("total"),
            first_order_at=Min("ordered_at"),
            last_order_at=Max("ordered_at"),
        )
    ]


@register_metric_source
def event_metrics(*, scope: dict, now: dt.datetime) -> list[QuerySet]:
    """Events: count, latest, latest per key type, and the lead score (one pass)."""
    type_ids = dict(
        EventType.objects.filter(name__in={*KEY_EVENT_TYPES, *LEAD_WEIGHTS}).values_list(
            "name", "pk"
        )
    )
    latest = {
        name: IsoTimestamp(Max(Case(When(event_type_id=type_ids[name], then=F("occurred_at")))))
        for name in KEY_EVENT_TYPES
        if name in type_ids
    }
    weight = Case(
        *[
            When(event_type_id=type_ids[name], then=Value(points))
            for name, points in LEAD_WEIGHTS.items()
            if name in type_ids
        ],
        default=Value(0),
        output_field=IntegerField(),
    )
    recent = Q(occurred_at__gte=now - LEAD_WINDOW)
    annotations = {
        "event_count": Count("pk"),
        "last_event_at": Max("occurred_at"),
        "lead_score": Least(Sum(weight, filter=recent, default=0), Value(LEAD_CAP)),
    }
    if latest:
        annotations["last_event_by_type"] = JSONStripNulls(JSONObject(**latest))
    return [Event.objects.filter(**scope).order_by().values("customer_id").annotate(**annotations)]


@register_metric_source
def nps_metrics(*, scope: dict, now: dt.datetime) -> list[QuerySet]:
    """The score of each customer's latest NPS answer.

    Grouped by customer with the latest score as a correlated probe of the
    (customer, answered_at) index: a window function here would be wrapped in a sub-query
    that SQLite cannot index when it is joined to the customers.
    """
    nps = SurveyResponse.objects.filter(survey__kind=Survey.Kind.NPS)
    latest_score = (
        nps.filter(customer_id=OuterRef("customer_id"))
        .order_by("-answered_at", "-pk")
        .values("score")[:1]
    )
    return [
        nps.filter(**scope)
        .order_by()
        .values("customer_id")
        .annotate(last_nps=Max(Subquery(latest_score, output_field=IntegerField())))
    ]
