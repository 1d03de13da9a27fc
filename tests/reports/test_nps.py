"""The NPS report: every figure equals a plain computation over the survey responses."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from customers.models import SegmentMembership
from experience.models import Survey, Touchpoint
from reports.charts.nps import breakdown_figure, trend_figure
from reports.rollups import rollups_rebuild
from tests.factories import (
    CustomerFactory,
    JourneyFactory,
    PersonaFactory,
    SegmentFactory,
    StageFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/nps/"
TOKYO = ZoneInfo("Asia/Tokyo")
QUARTER = {"period": "custom", "start": "2024-04-01", "end": "2024-06-30"}
PREVIOUS = (dt.date(2023, 12, 31), dt.date(2024, 3, 31))  # the 91 days before


def nps(scores: list[int]) -> float | None:
    """The textbook definition, written out once more on purpose."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return round((promoters - detractors) * 100 / len(scores), 1)


def blocks(response) -> dict:
    assert response.status_code == 200, response.content
    return {block["key"]: block for block in response.json()["blocks"]}


def metric(block: dict, key: str):
    return next(m for m in block["metrics"] if m["key"] == key)


@pytest.fixture
def survey_data(crm, sales):
    """Two NPS surveys (CRM's, Sales'), a CSAT survey, touchpoints of both departments,
    segments, a persona and a journey; answers spread over the quarter and the one before."""
    rng = random.Random(7)
    web = TouchpointFactory(owner_department=crm, name="Web shop", channel=Touchpoint.Channel.WEB)
    store = TouchpointFactory(
        owner_department=sales, name="Ginza store", channel=Touchpoint.Channel.STORE
    )
    crm_survey = SurveyFactory(owner_department=crm, name="CRM NPS", touchpoint=web)
    sales_survey = SurveyFactory(owner_department=sales, name="Store NPS", touchpoint=store)
    csat = SurveyFactory(owner_department=crm, name="CSAT", kind=Survey.Kind.CSAT)
    customers = [CustomerFactory() for _ in range(12)]
    members = customers[:5]
    crm_segment = SegmentFactory(owner_department=crm, name="CRM regulars")
    sales_segment = SegmentFactory(owner_department=sales, name="Sales secret segment")
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=crm_segment, customer=c) for c in members]
        + [SegmentMembership(segment=sales_segment, customer=c) for c in customers[3:9]]
    )
    persona = PersonaFactory(owner_department=crm, name="Regular", segment=crm_segment)
    stage = StageFactory(journey=JourneyFactory(persona=persona, name="Gift"), name="Purchase")
    stage.touchpoints.add(web)
    hidden_stage = StageFactory(
        journey=JourneyFactory(persona=PersonaFactory(owner_department=sales), name="Sales map"),
        name="Visit",
    )
    hidden_stage.touchpoints.add(store)

    answers = []
    start = dt.datetime(2023, 12, 20, tzinfo=TOKYO)
    for i in range(160):
        survey = rng.choice([crm_survey, crm_survey, sales_survey])
        touchpoint = rng.choice([web, store, None])
        customer = rng.choice(customers)
        # Local midnight edges included: 00:10 and 23:50 Tokyo time.
        when = start + dt.timedelta(days=rng.randrange(0, 200), minutes=rng.choice([10, 1430, 600]))
        answers.append(
            SurveyResponseFactory(
                survey=survey,
                touchpoint=touchpoint,
                customer=customer,
                score=rng.randrange(0, 11),
                answered_at=when,
                comment=f"comment {i}" if i % 3 == 0 else "",
            )
        )
    SurveyResponseFactory(survey=crm_survey, customer=customers[0], score=None, answered_at=start)
    SurveyResponseFactory(
        survey=csat,
        customer=customers[0],
        score=2,
        answered_at=dt.datetime(2024, 5, 1, tzinfo=TOKYO),
    )
    rollups_rebuild()
    return {
        "answers": answers,
        "web": web,
        "store": store,
        "crm_survey": crm_survey,
        "sales_survey": sales_survey,
        "members": {c.pk for c in members},
        "crm_segment": crm_segment,
        "sales_segment": sales_segment,
        "persona": persona,
        "customers": customers,
    }


def local_day(answer) -> dt.date:
    return answer.answered_at.astimezone(TOKYO).date()


def in_period(answer, first=dt.date(2024, 4, 1), last=dt.date(2024, 6, 30)) -> bool:
    return first <= local_day(answer) <= last


