"""The public NPS page in Chromium: answer once in English or Japanese, fits a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from experience.models import SurveyResponse
from experience.surveys import invitation_token
from tests.factories import DepartmentFactory, SurveyFactory, SurveyInvitationFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION_JA = "このお店を友人にすすめる可能性はどのくらいありますか?"
QUESTION_EN = "How likely are you to recommend our shop to a friend?"
ALREADY = "You have already answered this survey. Thank you!"
ALREADY_JA = "このアンケートには回答済みです。ご協力ありがとうございました。"


@pytest.fixture
def survey():
    return SurveyFactory(
        owner_department=DepartmentFactory(slug="crm"),
        question=QUESTION_JA,
        question_en=QUESTION_EN,
    )


def link(live_server, invitation, lang: str = "") -> str:
    url = f"{live_server.url}/s/{invitation_token(invitation)}/"
    return f"{url}?lang={lang}" if lang else url


def test_customer_answers_in_english_once(live_server, page, survey):
    invitation = SurveyInvitationFactory(survey=survey)

    page.goto(link(live_server, invitation))
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.get_by_role("heading", name=QUESTION_EN)).to_be_visible()
    page.get_by_label("9", exact=True).check()
    page.get_by_label("Anything you would like to tell us? (optional)").fill("Lovely bouquet")
    page.get_by_role("button", name="Send my answer").click()

    expect(page.get_by_role("heading", name="Thank you for your answer!")).to_be_visible()
    answer = SurveyResponse.objects.get()
    assert (answer.score, answer.comment) == (9, "Lovely bouquet")

    page.goto(link(live_server, invitation))
    expect(page.get_by_role("heading", name=ALREADY)).to_be_visible()


def test_customer_answers_in_japanese_and_a_second_post_is_refused(live_server, page, survey):
    invitation = SurveyInvitationFactory(survey=survey)
    second_tab = page.context.new_page()  # the same link left open in another tab
    second_tab.goto(link(live_server, invitation, lang="ja"))

    page.goto(link(live_server, invitation, lang="ja"))
    assert page.locator("html").get_attribute("lang") == "ja"
    expect(page.get_by_role("heading", name=QUESTION_JA)).to_be_visible()
    page.get_by_label("10", exact=True).check()
    page.locator("button[type=submit]").click()
    page.wait_for_url("**/thanks/?lang=ja")
    assert page.locator("html").get_attribute("lang") == "ja"

    second_tab.get_by_label("0", exact=True).check()
    second_tab.locator("button[type=submit]").click()  # a real second POST of the form
    expect(second_tab.get_by_role("heading", name=ALREADY_JA)).to_be_visible()
    assert second_tab.locator("html").get_attribute("lang") == "ja"

    page.go_back()  # the form is not cached: going back shows the refusal too
    expect(page.get_by_role("heading", name=ALREADY_JA)).to_be_visible()
    assert list(SurveyResponse.objects.values_list("score", flat=True)) == [10]


def test_eleven_scores_fit_a_phone_without_horizontal_scrolling(live_server, page, survey):
    invitation = SurveyInvitationFactory(survey=survey)
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(link(live_server, invitation, lang="en"))

    scores = page.locator("[data-testid=score-options] label")
    expect(scores).to_have_count(11)
    for index in range(11):
        expect(scores.nth(index)).to_be_in_viewport()
        box = scores.nth(index).bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        assert box["height"] >= 44
        assert box["width"] >= 44
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
