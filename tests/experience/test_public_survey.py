"""The public survey page: a customer answers once, without login, in Japanese or English."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from experience.models import Survey, SurveyResponse
from experience.surveys import invitation_token
from tests.factories import SurveyFactory, SurveyInvitationFactory

pytestmark = pytest.mark.django_db

QUESTION_JA = "このお店を友人にすすめる可能性はどのくらいありますか?"
QUESTION_EN = "How likely are you to recommend our shop to a friend?"


@pytest.fixture
def invitation(crm):
    survey = SurveyFactory(owner_department=crm, question=QUESTION_JA, question_en=QUESTION_EN)
    return SurveyInvitationFactory(survey=survey)


def url(invitation, **query) -> str:
    path = reverse("survey_public:respond", args=[invitation_token(invitation)])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html)[1]


def test_page_in_english_shows_the_english_question_and_eleven_scores(client, invitation):
    response = client.get(url(invitation, lang="en"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html_lang(html) == "en"
    assert QUESTION_EN in html
    assert QUESTION_JA not in html
    assert len(re.findall(r'type="radio" name="score"', html)) == 11
    assert "<fieldset" in html
    assert "<legend>" in html
    assert 'name="viewport"' in html
    assert "csrfmiddlewaretoken" in html


def test_page_in_japanese_shows_the_japanese_question(client, invitation):
    html = client.get(url(invitation, lang="ja")).content.decode()

    assert html_lang(html) == "ja"
    assert QUESTION_JA in html
    assert QUESTION_EN not in html


def test_browser_language_is_the_default(client, invitation):
    html = client.get(url(invitation), HTTP_ACCEPT_LANGUAGE="ja-JP,ja;q=0.9").content.decode()

    assert html_lang(html) == "ja"
    assert QUESTION_JA in html


def test_english_falls_back_to_the_japanese_question_when_none_is_given(client, crm):
    survey = SurveyFactory(owner_department=crm, question=QUESTION_JA, question_en="")
    invitation = SurveyInvitationFactory(survey=survey)

    html = client.get(url(invitation, lang="en")).content.decode()

    assert QUESTION_JA in html


def test_page_shows_no_staff_navigation_or_customer_name(client, invitation):
    invitation.customer.given_name = "花子"
    invitation.customer.save()

    html = client.get(url(invitation, lang="en")).content.decode()

    assert "circle-nav" not in html
    assert "Log out" not in html
    assert "花子" not in html
    assert "Customer Circle" in html  # the company name


def test_answer_in_english_is_stored_and_thanked(client, invitation):
    response = client.post(url(invitation, lang="en"), {"score": "9", "comment": "Lovely"})

    assert response.status_code == 302
    thanks = client.get(response.url)
    assert thanks.status_code == 200
    assert html_lang(thanks.content.decode()) == "en"
    assert "Thank you for your answer!" in thanks.content.decode()
    answer = SurveyResponse.objects.get()
    assert (answer.score, answer.comment, answer.customer) == (9, "Lovely", invitation.customer)


def test_answer_in_japanese_keeps_the_language(client, invitation):
    response = client.post(url(invitation, lang="ja"), {"score": "3"})

    assert response.status_code == 302
    assert "lang=ja" in response.url
    assert html_lang(client.get(response.url).content.decode()) == "ja"


def test_second_visit_and_second_answer_are_refused_with_409(client, invitation):
    client.post(url(invitation, lang="en"), {"score": "9"})

    visit = client.get(url(invitation, lang="en"))
    again = client.post(url(invitation, lang="en"), {"score": "0", "comment": "changed my mind"})

    for response in (visit, again):
        assert response.status_code == 409
        assert "You have already answered this survey. Thank you!" in response.content.decode()
    assert list(SurveyResponse.objects.values_list("score", flat=True)) == [9]


def test_forged_token_answers_404_saying_the_link_is_not_valid(client, invitation):
    tampered = invitation_token(invitation) + "x"
    response = client.get(reverse("survey_public:respond", args=[tampered]))
    forged = client.post(
        reverse("survey_public:respond", args=[f"{invitation.pk}:forged"]), {"score": "9"}
    )

    for page in (response, forged):
        assert page.status_code == 404
        assert "This link is not valid" in page.content.decode()
    assert not SurveyResponse.objects.exists()


def test_expired_link_answers_410(client, crm):
    invitation = SurveyInvitationFactory(
        survey=SurveyFactory(owner_department=crm),
        created_at=timezone.now() - dt.timedelta(days=31),
    )

    get = client.get(url(invitation, lang="en"))
    post = client.post(url(invitation, lang="en"), {"score": "9"})

    for response in (get, post):
        assert response.status_code == 410
        assert "This survey link has expired" in response.content.decode()
    assert not SurveyResponse.objects.exists()


def test_missing_score_redisplays_the_form_with_an_error(client, invitation):
    response = client.post(url(invitation, lang="en"), {"comment": "no score"})

    assert response.status_code == 400
    assert "Please choose a score." in response.content.decode()
    assert not SurveyResponse.objects.exists()


def test_out_of_range_score_is_refused(client, invitation):
    response = client.post(url(invitation, lang="en"), {"score": "11"})

    assert response.status_code == 400
    assert not SurveyResponse.objects.exists()


def test_csrf_is_enforced(invitation):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(url(invitation, lang="en"), {"score": "9"})

    assert response.status_code == 403
    assert not SurveyResponse.objects.exists()


def test_csat_page_offers_five_scores(client, crm):
    survey = SurveyFactory(owner_department=crm, kind=Survey.Kind.CSAT, question="満足度は?")
    invitation = SurveyInvitationFactory(survey=survey)

    html = client.get(url(invitation, lang="ja")).content.decode()
    client.post(url(invitation, lang="ja"), {"score": "5"})

    assert len(re.findall(r'type="radio" name="score"', html)) == 5
    assert SurveyResponse.objects.get().score == 5


def test_preference_page_lists_choices_in_the_reader_language(client, crm):
    survey = SurveyFactory(
        owner_department=crm,
        kind=Survey.Kind.PREFERENCE,
        question="好きな花は?",
        question_en="Your favourite flower?",
        choices=[
            {"value": "roses", "label": "バラ", "label_en": "Roses"},
            {"value": "tulips", "label": "チューリップ", "label_en": "Tulips"},
        ],
    )
    invitation = SurveyInvitationFactory(survey=survey)

    english = client.get(url(invitation, lang="en")).content.decode()
    japanese = client.get(url(invitation, lang="ja")).content.decode()
    client.post(url(invitation, lang="en"), {"choice": "tulips"})

    assert "Roses" in english
    assert "バラ" not in english
    assert "バラ" in japanese
    assert SurveyResponse.objects.get().choice == "tulips"


def test_thanks_page_of_an_unanswered_link_sends_back_to_the_form(client, invitation):
    thanks = reverse("survey_public:thanks", args=[invitation_token(invitation)])

    response = client.get(thanks + "?lang=en")

    assert response.status_code == 302
    assert response.url.startswith(url(invitation))