def test_headline_and_weekly_trend_equal_the_raw_answers(api, crm_viewer, survey_data):
    api.force_authenticate(crm_viewer)
    trend = blocks(api.get(URL, QUARTER))["trend"]

    current = [a.score for a in survey_data["answers"] if in_period(a)]
    previous = [a.score for a in survey_data["answers"] if in_period(a, *PREVIOUS)]
    assert metric(trend, "nps")["value"] == nps(current)
    assert metric(trend, "nps")["previous"] == nps(previous)
    assert metric(trend, "answers")["value"] == len(current)
    assert metric(trend, "answers")["previous"] == len(previous)
    weeks = defaultdict(list)
    for answer in survey_data["answers"]:
        if in_period(answer):
            day = local_day(answer)
            weeks[day - dt.timedelta(days=day.weekday())].append(answer.score)
    rows = {row["week"]: row for row in trend["rows"]}
    for week, scores in weeks.items():
        row = rows[week.isoformat()]
        assert row["answers"] == len(scores)
        assert row["promoters"] == sum(1 for s in scores if s >= 9)
        assert row["passives"] == sum(1 for s in scores if 7 <= s <= 8)
        assert row["detractors"] == sum(1 for s in scores if s <= 6)
        assert row["nps"] == nps(scores)
    assert sum(row["answers"] for row in trend["rows"]) == len(current)


def test_breakdowns_equal_the_raw_answers_and_name_only_visible_things(
    api, crm_viewer, survey_data
):
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, QUARTER))
    current = [a for a in survey_data["answers"] if in_period(a)]

    web = [a.score for a in current if a.touchpoint == survey_data["web"]]
    assert answer["touchpoints"]["rows"] == [
        {
            "name": "Web shop",
            "answers": len(web),
            "promoters": sum(1 for s in web if s >= 9),
            "passives": sum(1 for s in web if 7 <= s <= 8),
            "detractors": sum(1 for s in web if s <= 6),
            "nps": nps(web),
        }
    ]  # the store belongs to Sales
    crm_answers = [a.score for a in current if a.survey == survey_data["crm_survey"]]
    assert [(r["name"], r["answers"], r["nps"]) for r in answer["departments"]["rows"]] == [
        ("CRM & digital", len(crm_answers), nps(crm_answers))
    ]
    assert [(r["name"], r["nps"]) for r in answer["stages"]["rows"]] == [
        ("Gift › Purchase", nps(web))
    ]
    members = [a.score for a in current if a.customer_id in survey_data["members"]]
    assert [(r["name"], r["answers"], r["nps"]) for r in answer["segments"]["rows"]] == [
        ("CRM regulars", len(members), nps(members))
    ]
    assert [(r["name"], r["nps"]) for r in answer["personas"]["rows"]] == [
        ("Regular", nps(members))
    ]


def test_the_administrator_sees_every_department(api, superuser, survey_data):
    api.force_authenticate(superuser)
    answer = blocks(api.get(URL, QUARTER))
    current = [a for a in survey_data["answers"] if in_period(a)]

    store = [a.score for a in current if a.touchpoint == survey_data["store"]]
    rows = {r["name"]: r for r in answer["touchpoints"]["rows"]}
    assert rows["Ginza store"]["nps"] == nps(store)
    in_sales = [
        a.score for a in current if a.customer_id in {c.pk for c in survey_data["customers"][3:9]}
    ]
    segments = {r["name"]: r for r in answer["segments"]["rows"]}
    assert segments["Sales secret segment"]["answers"] == len(in_sales)
    assert segments["Sales secret segment"]["nps"] == nps(in_sales)


def test_department_and_channel_filters(api, crm_viewer, sales, survey_data):
    api.force_authenticate(crm_viewer)
    current = [a for a in survey_data["answers"] if in_period(a)]

    by_sales = blocks(api.get(URL, {**QUARTER, "department": sales.pk}))["trend"]
    sales_scores = [a.score for a in current if a.survey == survey_data["sales_survey"]]
    assert metric(by_sales, "nps")["value"] == nps(sales_scores)
    in_store = blocks(api.get(URL, {**QUARTER, "channel": "store"}))["trend"]
    store_scores = [a.score for a in current if a.touchpoint == survey_data["store"]]
    assert metric(in_store, "answers")["value"] == len(store_scores)
    assert metric(in_store, "nps")["value"] == nps(store_scores)


