"""Reads of circle ④: company figures, and the four-circle overview built from each circle.

Reports sit outermost, so they may read every inner circle; each circle's own headline
query lives in that circle's ``selectors.py`` and is only labelled here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, Count, DateField, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.selectors import customer_headline
from experience.models import Order, Survey, SurveyResponse
from experience.nps import nps_counts, nps_score
from experience.selectors import experience_headline
from journeys.selectors import platform_headline
from reports.models import DailyOrders, HeadlineSnapshot

CIRCLES = ("customer", "experience", "platform", "strategy")
RECENT_WINDOW = dt.timedelta(days=30)
YEAR_WINDOW = dt.timedelta(days=365)
HEADLINE_FRESH = dt.timedelta(minutes=30)  # two runs of the 15-minute refresh


@dataclass(frozen=True)
class Figure:
    """One headline number of a circle; ``value`` None means "nothing to measure yet"."""

    key: str
    label: str
    value: int | float | None
    unit: str = "count"  # count | percent | yen | score
    hint: str = ""


@dataclass(frozen=True)
class CircleFigures:
    circle: str
    figures: list[Figure]
    empty_hint: str = ""
    as_of: dt.datetime | None = None  # when read from a stored snapshot, its time


@dataclass(frozen=True)
class MonthlyOrders:
    month: dt.date
    orders: int
    revenue: int


def strategy_headline(*, now: dt.datetime) -> dict[str, float | int | None]:
    """NPS and 12-month LTV over the year before ``now``, in two aggregate queries.

    NPS as everywhere (``experience.nps``); LTV is
    revenue of completed orders divided by the distinct customers who placed them, in yen.
    """
    since = now - YEAR_WINDOW
    answers = SurveyResponse.objects.filter(
        survey__kind=Survey.Kind.NPS, answered_at__gte=since, answered_at__lte=now
    ).aggregate(**nps_counts())
    sales = Order.objects.filter(
        status=Order.Status.COMPLETED, ordered_at__gte=since, ordered_at__lte=now
    ).aggregate(revenue=Sum("total"), buyers=Count("customer", distinct=True))

    nps = nps_score(**answers)
    ltv = None
    if sales["buyers"]:
        ltv = int((Decimal(sales["revenue"]) / sales["buyers"]).quantize(Decimal(1), ROUND_HALF_UP))
    return {"nps_12m": nps, "ltv_12m": ltv, "buyers_12m": sales["buyers"]}


#: Headlines whose live query is too slow to run per page view at 1M customers, stored by the
#: 15-minute refresh of the read models (``reports.customer_rollups.headline_store``):
#: the strategy circle reads a year of raw orders and answers; the customer circle counts
#: every profile and groups every identifier (2 s on PostgreSQL at 1M customers).
STORED_HEADLINES = {
    "customer": lambda now: customer_headline(),
    "strategy": lambda now: strategy_headline(now=now),
}


def headline_stored(name: str, *, now: dt.datetime) -> tuple[dict, dt.datetime | None]:
    """(figures, stored at) of a ``STORED_HEADLINES`` entry: its snapshot when computed in
    the ``HEADLINE_FRESH`` before ``now``, else computed live (stored at None)."""
    stored = HeadlineSnapshot.objects.filter(
        name=name, computed_at__lte=now, computed_at__gt=now - HEADLINE_FRESH
    ).first()
    if stored is not None:
        return stored.data, stored.computed_at
    return STORED_HEADLINES[name](now), None


def circle_figures(circle: str, *, user, now: dt.datetime) -> CircleFigures:
    """The labelled headline figures of one circle, as the home page cards show them.

    Raises ``LookupError`` for a name that is not one of ``CIRCLES``.
    """
    recent = now - RECENT_WINDOW
    if circle == "customer":
        data, as_of = headline_stored("customer", now=now)
        return CircleFigures(
            circle,
            [
                Figure("customers_total", _("Customers"), data["customers_total"]),
                Figure(
                    "customers_multi_identifier_pct",
                    _("Known by more than one identifier"),
                    data["customers_multi_identifier_pct"],
                    unit="percent",
                ),
            ],
            empty_hint=""
            if data["customers_total"]
            else _("No customers yet — import a member list or run “make demo”."),
            as_of=as_of,
        )
    if circle == "experience":
        data = experience_headline(user, since=recent)
        return CircleFigures(
            circle,
            [
                Figure("touchpoints_active", _("Active touchpoints"), data["touchpoints_active"]),
                Figure("events_30d", _("Events in the last 30 days"), data["events_30d"]),
            ],
            empty_hint=""
            if data["touchpoints_active"]
            else _(
                "No touchpoints your departments own or were shared yet — register your "
                "channels and stores, or ask their owners to share them."
            ),
        )
    if circle == "platform":
        data = platform_headline(user, since=recent)
        return CircleFigures(
            circle,
            [
                Figure("campaigns_active", _("Active campaigns"), data["campaigns_active"]),
                Figure(
                    "deliveries_30d", _("Deliveries in the last 30 days"), data["deliveries_30d"]
                ),
            ],
            empty_hint=""
            if data["campaigns_active"]
            else _("No running or scheduled campaigns your departments can see yet."),
        )
    if circle == "strategy":
        data, as_of = headline_stored("strategy", now=now)
        return CircleFigures(
            circle,
            [
                Figure(
                    "nps_12m",
                    _("NPS, last 12 months"),
                    data["nps_12m"],
                    unit="score",
                    hint="" if data["nps_12m"] is not None else _("No NPS answers yet."),
                ),
                Figure(
                    "ltv_12m",
                    _("12-month LTV per customer"),
                    data["ltv_12m"],
                    unit="yen",
                    hint="" if data["ltv_12m"] is not None else _("No completed orders yet."),
                ),
            ],
            empty_hint=""
            if data["buyers_12m"]
            else _("Figures appear once orders and survey answers arrive."),
            as_of=as_of,
        )
    raise LookupError(circle)


def monthly_orders(*, now: dt.datetime, months: int = 12) -> list[MonthlyOrders]:
    """Completed orders and revenue per calendar month (local time), oldest first.

    The last ``months`` months up to and including the current one; months without orders
    are present with zeros so charts keep an even axis. From the daily orders rollup
    (``DailyOrders``, keyed by local day: at most ~370 rows summed per month, never the
    raw orders), so as fresh as the every-minute refresh.
    """
    first_month = _add_months(timezone.localdate(now).replace(day=1), -(months - 1))
    starts = [_add_months(first_month, offset) for offset in range(months + 1)]
    month_of = Case(
        *(When(day__lt=starts[index + 1], then=Value(starts[index])) for index in range(months)),
        output_field=DateField(),
    )
    rows = (
        DailyOrders.objects.filter(day__gte=starts[0], day__lt=starts[-1])
        .annotate(month=month_of)
        .values("month")
        .annotate(orders=Sum("orders"), revenue=Sum("revenue"))
        .order_by()
    )
    found = {row["month"]: row for row in rows}
    empty = {"orders": 0, "revenue": 0}
    return [
        MonthlyOrders(
            month=month,
            orders=int(found.get(month, empty)["orders"] or 0),
            revenue=int(found.get(month, empty)["revenue"] or 0),
        )
        for month in starts[:-1]
    ]


def _add_months(day: dt.date, count: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + count
    return day.replace(year=index // 12, month=index % 12 + 1, day=1)
