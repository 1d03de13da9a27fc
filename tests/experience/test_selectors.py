"""Reads of circle ②: headline figures, the touchpoint map and detail, experience values."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from config.org.services import share_grant
from experience.models import ExperienceValue, Order, Survey, Touchpoint
from experience.selectors import (
    TouchpointMapFilters,
    experience_headline,
    experience_value_overview,
    touchpoint_detail_figures,
    touchpoint_list,
    touchpoint_map,
)
from tests.factories import (
    CampaignFactory,
    EventFactory,
    OrderFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db


def test_headline_counts_visible_active_touchpoints_and_recent_events(crm, sales, crm_editor):
    now = timezone.now()
    TouchpointFactory(owner_department=crm)
    TouchpointFactory(owner_department=crm, is_active=False)
    TouchpointFactory(owner_department=sales)
    shared = TouchpointFactory(owner_department=sales)
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    EventFactory.create_batch(2, occurred_at=now - dt.timedelta(days=1))
    EventFactory(occurred_at=now - dt.timedelta(days=31))

    headline = experience_headline(crm_editor, since=now - dt.timedelta(days=30))

    assert headline == {"touchpoints_active": 2, "events_30d": 2}


def test_list_shows_own_and_shared_touchpoints_only(crm, sales, crm_editor):
    own = TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=sales, name="Sales visits")
    shared = TouchpointFactory(owner_department=sales, name="Flagship store")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)

    rows = touchpoint_list(crm_editor, since=timezone.now() - dt.timedelta(days=30))

    assert set(rows) == {own, shared}


def test_list_is_grouped_by_kind_and_counts_recent_events_per_touchpoint(crm, crm_editor):
    now = timezone.now()
    TouchpointFactory(owner_department=crm, kind=Touchpoint.Kind.APP, channel="app")
    store = TouchpointFactory(
        owner_department=crm, kind=Touchpoint.Kind.OFFLINE, channel=Touchpoint.Channel.STORE
    )
    web = TouchpointFactory(owner_department=crm, kind=Touchpoint.Kind.ONLINE)
    EventFactory.create_batch(3, touchpoint=web, occurred_at=now - dt.timedelta(days=2))
    EventFactory(touchpoint=web, occurred_at=now - dt.timedelta(days=40))
    EventFactory(touchpoint=store, occurred_at=now - dt.timedelta(days=40))

    rows = list(touchpoint_list(crm_editor, since=now - dt.timedelta(days=30)))

    assert [(row.kind, row.recent_event_count) for row in rows] == [
        (Touchpoint.Kind.ONLINE, 3),
        (Touchpoint.Kind.OFFLINE, 0),
        (Touchpoint.Kind.APP, 0),
    ]


# --- The touchpoint map ----------------------------------------------------------------------

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def _days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_map_counts_volume_previous_volume_orders_and_trend(crm, crm_editor):
    web = TouchpointFactory(owner_department=crm, name="Web shop")
    store = TouchpointFactory(owner_department=crm, name="Store", kind=Touchpoint.Kind.OFFLINE)
    EventFactory.create_batch(3, touchpoint=web, occurred_at=_days_ago(1))
    EventFactory(touchpoint=web, occurred_at=_days_ago(29.9))
    EventFactory.create_batch(2, touchpoint=web, occurred_at=_days_ago(45))
    EventFactory(touchpoint=web, occurred_at=_days_ago(61))  # older than both windows
    EventFactory.create_batch(2, touchpoint=store, occurred_at=_days_ago(40))
    OrderFactory.create_batch(2, touchpoint=web, ordered_at=_days_ago(3))
    OrderFactory(touchpoint=web, ordered_at=_days_ago(3), status=Order.Status.CANCELLED)
    OrderFactory(touchpoint=web, ordered_at=_days_ago(31))

    result = touchpoint_map(crm_editor, now=NOW)

    rows = {row.name: row for row in result.rows}
    assert (rows["Web shop"].events_30d, rows["Web shop"].events_prev_30d) == (4, 2)
    assert rows["Web shop"].trend == "up"
    assert rows["Web shop"].orders_30d == 2
    assert (rows["Store"].events_30d, rows["Store"].events_prev_30d) == (0, 2)
    assert rows["Store"].trend == "down"
    assert result.totals["events_30d"] == 4
    assert result.totals["events_prev_30d"] == 4
    assert result.totals["orders_30d"] == 2
    assert result.totals["count"] == 2


def test_map_nps_counts_answers_for_the_touchpoint_or_its_survey_over_12_months(crm, crm_editor):
    web = TouchpointFactory(owner_department=crm, name="Web shop")
    other = TouchpointFactory(owner_department=crm, name="App")
    survey = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS, touchpoint=web)
    loose = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS)
    csat = SurveyFactory(owner_department=crm, kind=Survey.Kind.CSAT, touchpoint=web)
    for score in (10, 9, 8, 3):  # answered for the touchpoint itself
        SurveyResponseFactory(survey=loose, touchpoint=web, score=score, answered_at=_days_ago(5))
    SurveyResponseFactory(survey=survey, score=0, answered_at=_days_ago(100))  # via its survey
    SurveyResponseFactory(survey=survey, touchpoint=other, score=10, answered_at=_days_ago(5))
    SurveyResponseFactory(survey=survey, score=10, answered_at=_days_ago(400))  # too old
    SurveyResponseFactory(survey=csat, touchpoint=web, score=2, answered_at=_days_ago(5))

    rows = {row.name: row for row in touchpoint_map(crm_editor, now=NOW).rows}

    # promoters 10, 9; passive 8; detractors 3, 0 → (2 − 2) / 5 = 0
    assert rows["Web shop"].nps == {"total": 5, "promoters": 2, "detractors": 2, "score": 0.0}
    assert rows["App"].nps == {"total": 1, "promoters": 1, "detractors": 0, "score": 100.0}


def test_map_totals_nps_is_computed_from_all_answers(crm, crm_editor):
    web = TouchpointFactory(owner_department=crm)
    app = TouchpointFactory(owner_department=crm)
    survey = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS)
    for touchpoint, score in ((web, 10), (web, 2), (app, 9), (app, 7)):
        SurveyResponseFactory(
            survey=survey, touchpoint=touchpoint, score=score, answered_at=_days_ago(1)
        )

    totals = touchpoint_map(crm_editor, now=NOW).totals

    assert totals["nps"] == {"total": 4, "promoters": 2, "detractors": 1, "score": 25.0}


def test_map_filters_by_kind_channel_value_department_and_inactive(crm, sales, crm_editor):
    share_grant(
        obj=TouchpointFactory(owner_department=sales, name="Shared store", kind="offline"),
        department=crm,
        can_edit=False,
        by=None,
    )
    web = TouchpointFactory(owner_department=crm, name="Web", channel=Touchpoint.Channel.WEB)
    web.experience_values.add(ExperienceValue.objects.get(code="convenience"))
    TouchpointFactory(owner_department=crm, name="Mail", channel=Touchpoint.Channel.EMAIL)
    TouchpointFactory(owner_department=crm, name="Old", is_active=False)

    def names(**filters) -> list[str]:
        rows = touchpoint_map(crm_editor, now=NOW, filters=TouchpointMapFilters(**filters)).rows
        return sorted(row.name for row in rows)

    assert names() == ["Mail", "Shared store", "Web"]
    assert names(include_inactive=True) == ["Mail", "Old", "Shared store", "Web"]
    assert names(kind="offline") == ["Shared store"]
    assert names(channel="email") == ["Mail"]
    assert names(value="convenience") == ["Web"]
    assert names(department_id=sales.pk) == ["Shared store"]


def test_map_hides_other_departments_touchpoints(crm, sales, crm_editor):
    TouchpointFactory(owner_department=sales, name="Sales visits")

    assert touchpoint_map(crm_editor, now=NOW).rows == []


def test_detail_figures_count_types_weeks_and_nps_split(crm):
    touchpoint = TouchpointFactory(owner_department=crm)
    EventFactory.create_batch(2, touchpoint=touchpoint, occurred_at=_days_ago(1))
    EventFactory(
        touchpoint=touchpoint,
        occurred_at=_days_ago(2),
        event_type__name="purchase",
    )
    EventFactory(touchpoint=touchpoint, occurred_at=_days_ago(50))
    survey = SurveyFactory(owner_department=crm, touchpoint=touchpoint)
    for score, comment in ((10, "Lovely"), (8, ""), (5, "Slow delivery")):
        SurveyResponseFactory(survey=survey, score=score, comment=comment, answered_at=_days_ago(3))

    figures = touchpoint_detail_figures(touchpoint, now=NOW)

    assert [(row["event_type__name"], row["n"]) for row in figures["events_by_type"]] == [
        ("page_view", 2),
        ("purchase", 1),
    ]
    assert len(figures["weeks"]) == 12
    assert sum(week["n"] for week in figures["weeks"]) == 4
    assert figures["weeks"][-1]["start"] <= NOW.date()
    assert figures["nps"]["promoters"] == 1
    assert figures["nps"]["passives"] == 1
    assert figures["nps"]["detractors"] == 1
    assert figures["nps"]["score"] == 0.0
    assert [r.comment for r in figures["comments"]] == ["Slow delivery", "Lovely"]


# --- Experience values -----------------------------------------------------------------------


def test_value_overview_counts_visible_touchpoints_campaigns_and_delivering_events(
    crm, sales, crm_editor
):
    deal = ExperienceValue.objects.get(code="deal")
    fun = ExperienceValue.objects.get(code="fun")
    own = TouchpointFactory(owner_department=crm, name="Coupons")
    own.experience_values.add(deal, fun)
    TouchpointFactory(owner_department=sales).experience_values.add(deal)  # not visible
    CampaignFactory(owner_department=crm).experience_values.add(deal)
    CampaignFactory(owner_department=sales).experience_values.add(deal)  # not visible
    bits = ExperienceValue.bits_for
    EventFactory(value_bits=bits(["deal", "fun"]), occurred_at=_days_ago(1))
    EventFactory(value_bits=bits(["deal"]), occurred_at=_days_ago(2))
    EventFactory(value_bits=bits(["deal"]), occurred_at=_days_ago(40))  # too old
    EventFactory(value_bits=bits(["empathy"]), occurred_at=_days_ago(3))
    EventFactory(value_bits=0, occurred_at=_days_ago(1))

    values = {value.code: value for value in experience_value_overview(crm_editor, now=NOW)}

    assert list(values) == ["deal", "convenience", "fun", "reassurance", "empathy"]
    assert [t.name for t in values["deal"].visible_touchpoints] == ["Coupons"]
    assert values["deal"].campaign_count == 1
    assert values["fun"].campaign_count == 0
    assert {code: value.events_30d for code, value in values.items()} == {
        "deal": 2,
        "convenience": 0,
        "fun": 1,
        "reassurance": 0,
        "empathy": 1,
    }
