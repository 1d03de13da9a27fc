"""Reads of circle ④: NPS and LTV arithmetic, monthly orders, the circle figures."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from experience.models import Order, Survey
from reports.rollups import rollups_rebuild
from reports.selectors import CIRCLES, circle_figures, monthly_orders, strategy_headline
from tests.factories import OrderFactory, SurveyFactory, SurveyResponseFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def test_nps_is_promoters_minus_detractors_over_nps_answers_of_the_last_year():
    now = timezone.now()
    nps = SurveyFactory(kind=Survey.Kind.NPS)
    csat = SurveyFactory(kind=Survey.Kind.CSAT)
    for score in (10, 9, 9, 8, 7, 6, 0):  # 3 promoters, 2 passives, 2 detractors
        SurveyResponseFactory(survey=nps, score=score, answered_at=now - dt.timedelta(days=10))
    SurveyResponseFactory(survey=nps, score=0, answered_at=now - dt.timedelta(days=400))
    SurveyResponseFactory(survey=csat, score=1, answered_at=now - dt.timedelta(days=10))

    assert strategy_headline(now=now)["nps_12m"] == round((3 - 2) * 100 / 7, 1) == 14.3


def test_nps_can_be_negative():
    now = timezone.now()
    survey = SurveyFactory()
    for score in (3, 9, 5):
        SurveyResponseFactory(survey=survey, score=score, answered_at=now)

    assert strategy_headline(now=now)["nps_12m"] == -33.3


def test_ltv_is_completed_revenue_per_buyer_of_the_last_year():
    now = timezone.now()
    first = OrderFactory(total=5000, ordered_at=now - dt.timedelta(days=5)).customer
    OrderFactory(customer=first, total=3000, ordered_at=now - dt.timedelta(days=100))
    OrderFactory(total=4001, ordered_at=now - dt.timedelta(days=7))
    OrderFactory(total=90000, status=Order.Status.CANCELLED, ordered_at=now)
    OrderFactory(total=90000, ordered_at=now - dt.timedelta(days=400))

    headline = strategy_headline(now=now)

    assert headline["ltv_12m"] == 6001  # (5000 + 3000 + 4001) / 2 buyers, rounded
    assert headline["buyers_12m"] == 2


def test_strategy_headline_without_answers_or_orders_has_no_values():
    assert strategy_headline(now=timezone.now()) == {
        "nps_12m": None,
        "ltv_12m": None,
        "buyers_12m": 0,
    }


def test_monthly_orders_fill_empty_months_and_group_by_tokyo_month():
    now = dt.datetime(2025, 3, 15, 12, 0, tzinfo=TOKYO)
    # 31 January 16:00 UTC is already 1 February in Tokyo.
    OrderFactory(total=1000, ordered_at=dt.datetime(2025, 1, 31, 16, 0, tzinfo=dt.UTC))
    OrderFactory(total=2000, ordered_at=dt.datetime(2025, 2, 10, 9, 0, tzinfo=TOKYO))
    OrderFactory(total=3000, ordered_at=dt.datetime(2025, 3, 1, 0, 30, tzinfo=TOKYO))
    OrderFactory(total=7000, status=Order.Status.RETURNED, ordered_at=now)
    OrderFactory(total=9000, ordered_at=dt.datetime(2024, 3, 31, 9, 0, tzinfo=TOKYO))
    rollups_rebuild()  # monthly orders read the daily orders rollup

    rows = monthly_orders(now=now)

    assert len(rows) == 12
    assert rows[0].month == dt.date(2024, 4, 1)
    assert rows[-1].month == dt.date(2025, 3, 1)
    by_month = {row.month: (row.orders, row.revenue) for row in rows}
    assert by_month[dt.date(2025, 2, 1)] == (2, 3000)
    assert by_month[dt.date(2025, 3, 1)] == (1, 3000)
    assert by_month[dt.date(2025, 1, 1)] == (0, 0)
    assert sum(row.orders for row in rows) == 3


def test_every_circle_has_two_figures_with_stable_keys(crm_editor):
    keys = {
        circle: [
            figure.key
            for figure in circle_figures(circle, user=crm_editor, now=timezone.now()).figures
        ]
        for circle in CIRCLES
    }

    assert keys == {
        "customer": ["customers_total", "customers_multi_identifier_pct"],
        "experience": ["touchpoints_active", "events_30d"],
        "platform": ["campaigns_active", "deliveries_30d"],
        "strategy": ["nps_12m", "ltv_12m"],
    }


def test_unknown_circle_is_a_lookup_error(crm_editor):
    with pytest.raises(LookupError):
        circle_figures("galaxy", user=crm_editor, now=timezone.now())
