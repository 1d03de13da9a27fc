"""Staff survey pages: list, summary, create and edit, test links — scoped by department."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.org.services import share_grant
from config.org.tokens import api_token_create
from customers.models import Customer
from experience.models import Survey, SurveyInvitation
from tests.factories import (
    CustomerFactory,
    IdentityFactory,
    SurveyFactory,
    SurveyInvitationFactory,
    SurveyResponseFactory,
)

pytestmark = pytest.mark.django_db

LIST = reverse("experience:surveys")
NEW = reverse("experience:survey_new")


def detail(survey) -> str:
    return reverse("experience:survey", args=[survey.pk])


def edit(survey) -> str:
    return reverse("experience:survey_edit", args=[survey.pk])


def test_link(survey) -> str:
    return reverse("experience:survey_test_link", args=[survey.pk])


test_link.__test__ = False  # a URL helper, not a test


@pytest.fixture
def crm_survey(crm):
    return SurveyFactory(owner_department=crm, name="After purchase")


@pytest.mark.parametrize("name", ["surveys", "survey_new", "survey", "survey_edit"])
def test_anonymous_visitors_are_sent_to_login(client, crm_survey, name):
    args = [crm_survey.pk] if name in ("survey", "survey_edit") else []

    response = client.get(reverse(f"experience:{name}", args=args))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_list_shows_own_and_shared_surveys_only(client, crm_survey, sales, crm_viewer):
    SurveyFactory(owner_department=sales, name="Sales secret")
    shared = SurveyFactory(owner_department=sales, name="Store visit CSAT", kind=Survey.Kind.CSAT)
    share_grant(obj=shared, department=crm_survey.owner_department, can_edit=False, by=None)
    SurveyResponseFactory.create_batch(2, survey=crm_survey, score=10)
    client.force_login(crm_viewer)

    html = client.get(LIST).content.decode()

    assert "After purchase" in html
    assert "Store visit CSAT" in html
    assert "Sales secret" not in html
    assert "100.0" in html  # NPS of two promoters
    assert NEW not in html  # viewers get no "New survey" button


def test_list_takes_a_fixed_number_of_queries_however_many_surveys(
    client, crm, crm_viewer, django_assert_num_queries
):
    for n in range(5):
        SurveyResponseFactory(survey=SurveyFactory(owner_department=crm, name=f"S{n}"))
    client.force_login(crm_viewer)
    client.get(LIST)  # warm the content-type cache, as any running server has

    with django_assert_num_queries(6):
        response = client.get(LIST)

    assert response.status_code == 200


def test_detail_shows_distribution_nps_and_comments(client, crm_survey, crm_viewer):
    customer = CustomerFactory(family_name="山田", given_name="花子")
    SurveyResponseFactory(survey=crm_survey, customer=customer, score=10, comment="Fresh!")
    SurveyResponseFactory(survey=crm_survey, score=3)
    client.force_login(crm_viewer)

    response = client.get(detail(crm_survey))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="nps">0.0<' in html
    assert "Fresh!" in html
    assert "花子" not in html  # masked without view_pii
    assert "Create a test link" not in html  # viewers cannot create links


def test_other_departments_survey_answers_404(client, crm_survey, sales_editor):
    client.force_login(sales_editor)

    assert client.get(detail(crm_survey)).status_code == 404
    assert client.get(edit(crm_survey)).status_code == 404
    assert client.post(test_link(crm_survey), {"customer": 1}).status_code == 404


def test_viewer_cannot_create_or_edit(client, crm_survey, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(NEW).status_code == 403
    assert client.get(edit(crm_survey)).status_code == 403
    customer = CustomerFactory()
    assert client.post(test_link(crm_survey), {"customer": customer.pk}).status_code == 403
    assert not SurveyInvitation.objects.exists()


def test_editor_creates_a_preference_survey(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        NEW,
        {
            "name": "Favourite flower",
            "kind": "preference",
            "question": "好きな花は?",
            "question_en": "Your favourite flower?",
            "choices": "roses | バラ | Roses\ntulips | チューリップ | Tulips",
            "is_active": "on",
            "owner_department": crm.pk,
        },
    )

    survey = Survey.objects.get()
    assert response.status_code == 302
    assert response.url == detail(survey)
    assert survey.owner_department == crm
    assert survey.choices[1] == {"value": "tulips", "label": "チューリップ", "label_en": "Tulips"}


def test_create_with_one_choice_shows_the_error(client, crm, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        NEW,
        {
            "name": "Flowers",
            "kind": "preference",
            "question": "好きな花は?",
            "choices": "roses | バラ",
            "owner_department": crm.pk,
        },
    )

    assert response.status_code == 400
    assert "2 to 12 choices" in response.content.decode()
    assert not Survey.objects.exists()


def test_editor_cannot_create_for_another_department(client, sales, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        NEW, {"name": "X", "kind": "nps", "question": "Q?", "owner_department": sales.pk}
    )

    assert response.status_code == 400
    assert not Survey.objects.exists()


def test_editor_edits_the_question(client, crm_survey, crm_editor):
    client.force_login(crm_editor)

    response = client.post(
        edit(crm_survey),
        {"name": "After purchase", "kind": "nps", "question": "新しい質問", "is_active": "on"},
    )

    crm_survey.refresh_from_db()
    assert response.status_code == 302
    assert crm_survey.question == "新しい質問"


def test_editor_creates_a_test_link_for_a_customer(client, crm_survey, crm_editor):
    customer = CustomerFactory()
    client.force_login(crm_editor)

    response = client.post(test_link(crm_survey), {"customer": customer.pk})

    invitation = SurveyInvitation.objects.get()
    assert response.status_code == 200
    assert invitation.customer == customer
    assert 'data-testid="test-link"' in response.content.decode()
    assert "http://testserver/s/" in response.content.decode()


def test_test_link_for_an_unknown_customer_names_the_field(client, crm_survey, crm_editor):
    client.force_login(crm_editor)

    response = client.post(test_link(crm_survey), {"customer": 99999})

    assert response.status_code == 400
    assert "No customer has this ID." in response.content.decode()


def test_customer_page_shows_the_survey_panel(client, crm_survey, crm_viewer):
    customer = CustomerFactory()
    SurveyResponseFactory(survey=crm_survey, customer=customer, score=9)
    client.force_login(crm_viewer)

    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert 'data-testid="survey-panel"' in html
    assert "After purchase" in html
    assert "Promoter" in html


def test_survey_panel_hides_names_of_other_departments_surveys(client, crm_survey, sales_editor):
    customer = CustomerFactory()
    SurveyResponseFactory(survey=crm_survey, customer=customer, score=9)
    client.force_login(sales_editor)

    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()

    assert "a survey of another department" in html
    assert "After purchase" not in html


# --- API: POST /api/v1/surveys/{id}/invitations/ ---------------------------------------------


def invitations_url(survey) -> str:
    return f"/api/v1/surveys/{survey.pk}/invitations/"


def test_api_editor_invites_a_customer_by_id(api, crm_survey, crm_editor, client):
    customer = CustomerFactory()
    api.force_authenticate(crm_editor)

    response = api.post(invitations_url(crm_survey), {"customer": customer.pk}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "url", "expires_at"}
    assert body["url"].startswith("http://testserver/s/")
    assert SurveyInvitation.objects.get(pk=body["id"]).customer == customer
    assert client.get(body["url"] + "?lang=en").status_code == 200


def test_api_invites_by_identifiers_of_an_existing_customer(api, crm_survey, crm_editor):
    identity = IdentityFactory(value="hanako@example.jp")
    api.force_authenticate(crm_editor)

    response = api.post(
        invitations_url(crm_survey),
        {"identifiers": {"email": " Hanako@Example.jp "}},
        format="json",
    )

    assert response.status_code == 201
    assert SurveyInvitation.objects.get().customer == identity.customer


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"customer": 99999}, "customer"),
        ({"identifiers": {"email": "nobody@example.jp"}}, "identifiers"),
        ({"identifiers": {"shoe": "42"}}, "identifiers.shoe"),
        ({}, "customer"),
    ],
)
def test_api_unknown_people_answer_400_naming_the_field(
    api, crm_survey, crm_editor, payload, field
):
    api.force_authenticate(crm_editor)

    response = api.post(invitations_url(crm_survey), payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not SurveyInvitation.objects.exists()
    assert not Customer.objects.exists() or "customer" in field


def test_api_viewer_cannot_invite(api, crm_survey, crm_viewer):
    api.force_authenticate(crm_viewer)

    response = api.post(invitations_url(crm_survey), {"customer": CustomerFactory().pk})

    assert response.status_code == 403
    assert not SurveyInvitation.objects.exists()


def test_api_other_department_gets_404(api, crm_survey, sales_editor):
    api.force_authenticate(sales_editor)

    response = api.post(invitations_url(crm_survey), {"customer": CustomerFactory().pk})

    assert response.status_code == 404


def test_api_anonymous_is_refused(api, crm_survey):
    response = api.post(invitations_url(crm_survey), {"customer": CustomerFactory().pk})

    assert response.status_code in (401, 403)
    assert not SurveyInvitation.objects.exists()


def test_api_integration_token_of_the_department_invites(api, crm, sales, crm_manager, crm_survey):
    _token, secret = api_token_create(name="Shop", department=crm, source="shop", by=crm_manager)
    other = SurveyFactory(owner_department=sales)
    customer = CustomerFactory()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    own = api.post(invitations_url(crm_survey), {"customer": customer.pk}, format="json")
    foreign = api.post(invitations_url(other), {"customer": customer.pk}, format="json")

    assert own.status_code == 201
    assert foreign.status_code == 404


def test_admin_lists_invitations_read_only(client, superuser, crm_survey):
    invitation = SurveyInvitationFactory(survey=crm_survey)
    client.force_login(superuser)

    listing = client.get("/admin/experience/surveyinvitation/")
    change = client.get(f"/admin/experience/surveyinvitation/{invitation.pk}/change/")

    assert listing.status_code == 200
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert client.get("/admin/experience/surveyinvitation/add/").status_code == 403
