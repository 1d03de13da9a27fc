"""Surveys: validation per kind, one-time links, answers reaching the profile, summaries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from customers.models import AttributeDefinition, CustomerMetrics
from customers.panels import profile_panels
from experience.models import Event, Survey, SurveyResponse
from experience.surveys import (
    AlreadyAnswered,
    InvitationExpired,
    InvitationInvalid,
    invitation_create,
    invitation_from_token,
    invitation_token,
    invitation_url,
    response_submit,
    survey_create,
    survey_list,
    survey_summary,
    survey_update,
)
from tests.factories import (
    CustomerFactory,
    SurveyFactory,
    SurveyInvitationFactory,
    SurveyResponseFactory,
)

pytestmark = pytest.mark.django_db

FLOWERS = [
    {"value": "roses", "label": "バラ", "label_en": "Roses"},
    {"value": "tulips", "label": "チューリップ", "label_en": "Tulips"},
]


@pytest.fixture
def flower_attribute(crm):
    return AttributeDefinition.objects.create(
        owner_department=crm,
        key="favourite_flower",
        label="Favourite flower",
        type=AttributeDefinition.Type.CHOICE,
        choices=["roses", "tulips", "lilies"],
    )


# --- survey_create / survey_update -----------------------------------------------------------


def test_nps_survey_is_created_for_a_department_the_editor_edits_for(crm, crm_editor):
    survey = survey_create(
        by=crm_editor,
        owner_department=crm,
        name="After purchase",
        kind=Survey.Kind.NPS,
        question="友人にすすめる可能性は?",
        question_en="How likely are you to recommend us?",
    )

    assert survey.owner_department == crm
    assert survey.choices == []


def test_creating_for_another_department_is_refused(sales, crm_editor):
    with pytest.raises(PermissionDenied):
        survey_create(by=crm_editor, owner_department=sales, name="X", question="Q?")


def test_viewer_cannot_create_surveys(crm, crm_viewer):
    with pytest.raises(PermissionDenied):
        survey_create(by=crm_viewer, owner_department=crm, name="X", question="Q?")


def test_missing_name_and_question_are_named(crm, crm_editor):
    with pytest.raises(ValidationError) as exc:
        survey_create(by=crm_editor, owner_department=crm, name=" ", question="")

    assert set(exc.value.message_dict) == {"name", "question"}


@pytest.mark.parametrize(
    ("choices", "field"),
    [
        ([{"value": "roses", "label": "バラ"}], "choices"),
        ([{"value": f"v{i}", "label": f"L{i}"} for i in range(13)], "choices"),
        ([{"value": "roses", "label": "バラ"}, {"value": "", "label": "?"}], "choices[1].value"),
        (
            [{"value": "roses", "label": "バラ"}, {"value": "roses", "label": "X"}],
            "choices[1].value",
        ),
        ([{"value": "roses", "label": "バラ"}, {"value": "tulips"}], "choices[1].label"),
        ("roses,tulips", "choices"),
    ],
)
def test_preference_choices_are_validated_naming_the_field(crm, crm_editor, choices, field):
    with pytest.raises(ValidationError) as exc:
        survey_create(
            by=crm_editor,
            owner_department=crm,
            name="Flowers",
            kind=Survey.Kind.PREFERENCE,
            question="好きな花は?",
            choices=choices,
        )

    assert field in exc.value.message_dict


def test_preference_attribute_must_be_choice_or_text(crm, crm_editor):
    number = AttributeDefinition.objects.create(
        owner_department=crm, key="visits", label="Visits", type=AttributeDefinition.Type.NUMBER
    )

    with pytest.raises(ValidationError) as exc:
        survey_create(
            by=crm_editor,
            owner_department=crm,
            name="Flowers",
            kind=Survey.Kind.PREFERENCE,
            question="好きな花は?",
            choices=FLOWERS,
            attribute=number,
        )

    assert exc.value.message_dict["attribute"] == ["must be a choice or text attribute"]


def test_preference_choices_must_fit_a_choice_attribute(crm, crm_editor, flower_attribute):
    with pytest.raises(ValidationError) as exc:
        survey_create(
            by=crm_editor,
            owner_department=crm,
            name="Flowers",
            kind=Survey.Kind.PREFERENCE,
            question="好きな花は?",
            choices=[*FLOWERS, {"value": "orchids", "label": "蘭"}],
            attribute=flower_attribute,
        )

    assert "choices[2].value" in exc.value.message_dict


def test_nps_survey_refuses_choices_and_attribute(crm, crm_editor, flower_attribute):
    with pytest.raises(ValidationError) as exc:
        survey_create(
            by=crm_editor,
            owner_department=crm,
            name="NPS",
            question="Q?",
            choices=FLOWERS,
            attribute=flower_attribute,
        )

    assert set(exc.value.message_dict) == {"choices", "attribute"}


def test_update_changes_fields_and_refuses_kind_change_after_answers(crm, crm_editor):
    survey = SurveyFactory(owner_department=crm)
    survey_update(survey=survey, by=crm_editor, question_en="Recommend us?")
    survey.refresh_from_db()
    assert survey.question_en == "Recommend us?"

    SurveyResponseFactory(survey=survey)
    with pytest.raises(ValidationError) as exc:
        survey_update(survey=survey, by=crm_editor, kind=Survey.Kind.CSAT)
    assert "kind" in exc.value.message_dict


def test_other_department_cannot_update(crm, sales_editor):
    with pytest.raises(PermissionDenied):
        survey_update(survey=SurveyFactory(owner_department=crm), by=sales_editor, name="Mine")


# --- invitations and tokens ------------------------------------------------------------------


def test_invitation_expires_after_valid_days_and_its_token_finds_it(crm):
    survey = SurveyFactory(owner_department=crm)
    invitation = invitation_create(survey=survey, customer=CustomerFactory(), valid_days=7)

    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=7)
    assert invitation_from_token(invitation_token(invitation)) == invitation
    assert invitation_url(invitation).startswith("/s/")


@pytest.mark.parametrize("mangle", [lambda t: t + "x", lambda t: "1" + t, lambda t: "garbage"])
def test_forged_tokens_are_invalid(crm, mangle):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))

    with pytest.raises(InvitationInvalid):
        invitation_from_token(mangle(invitation_token(invitation)))


def test_token_signed_for_something_else_is_invalid(crm):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))
    other_salt = signing.Signer(salt="preference-centre").sign(str(invitation.pk))

    with pytest.raises(InvitationInvalid):
        invitation_from_token(other_salt)


def test_token_of_a_deleted_invitation_is_invalid(crm):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))
    token = invitation_token(invitation)
    invitation.delete()

    with pytest.raises(InvitationInvalid):
        invitation_from_token(token)


def test_expired_invitation_raises_expired(crm):
    invitation = SurveyInvitationFactory(
        survey=SurveyFactory(owner_department=crm),
        created_at=timezone.now() - dt.timedelta(days=40),
    )

    with pytest.raises(InvitationExpired):
        invitation_from_token(invitation_token(invitation))
    with pytest.raises(InvitationExpired):
        response_submit(invitation=invitation, score=9)
    assert not SurveyResponse.objects.exists()


def test_merged_customer_is_invited_as_the_surviving_profile(crm):
    winner = CustomerFactory()
    loser = CustomerFactory(merged_into=winner)

    invitation = invitation_create(survey=SurveyFactory(owner_department=crm), customer=loser)

    assert invitation.customer == winner


# --- response_submit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "score", "choice"),
    [
        (Survey.Kind.NPS, None, ""),
        (Survey.Kind.NPS, 11, ""),
        (Survey.Kind.NPS, -1, ""),
        (Survey.Kind.NPS, 7.5, ""),
        (Survey.Kind.NPS, True, ""),
        (Survey.Kind.CSAT, 0, ""),
        (Survey.Kind.CSAT, 6, ""),
    ],
)
def test_scores_out_of_range_are_refused_naming_score(crm, kind, score, choice):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm, kind=kind))

    with pytest.raises(ValidationError) as exc:
        response_submit(invitation=invitation, score=score, choice=choice)

    assert list(exc.value.message_dict) == ["score"]
    invitation.refresh_from_db()
    assert invitation.answered_at is None
    assert not SurveyResponse.objects.exists()


def test_preference_choice_must_be_one_of_the_values(crm):
    survey = SurveyFactory(owner_department=crm, kind=Survey.Kind.PREFERENCE, choices=FLOWERS)
    invitation = SurveyInvitationFactory(survey=survey)

    with pytest.raises(ValidationError) as exc:
        response_submit(invitation=invitation, choice="orchids")

    assert list(exc.value.message_dict) == ["choice"]


def test_comment_longer_than_2000_characters_is_refused(crm):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))

    with pytest.raises(ValidationError) as exc:
        response_submit(invitation=invitation, score=9, comment="x" * 2001)

    assert list(exc.value.message_dict) == ["comment"]


def test_answer_is_stored_once_and_a_second_is_refused(crm):
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))

    response = response_submit(invitation=invitation, score=9, comment="  Lovely flowers ")

    assert (response.score, response.comment) == (9, "Lovely flowers")
    invitation.refresh_from_db()
    assert invitation.answered_at == response.answered_at
    with pytest.raises(AlreadyAnswered):
        response_submit(invitation=invitation, score=3)
    assert SurveyResponse.objects.get().score == 9


def test_a_racing_second_answer_is_refused_by_the_one_to_one(crm):
    """Two requests that both read the invitation unanswered: the unique reference decides."""
    invitation = SurveyInvitationFactory(survey=SurveyFactory(owner_department=crm))
    SurveyResponseFactory(
        survey=invitation.survey, customer=invitation.customer, invitation=invitation, score=10
    )  # the other request's row, committed before this one's answered_at update

    with pytest.raises(AlreadyAnswered):
        response_submit(invitation=invitation, score=2)

    assert list(SurveyResponse.objects.values_list("score", flat=True)) == [10]
    assert not Event.objects.filter(source="survey").exists()


def test_answer_records_a_survey_answered_event(crm):
    survey = SurveyFactory(owner_department=crm)
    invitation = SurveyInvitationFactory(survey=survey)

    response = response_submit(invitation=invitation, score=6)

    event = Event.objects.get(source="survey")
    assert event.event_type.name == "survey_answered"
    assert event.event_id == f"response-{response.pk}"
    assert event.customer_id == invitation.customer_id
    assert event.properties == {"survey_id": survey.pk, "kind": "nps", "score": 6}
    assert event.event_type.property_schema["score"] == "integer"


def test_answer_updates_the_last_nps_on_the_profile(
    crm, tasks_inline, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    survey = SurveyFactory(owner_department=crm)
    SurveyResponseFactory(
        survey=survey, customer=customer, score=3, answered_at=timezone.now() - dt.timedelta(days=9)
    )
    invitation = SurveyInvitationFactory(survey=survey, customer=customer)

    with django_capture_on_commit_callbacks(execute=True):
        response_submit(invitation=invitation, score=10)

    assert CustomerMetrics.objects.get(customer=customer).last_nps == 10


def test_preference_answer_is_stored_in_the_profile_attribute(crm, crm_editor, flower_attribute):
    survey = survey_create(
        by=crm_editor,
        owner_department=crm,
        name="Flowers",
        kind=Survey.Kind.PREFERENCE,
        question="好きな花は?",
        choices=FLOWERS,
        attribute=flower_attribute,
    )
    customer = CustomerFactory(attributes={"other": 1})
    invitation = invitation_create(survey=survey, customer=customer)

    response = response_submit(invitation=invitation, choice="tulips")

    customer.refresh_from_db()
    assert customer.attributes == {"other": 1, "favourite_flower": "tulips"}
    assert (response.score, response.choice) == (None, "tulips")


# --- selectors ---------------------------------------------------------------------------------


@pytest.fixture
def answered_nps(crm):
    """Ten answers: 3 promoters (9, 10, 10), 3 passives (7, 8, 8), 4 detractors (0, 3, 5, 6).

    NPS = 30% − 40% = −10.0. Plus one answer older than the window (a 0) that must not count.
    """
    survey = SurveyFactory(owner_department=crm, name="After purchase")
    now = timezone.now()
    for score in (9, 10, 10, 7, 8, 8, 0, 3, 5, 6):
        SurveyResponseFactory(survey=survey, score=score, answered_at=now - dt.timedelta(days=2))
    SurveyResponseFactory(survey=survey, score=0, answered_at=now - dt.timedelta(days=200))
    return survey


def test_summary_counts_nps_the_standard_way(answered_nps, crm_editor):
    summary = survey_summary(
        answered_nps, since=timezone.now() - dt.timedelta(days=90), user=crm_editor
    )

    assert summary.total == 10
    assert (summary.promoters, summary.passives, summary.detractors) == (3, 3, 4)
    assert summary.nps == -10.0
    assert {row["value"]: row["count"] for row in summary.distribution} == {
        0: 1, 1: 0, 2: 0, 3: 1, 4: 0, 5: 1, 6: 1, 7: 1, 8: 2, 9: 1, 10: 2
    }  # fmt: skip
    assert sum(row["answers"] for row in summary.trend) == 10


def test_summary_masks_commenters_unless_the_user_may_see_personal_data(
    crm, crm_editor, crm_pii_viewer
):
    survey = SurveyFactory(owner_department=crm)
    customer = CustomerFactory(family_name="山田", given_name="花子")
    SurveyResponseFactory(survey=survey, customer=customer, comment="Great")
    since = timezone.now() - dt.timedelta(days=90)

    masked = survey_summary(survey, since=since, user=crm_editor).comments[0]
    plain = survey_summary(survey, since=since, user=crm_pii_viewer).comments[0]

    assert "花子" not in masked["customer"]
    assert "山田 花子" in plain["customer"]
    assert masked["comment"] == "Great"


def test_survey_list_shows_visible_surveys_with_nps_and_answer_rate(
    answered_nps, crm, sales, crm_editor
):
    SurveyFactory(owner_department=sales, name="Sales survey")
    for answered in (True, False, False, False):
        SurveyInvitationFactory(
            survey=answered_nps, answered_at=timezone.now() if answered else None
        )

    rows = survey_list(crm_editor, since=timezone.now() - dt.timedelta(days=90))

    assert [row.name for row in rows] == ["After purchase"]
    row = rows[0]
    assert (row.response_count, row.nps, row.answer_rate) == (10, -10.0, 25.0)


def test_profile_panel_lists_answers_and_open_invitations(rf, crm, crm_editor):
    customer = CustomerFactory()
    survey = SurveyFactory(owner_department=crm, name="After purchase")
    SurveyResponseFactory(survey=survey, customer=customer, score=4, comment="Late delivery")
    SurveyInvitationFactory(survey=survey, customer=customer)
    request = rf.get("/")
    request.user = crm_editor

    panels = {
        panel.name: panel.context
        for panel in profile_panels(request=request, customer=customer, show_pii=False)
    }

    context = panels["surveys"]
    assert [a.score for a in context["answers"]] == [4]
    assert context["answers"][0].category == "detractor"
    assert context["answers"][0].shown_comment == "L***"
    assert len(context["open_invitations"]) == 1