def test_a_segment_restricts_every_figure_to_its_members_answers(api, crm_viewer, survey_data):
    api.force_authenticate(crm_viewer)
    answer = blocks(api.get(URL, {**QUARTER, "segment": survey_data["crm_segment"].pk}))
    members = survey_data["members"]
    current = [a for a in survey_data["answers"] if in_period(a) and a.customer_id in members]
    previous = [
        a.score
        for a in survey_data["answers"]
        if in_period(a, *PREVIOUS) and a.customer_id in members
    ]

    assert metric(answer["trend"], "nps")["value"] == nps([a.score for a in current])
    assert metric(answer["trend"], "nps")["previous"] == nps(previous)
    assert "segment" in answer["trend"]["note"]
    web = [a.score for a in current if a.touchpoint == survey_data["web"]]
    assert answer["touchpoints"]["rows"][0]["nps"] == nps(web)
    assert sum(r["answers"] for r in answer["trend"]["rows"]) == len(current)
    persona = blocks(api.get(URL, {**QUARTER, "persona": survey_data["persona"].pk}))
    assert metric(persona["trend"], "nps")["value"] == nps([a.score for a in current])


def test_latest_comments_are_the_newest_twenty_of_visible_surveys_without_names(
    api, client, crm_viewer, survey_data
):
    api.force_authenticate(crm_viewer)
    rows = blocks(api.get(URL, QUARTER))["comments"]["rows"]

    expected = sorted(
        (
            a
            for a in survey_data["answers"]
            if in_period(a) and a.comment and a.survey == survey_data["crm_survey"]
        ),
        key=lambda a: (a.answered_at, a.pk),
        reverse=True,
    )[:20]
    assert [r["comment"] for r in rows] == [a.comment for a in expected]
    assert [r["score"] for r in rows] == [a.score for a in expected]
    assert {r["touchpoint"] for r in rows} <= {"Web shop", ""}
    client.force_login(crm_viewer)
    html = client.get(reverse("reports:report", args=["nps"]), QUARTER).content.decode()
    assert "山田" not in html
    assert "Sales secret segment" not in html
    assert "Ginza store" not in html


def test_the_page_renders_for_a_viewer_and_htmx_gets_the_body(client, crm_viewer, survey_data):
    client.force_login(crm_viewer)
    response = client.get(reverse("reports:report", args=["nps"]), QUARTER)
    assert response.status_code == 200
    html = response.content.decode()
    for key in (
        "trend",
        "touchpoints",
        "departments",
        "segments",
        "personas",
        "stages",
        "comments",
    ):
        assert f'data-block="{key}"' in html
    assert 'data-chart-for="chart-trend"' in html
    body = client.get(
        reverse("reports:report", args=["nps"]), QUARTER, headers={"HX-Request": "true"}
    )
    assert body.content.decode().lstrip().startswith('<div id="report-body"')


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(reverse("reports:report", args=["nps"]))
    assert response.status_code == 302


def test_another_departments_segment_is_a_bad_filter(client, crm_viewer, survey_data):
    client.force_login(crm_viewer)
    response = client.get(
        reverse("reports:report", args=["nps"]), {"segment": survey_data["sales_segment"].pk}
    )
    assert response.status_code == 400
    assert "<code>segment</code>" in response.content.decode()


def test_an_empty_period_has_no_score(api, crm_viewer):
    api.force_authenticate(crm_viewer)
    trend = blocks(api.get(URL, QUARTER))["trend"]
    assert metric(trend, "nps")["value"] is None
    assert all(row["answers"] == 0 for row in trend["rows"])


def test_chart_builders_check_their_input():
    weeks = [dt.date(2024, 4, 1), dt.date(2024, 4, 8)]
    figure = trend_figure(weeks, [1, 2], [0, 1], [3, 0], [-50.0, None])
    assert [trace.type for trace in figure.data] == ["bar", "bar", "bar", "scatter"]
    assert figure.layout.barmode == "stack"
    assert list(figure.data[3].y) == [-50.0, None]
    with pytest.raises(ValueError, match="one value per week"):
        trend_figure(weeks, [1], [0, 1], [3, 0], [1.0, 2.0])
    bars = breakdown_figure(["a", "b"], [10.0, -5.0], [3, 4])
    assert list(bars.data[0].x) == [10.0, -5.0]
