"""Daily rollups equal a plain-Python computation over the raw rows, by local Tokyo day.

Every expected figure below is computed in Python from the raw rows (``values()`` of the
source tables, grouped with ``datetime.astimezone``), never with the rollup's own queries.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone

from experience.models import Event, Order, Survey, SurveyResponse
from journeys.models import Delivery
from reports.models import DailyAnswers, DailyDeliveries, DailyEvents, DailyOrders, RollupState
from reports.rollups import (
    day_bounds,
    day_ranges,
    fixed_offset_minutes,
    local_day,
    rollups_rebuild,
    rollups_refresh,
)
from tests.factories import (
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    EventTypeFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
UTC = dt.UTC
NOT_SENT = {"suppressed", "capped", "failed"}
STEPS = ("sent", "delivered", "opened", "clicked", "converted")


def at(day: dt.date, hour: int = 12, minute: int = 0, tz=TOKYO) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def today() -> dt.date:
    return dt.datetime.now(TOKYO).date()


# --- independent expectations: plain Python over the raw rows ------------------------------


def day_of(value: dt.datetime, tz=TOKYO) -> dt.date:
    return value.astimezone(tz).date()


def expected_events(tz=TOKYO) -> dict:
    cells = defaultdict(lambda: [0, set()])
    for row in Event.objects.values(
        "occurred_at", "event_type_id", "touchpoint_id", "value_bits", "customer_id"
    ):
        key = (
            day_of(row["occurred_at"], tz),
            row["event_type_id"],
            row["touchpoint_id"],
            row["value_bits"],
        )
        cells[key][0] += 1
        cells[key][1].add(row["customer_id"])
    return {key: (events, len(people)) for key, (events, people) in cells.items()}


def expected_orders() -> dict:
    completed = [
        row
        for row in Order.objects.values("id", "customer_id", "ordered_at", "status", "total")
        if row["status"] == "completed"
    ]
    first_of: dict[int, int] = {}
    for row in sorted(completed, key=lambda row: (row["ordered_at"], row["id"])):
        first_of.setdefault(row["customer_id"], row["id"])
    firsts = set(first_of.values())
    cells = defaultdict(lambda: {"orders": 0, "revenue": 0, "people": set(), "first": 0, "fr": 0})
    touchpoints = dict(Order.objects.values_list("id", "touchpoint_id"))
    for row in completed:
        cell = cells[(day_of(row["ordered_at"]), touchpoints[row["id"]])]
        cell["orders"] += 1
        cell["revenue"] += int(row["total"])
        cell["people"].add(row["customer_id"])
        if row["id"] in firsts:
            cell["first"] += 1
            cell["fr"] += int(row["total"])
    return {
        key: (c["orders"], c["revenue"], len(c["people"]), c["first"], c["fr"])
        for key, c in cells.items()
    }


def expected_answers() -> dict:
    kinds = dict(Survey.objects.values_list("id", "kind"))
    cells = defaultdict(lambda: [0] * 7)
    for row in SurveyResponse.objects.values(
        "answered_at", "survey_id", "touchpoint_id", "score", "comment"
    ):
        cell = cells[(day_of(row["answered_at"]), row["survey_id"], row["touchpoint_id"])]
        score, nps = row["score"], kinds[row["survey_id"]] == "nps"
        cell[0] += 1
        if score is not None:
            cell[1] += 1
            cell[2] += score
            if nps:
                cell[3 if score >= 9 else 4 if score >= 7 else 5] += 1
        cell[6] += row["comment"] != ""
    return {key: tuple(cell) for key, cell in cells.items()}


def expected_deliveries() -> dict:
    cells = defaultdict(lambda: dict.fromkeys((*STEPS, "revenue", "held_out", "not_sent"), 0))
    for row in Delivery.objects.values():
        if row["status"] != "holdout":
            for step in STEPS:
                if row[f"{step}_at"] is not None:
                    cells[(day_of(row[f"{step}_at"]), row["campaign_id"])][step] += 1
            if row["converted_at"] is not None:
                cell = cells[(day_of(row["converted_at"]), row["campaign_id"])]
                cell["revenue"] += int(row["revenue"] or 0)
        created = cells[(day_of(row["created_at"]), row["campaign_id"])]
        created["held_out"] += row["status"] == "holdout"
        created["not_sent"] += row["status"] in NOT_SENT
    return {key: tuple(cell.values()) for key, cell in cells.items() if any(cell.values())}


def expected() -> dict:
    return {
        "events": expected_events(),
        "orders": expected_orders(),
        "answers": expected_answers(),
        "deliveries": expected_deliveries(),
    }


# --- what the rollups hold -----------------------------------------------------------------


def rolled_events() -> dict:
    rows = DailyEvents.objects.values_list(
        "day", "event_type_id", "touchpoint_id", "value_bits", "events", "customers"
    )
    assert len(rows) == len({row[:4] for row in rows}), "one row per day and key"
    return {row[:4]: row[4:] for row in rows}


def rolled_orders() -> dict:
    rows = DailyOrders.objects.values_list(
        "day", "touchpoint_id", "orders", "revenue", "customers", "first_orders", "first_revenue"
    )
    assert len(rows) == len({row[:2] for row in rows})
    return {row[:2]: (row[2], int(row[3]), row[4], row[5], int(row[6])) for row in rows}


def rolled_answers() -> dict:
    rows = DailyAnswers.objects.values_list(
        "day",
        "survey_id",
        "touchpoint_id",
        "answers",
        "scored",
        "score_sum",
        "promoters",
        "passives",
        "detractors",
        "comments",
    )
    assert len(rows) == len({row[:3] for row in rows})
    return {row[:3]: row[3:] for row in rows}


def rolled_deliveries() -> dict:
    rows = DailyDeliveries.objects.values_list(
        "day",
        "campaign_id",
        *STEPS,
        "revenue",
        "held_out",
        "not_sent",
    )
    assert len(rows) == len({row[:2] for row in rows})
    return {row[:2]: tuple(int(value) for value in row[2:]) for row in rows}


def rolled() -> dict:
    return {
        "events": rolled_events(),
        "orders": rolled_orders(),
        "answers": rolled_answers(),
        "deliveries": rolled_deliveries(),
    }


# --- raw rows ----------------------------------------------------------------------------


def delivery(step, *, created_at, status="sent", **timestamps):
    row = DeliveryFactory(step=step, status=status, **timestamps)
    Delivery.objects.filter(pk=row.pk).update(created_at=created_at)
    return row


@pytest.fixture
def world():
    """Raw rows of every kind around one local midnight (day D 23:59 / D+1 00:00 Tokyo)."""
    d = today() - dt.timedelta(days=20)
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    web, shop = TouchpointFactory(), TouchpointFactory()
    view, buy = EventTypeFactory(name="page_view"), EventTypeFactory(name="purchase")

    EventFactory(customer=a, event_type=view, touchpoint=web, occurred_at=at(d, 23, 59))
    EventFactory(customer=a, event_type=view, touchpoint=web, occurred_at=at(d, 0, 0))
    EventFactory(customer=b, event_type=view, touchpoint=web, occurred_at=at(d, 9))
    EventFactory(customer=a, event_type=view, touchpoint=web, occurred_at=at(d + dt.timedelta(1)))
    EventFactory(
        customer=b, event_type=view, touchpoint=web, occurred_at=at(d + dt.timedelta(1), 0)
    )
    EventFactory(customer=c, event_type=buy, touchpoint=shop, value_bits=5, occurred_at=at(d, 10))
    EventFactory(customer=c, event_type=buy, touchpoint=None, occurred_at=at(d, 11))
    EventFactory(customer=c, event_type=view, touchpoint=web, occurred_at=timezone.now())

    OrderFactory(customer=a, touchpoint=shop, total=1000, ordered_at=at(d, 23, 59))
    OrderFactory(customer=a, touchpoint=shop, total=2000, ordered_at=at(d + dt.timedelta(1), 0))
    tie = at(d, 15)  # two orders of b at the same instant: the lower id is the first
    OrderFactory(customer=b, touchpoint=web, total=300, ordered_at=tie)
    OrderFactory(customer=b, touchpoint=web, total=400, ordered_at=tie)
    OrderFactory(
        customer=c,
        touchpoint=web,
        total=9000,
        status="cancelled",
        ordered_at=at(d - dt.timedelta(3)),
    )
    OrderFactory(customer=c, touchpoint=web, total=700, ordered_at=at(d, 16))
    OrderFactory(customer=c, touchpoint=None, total=800, status="returned", ordered_at=at(d, 17))

    nps = SurveyFactory(kind=Survey.Kind.NPS)
    csat = SurveyFactory(kind=Survey.Kind.CSAT, name="CSAT")
    for score, when in ((10, at(d, 23, 59)), (9, at(d, 1)), (7, at(d, 2)), (3, at(d, 3))):
        SurveyResponseFactory(survey=nps, touchpoint=web, score=score, answered_at=when)
    SurveyResponseFactory(
        survey=nps, touchpoint=web, score=0, comment="遅い", answered_at=at(d + dt.timedelta(1), 0)
    )
    SurveyResponseFactory(survey=nps, touchpoint=None, score=None, answered_at=at(d, 4))
    for score in (5, 4, 1):
        SurveyResponseFactory(survey=csat, touchpoint=shop, score=score, answered_at=at(d, 5))

    step = CampaignStepFactory()
    delivery(
        step,
        created_at=at(d, 23, 59),
        sent_at=at(d, 23, 59),
        delivered_at=at(d + dt.timedelta(1), 0),
        opened_at=at(d + dt.timedelta(2)),
        clicked_at=at(d + dt.timedelta(2), 13),
        converted_at=at(d + dt.timedelta(3)),
        revenue=Decimal(4500),
        status="converted",
    )
    delivery(step, created_at=at(d), sent_at=at(d), status="sent")
    delivery(step, created_at=at(d), status="holdout")
    delivery(step, created_at=at(d + dt.timedelta(1), 0), status="suppressed")
    delivery(step, created_at=at(d + dt.timedelta(1), 0), status="failed")
    delivery(step, created_at=at(d), status="pending")
    return {"d": d, "customers": (a, b, c), "touchpoints": (web, shop), "step": step}


# --- tests ---------------------------------------------------------------------------------


def test_every_rollup_column_equals_a_python_computation_over_the_raw_rows(world):
    written = rollups_rebuild()

    assert rolled() == expected()
    assert written == {name: len(rows) for name, rows in expected().items()}


def test_a_row_at_2359_local_counts_on_that_day_and_one_at_0000_on_the_next(world):
    d, (web, shop) = world["d"], world["touchpoints"]
    assert at(d, 23, 59).astimezone(UTC).strftime("%H:%M") == "14:59"

    rollups_rebuild()

    views = DailyEvents.objects.filter(
        touchpoint=web, event_type__name="page_view", day__lte=d + dt.timedelta(1)
    )
    assert dict(views.values_list("day", "events")) == {d: 3, d + dt.timedelta(1): 2}
    assert views.get(day=d).customers == 2
    orders = DailyOrders.objects.filter(touchpoint=shop)
    assert dict(orders.values_list("day", "orders")) == {d: 1, d + dt.timedelta(1): 1}
    sent = DailyDeliveries.objects.get(day=d)
    delivered = DailyDeliveries.objects.get(day=d + dt.timedelta(1))
    assert (sent.sent, sent.delivered, sent.held_out) == (2, 0, 1)
    assert (delivered.delivered, delivered.not_sent) == (1, 2)


def test_first_orders_are_each_customers_first_completed_order_ties_by_id(world):
    d, (web, shop) = world["d"], world["touchpoints"]

    rollups_rebuild()

    on_web = DailyOrders.objects.get(day=d, touchpoint=web)
    # b's two orders at one instant (300 first by id, 400) and c's first completed (700):
    # c's earlier cancelled order does not count, nor its later returned one.
    assert (on_web.orders, on_web.revenue, on_web.customers) == (3, 1400, 2)
    assert (on_web.first_orders, on_web.first_revenue) == (2, 1000)
    in_shop = DailyOrders.objects.filter(touchpoint=shop).order_by("day")
    assert [(row.first_orders, row.first_revenue) for row in in_shop] == [(1, 1000), (0, 0)]
    assert not DailyOrders.objects.filter(touchpoint=None).exists()


def test_nps_split_only_for_nps_surveys(world):
    d = world["d"]

    rollups_rebuild()

    nps = DailyAnswers.objects.get(day=d, survey__kind=Survey.Kind.NPS, touchpoint__isnull=False)
    assert (nps.answers, nps.promoters, nps.passives, nps.detractors) == (4, 2, 1, 1)
    assert (nps.scored, nps.score_sum) == (4, 29)
    unscored = DailyAnswers.objects.get(day=d, survey__kind=Survey.Kind.NPS, touchpoint=None)
    assert (unscored.answers, unscored.scored, unscored.promoters) == (1, 0, 0)
    csat = DailyAnswers.objects.get(day=d, survey__kind=Survey.Kind.CSAT)
    assert (csat.answers, csat.scored, csat.score_sum) == (3, 3, 10)
    assert (csat.promoters, csat.passives, csat.detractors) == (0, 0, 0)
    next_day = DailyAnswers.objects.get(day=d + dt.timedelta(1))
    assert (next_day.detractors, next_day.comments) == (1, 1)


def test_incremental_refresh_after_adding_rows_equals_a_full_rebuild(world):
    d, (a, b, _c), (web, shop) = world["d"], world["customers"], world["touchpoints"]
    rollups_rebuild()
    newcomer = CustomerFactory()
    view = EventTypeFactory(name="page_view")
    EventFactory(customer=b, event_type=view, touchpoint=web, occurred_at=at(d, 23, 59))
    EventFactory(customer=newcomer, event_type=view, occurred_at=at(d - dt.timedelta(9)))
    EventFactory(customer=newcomer, event_type=view, occurred_at=timezone.now())
    # back-dated: becomes a's first order, so a's order on day D is no longer a first
    OrderFactory(customer=a, touchpoint=web, total=50, ordered_at=at(d - dt.timedelta(40)))
    OrderFactory(customer=newcomer, touchpoint=shop, total=60, ordered_at=at(d, 8))
    SurveyResponseFactory(
        survey=Survey.objects.get(kind=Survey.Kind.NPS), score=8, answered_at=at(d)
    )
    delivery(world["step"], created_at=at(d - dt.timedelta(5)), sent_at=at(d - dt.timedelta(5)))

    rollups_refresh()
    refreshed = rolled()
    rollups_rebuild()

    assert refreshed == rolled() == expected()
    in_shop = DailyOrders.objects.get(day=d, touchpoint=shop)
    assert (in_shop.orders, in_shop.first_orders, in_shop.first_revenue) == (2, 1, 60)


def test_refreshing_twice_changes_nothing(world):
    rollups_refresh()
    first = rolled()
    state = dict(RollupState.objects.values_list("name", "last_id"))

    done = rollups_refresh()

    assert rolled() == first == expected()
    assert dict(RollupState.objects.values_list("name", "last_id")) == state
    assert done == dict.fromkeys(("events", "orders", "answers", "deliveries"), 2)


def test_feedback_arriving_today_changes_only_todays_row(world):
    d, step = world["d"], world["step"]
    old = delivery(step, created_at=at(d - dt.timedelta(10)), sent_at=at(d - dt.timedelta(10)))
    rollups_rebuild()
    before = {row.pk: row for row in DailyDeliveries.objects.all()}
    assert not DailyDeliveries.objects.filter(day=today()).exists()

    Delivery.objects.filter(pk=old.pk).update(status="opened", opened_at=timezone.now())
    rollups_refresh()

    after = {row.pk: row for row in DailyDeliveries.objects.all()}
    row = DailyDeliveries.objects.get(day=today())
    assert (row.campaign_id, row.opened, row.sent, row.delivered) == (step.campaign_id, 1, 0, 0)
    assert set(after) - set(before) == {row.pk}
    for pk, old_row in before.items():  # every other day's row untouched, same id
        assert (after[pk].day, after[pk].opened) == (old_row.day, old_row.opened)
    assert rolled_deliveries() == expected_deliveries()


def test_nightly_refresh_picks_up_an_order_returned_weeks_later(world):
    d, (a, _b, _c) = world["d"], world["customers"]
    rollups_rebuild()
    Order.objects.filter(customer=a, ordered_at=at(d, 23, 59)).update(status="returned")

    rollups_refresh()  # the watermark sees no new row: day D is not recomputed yet
    assert rolled_orders() != expected_orders()
    rollups_refresh(days_back=35)

    assert rolled_orders() == expected_orders()


def test_refresh_days_are_local_days_of_now():
    now = at(dt.date(2026, 3, 1), 0, 30)  # 2026-02-28 15:30 UTC
    EventFactory(occurred_at=now)

    done = rollups_refresh(now=now, days_back=3)

    assert done["events"] == 3
    assert list(DailyEvents.objects.values_list("day", flat=True)) == [dt.date(2026, 3, 1)]


def test_rebuild_of_nothing_writes_nothing():
    assert rollups_rebuild() == {"events": 0, "orders": 0, "answers": 0, "deliveries": 0}
    assert RollupState.objects.count() == 4


def test_local_day_in_a_zone_with_daylight_saving_time():
    """Europe/Berlin has no fixed offset: the day falls back to TruncDate, still exact."""
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    summer, winter = dt.date(2026, 7, 1), dt.date(2026, 1, 15)
    for day in (summer, winter):
        EventFactory(occurred_at=at(day, 23, 59, tz=berlin))
        EventFactory(occurred_at=at(day + dt.timedelta(1), 0, 0, tz=berlin))

    with timezone.override(berlin):
        rollups_rebuild()
        rows = dict(DailyEvents.objects.values_list("day", "events"))
        days = set(
            Event.objects.annotate(day=local_day("occurred_at")).values_list("day", flat=True)
        )

    assert rows == {key[0]: value[0] for key, value in expected_events(berlin).items()}
    assert rows == {summer: 1, summer + dt.timedelta(1): 1, winter: 1, winter + dt.timedelta(1): 1}
    assert days == set(rows)


def test_fixed_offset_only_for_zones_without_daylight_saving_time():
    assert fixed_offset_minutes("Asia/Tokyo") == 540
    assert fixed_offset_minutes("UTC") == 0
    assert fixed_offset_minutes("Asia/Kolkata") == 330
    assert fixed_offset_minutes("Europe/Berlin") is None
    assert fixed_offset_minutes("America/New_York") is None


def test_day_bounds_and_ranges():
    lo, hi = day_bounds(dt.date(2026, 1, 1), dt.date(2026, 1, 2))
    assert (lo.astimezone(UTC), hi.astimezone(UTC)) == (
        dt.datetime(2025, 12, 31, 15, tzinfo=UTC),
        dt.datetime(2026, 1, 2, 15, tzinfo=UTC),
    )
    days = [dt.date(2026, 1, n) for n in (5, 1, 2, 3, 7, 8)]
    assert day_ranges(days) == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 3)),
        (dt.date(2026, 1, 5), dt.date(2026, 1, 5)),
        (dt.date(2026, 1, 7), dt.date(2026, 1, 8)),
    ]
    assert day_ranges(days, max_days=2)[:2] == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 2)),
        (dt.date(2026, 1, 3), dt.date(2026, 1, 3)),
    ]
