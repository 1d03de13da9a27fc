"""Segment conditions on behaviour data, registered into circle ①'s rule-tree registry.

- ``event`` [event, min_count?=1, within_days?, touchpoint?]: at least N events of a type
  (optionally at one touchpoint, by code) within the last D days.
- ``order`` [min_count?=1, within_days?, touchpoint?]: at least N completed orders.

One match compiles to ``EXISTS``; more to a correlated ``COUNT`` compared with N. Both are
correlated on the customer, so the database probes the (customer, occurred_at) and
(customer, ordered_at) indexes per customer instead of scanning the log.
"""

from __future__ import annotations

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from customers.segments import CompileContext, register_condition
from experience.models import Event, EventType, Order, Touchpoint


def at_least(rows: QuerySet, min_count: int) -> Q:
    """Rows correlated on ``customer = OuterRef("pk")``: at least ``min_count`` of them."""
    if min_count <= 1:
        return Q(Exists(rows))
    counted = rows.order_by().values("customer").annotate(n=Count("pk")).values("n")
    count = Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
    return Q(GreaterThanOrEqual(count, min_count))


def _compile_event(params: dict, ctx: CompileContext) -> Q:
    rows = Event.objects.filter(
        customer=OuterRef("pk"),
        event_type__in=EventType.objects.filter(name=params["event"]).values("pk"),
    )
    if params.get("within_days") is not None:
        rows = rows.filter(occurred_at__gte=ctx.days_ago(params["within_days"]))
    if params.get("touchpoint"):
        rows = rows.filter(
            touchpoint__in=Touchpoint.objects.filter(code=params["touchpoint"]).values("pk")
        )
    return at_least(rows, params.get("min_count") or 1)


def _compile_order(params: dict, ctx: CompileContext) -> Q:
    rows = Order.objects.filter(customer=OuterRef("pk"), status=Order.Status.COMPLETED)
    if params.get("within_days") is not None:
        rows = rows.filter(ordered_at__gte=ctx.days_ago(params["within_days"]))
    if params.get("touchpoint"):
        rows = rows.filter(
            touchpoint__in=Touchpoint.objects.filter(code=params["touchpoint"]).values("pk")
        )
    return at_least(rows, params.get("min_count") or 1)


def _event_choices(user) -> dict:
    # Touchpoint codes are listed company-wide: they name channels, not department data.
    return {
        "event": [(name, name) for name in EventType.objects.values_list("name", flat=True)],
        "touchpoint": _touchpoint_choices(),
    }


def _touchpoint_choices() -> list[tuple[str, str]]:
    return list(Touchpoint.objects.order_by("code").values_list("code", "name"))


def _describe_window(params: dict) -> str:
    parts = []
    if params.get("touchpoint"):
        parts.append(gettext("at %(touchpoint)s") % {"touchpoint": params["touchpoint"]})
    if params.get("within_days") is not None:
        parts.append(gettext("within %(days)s days") % {"days": params["within_days"]})
    return (" " + " ".join(parts)) if parts else ""


register_condition(
    "event",
    _compile_event,
    label=_("Event in a time window"),
    schema={
        "type": "object",
        "properties": {
            "event": {"type": "string", "title": _("Event type")},
            "min_count": {"type": "integer", "minimum": 1, "title": _("At least (times)")},
            "within_days": {"type": "integer", "minimum": 1, "title": _("Within days")},
            "touchpoint": {"type": "string", "title": _("Touchpoint")},
        },
        "required": ["event"],
    },
    choices=_event_choices,
    describe=lambda p: (
        gettext("%(event)s at least %(count)s×%(window)s")
        % {"event": p["event"], "count": p.get("min_count") or 1, "window": _describe_window(p)}
    ),
)

register_condition(
    "order",
    _compile_order,
    label=_("Completed orders"),
    schema={
        "type": "object",
        "properties": {
            "min_count": {"type": "integer", "minimum": 1, "title": _("At least (orders)")},
            "within_days": {"type": "integer", "minimum": 1, "title": _("Within days")},
            "touchpoint": {"type": "string", "title": _("Touchpoint")},
        },
        "required": [],
    },
    choices=lambda user: {"touchpoint": _touchpoint_choices()},
    describe=lambda p: (
        gettext("at least %(count)s completed order(s)%(window)s")
        % {"count": p.get("min_count") or 1, "window": _describe_window(p)}
    ),
)
