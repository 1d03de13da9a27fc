"""Circle ② pages: the touchpoint map, a touchpoint's page, the catalogue, the values."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.services import share_grant
from experience.models import ExperienceValue, Survey, Touchpoint
from tests.factories import (
    EventFactory,
    SurveyFactory,
    SurveyResponseFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db

URL = reverse("experience:index")
VALUES_URL = reverse("experience:values")
CREATE_URL = reverse("experience:touchpoint_create")


def detail_url(touchpoint) -> str:
    return reverse("experience:touchpoint", args=[touchpoint.pk])


def edit_url(touchpoint) -> str:
    return reverse("experience:touchpoint_edit", args=[touchpoint.pk])


@pytest.mark.parametrize("name", ["index", "values", "touchpoint_create"])
def test_anonymous_visitor_is_sent_to_login(client, name):
    response = client.get(reverse(f"experience:{name}"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_anonymous_visitor_cannot_open_a_touchpoint(client, crm):
    touchpoint = TouchpointFactory(owner_department=crm)

    for url in (detail_url(touchpoint), edit_url(touchpoint)):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


# --- The map ---------------------------------------------------------------------------------


def test_map_shows_own_and_shared_touchpoints_but_not_other_departments(
    client, crm, sales, crm_editor
):
    TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=sales, name="Sales visits")
    shared = TouchpointFactory(owner_department=sales, name="Flagship store")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert "Web shop" in html
    assert "Flagship store" in html
    assert "Sales visits" not in html


def test_map_groups_by_kind_with_channel_owner_values_volume_and_nps(client, crm, crm_editor):
    store = TouchpointFactory(
        owner_department=crm,
        name="Ginza store",
        kind=Touchpoint.Kind.OFFLINE,
        channel=Touchpoint.Channel.STORE,
    )
    store.experience_values.add(ExperienceValue.objects.get(code="reassurance"))
    EventFactory.create_batch(4, touchpoint=store)
    EventFactory(touchpoint=store, occurred_at=timezone.now() - dt.timedelta(days=40))
    survey = SurveyFactory(owner_department=crm, kind=Survey.Kind.NPS, touchpoint=store)
    for score in (10, 10, 4):
        SurveyResponseFactory(survey=survey, score=score)
    client.force_login(crm_editor)

    html = client.get(URL).content.decode()

    assert 'scope="colgroup">Offline</th>' in html
    assert "<td>Store</td>" in html
    assert "<td>CRM &amp; digital</td>" in html
    assert 'title="Trust and safety: quality, advice, support when unsure."' in html
    assert "Reassurance" in html
    assert '<td class="number">4 <span class="trend trend-up"' in html
    assert '<td class="number">1</td>' in html  # the 30 days before
    assert 'data-nps="33.3">+33.3</strong>' in html
    assert "(3 answers)" in html
    assert "Total of 1 touchpoint" in html


def test_map_filters_answer_the_map_partial_to_htmx(client, crm, crm_editor):
    TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=crm, name="Ginza store", kind=Touchpoint.Kind.OFFLINE)
    client.force_login(crm_editor)

    response = client.get(URL, {"kind": "offline"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="touchpoint-map"')
    assert "<html" not in html
    assert "Ginza store" in html
    assert "Web shop" not in html


def test_map_filters_work_without_javascript(client, crm, crm_editor):
    TouchpointFactory(owner_department=crm, name="Web shop")
    TouchpointFactory(owner_department=crm, name="Closed shop", is_active=False)
    client.force_login(crm_editor)

    default = client.get(URL).content.decode()
    everything = client.get(URL, {"inactive": "on"}).content.decode()
    nonsense = client.get(URL, {"kind": "nonsense", "department": "x"})

    assert "Closed shop" not in default
    assert "Closed shop" in everything
    assert nonsense.status_code == 200
    assert "Web shop" in nonsense.content.decode()


def test_empty_map_explains_what_to_do(client, crm_editor):
    client.force_login(crm_editor)

    assert "No touchpoints match" in client.get(URL).content.decode()


def test_map_offers_new_touchpoint_to_editors_only(client, crm_editor, crm_viewer):
    client.force_login(crm_editor)
    assert CREATE_URL in client.get(URL).content.decode()

    client.force_login(crm_viewer)
    assert CREATE_URL not in client.get(URL).content.decode()


def test_map_query_count_does_not_grow_with_touchpoints(
    client, crm, crm_editor, django_assert_num_queries
):
    values = list(ExperienceValue.objects.all())
    survey = SurveyFactory(owner_department=crm)
    for touchpoint in TouchpointFactory.create_batch(5, owner_department=crm):
        touchpoint.experience_values.set(values[:2])
        EventFactory(touchpoint=touchpoint, occurred_at=timezone.now() - dt.timedelta(days=1))
        SurveyResponseFactory(survey=survey, touchpoint=touchpoint, score=9)
    client.force_login(crm_editor)
    client.get(URL)

    # session, user, roles, departments for the filter, touchpoints with their counts,
    # their values, NPS per touchpoint, memberships for the header
    with django_assert_num_queries(8):
        client.get(URL)


# --- One touchpoint --------------------------------------------------------------------------


def test_detail_shows_values_owner_shares_volume_nps_and_masked_comments(
    client, crm, sales, crm_viewer
):
    touchpoint = TouchpointFactory(owner_department=crm, name="Web shop", description="Our shop")
    touchpoint.experience_values.add(ExperienceValue.objects.get(code="convenience"))
    share_grant(obj=touchpoint, department=sales, can_edit=True, by=None)
    EventFactory.create_batch(3, touchpoint=touchpoint)
    survey = SurveyFactory(owner_department=crm, name="After purchase", touchpoint=touchpoint)
    response = SurveyResponseFactory(survey=survey, score=3, comment="Too slow")
    SurveyResponseFactory(survey=survey, score=9)
    client.force_login(crm_viewer)

    html = client.get(detail_url(touchpoint)).content.decode()

    assert "Our shop" in html
    assert "Convenience" in html
    assert "Sales planning" in html
    assert "page_view" in html
    assert '<td class="number">3</td>' in html
    assert 'data-testid="promoters">1<' in html
    assert 'data-testid="detractors">1<' in html
    assert 'data-nps="0.0"' in html
    assert "Too slow" in html
    assert f"Customer #{response.customer_id}" in html
    assert response.customer.given_name not in html
    assert "After purchase" in html
    assert edit_url(touchpoint) not in html  # a viewer cannot edit


def test_detail_unmasks_commenters_for_staff_with_view_pii(client, crm, crm_pii_viewer):
    touchpoint = TouchpointFactory(owner_department=crm)
    survey = SurveyFactory(owner_department=crm, touchpoint=touchpoint)
    response = SurveyResponseFactory(survey=survey, score=10, comment="Great")
    client.force_login(crm_pii_viewer)

    html = client.get(detail_url(touchpoint)).content.decode()

    assert response.customer.given_name in html


def test_detail_of_another_departments_touchpoint_is_404(client, sales, crm_editor):
    touchpoint = TouchpointFactory(owner_department=sales)
    client.force_login(crm_editor)

    assert client.get(detail_url(touchpoint)).status_code == 404


def test_detail_query_count_is_pinned(client, crm, crm_editor, django_assert_num_queries):
    touchpoint = TouchpointFactory(owner_department=crm)
    touchpoint.experience_values.set(ExperienceValue.objects.all()[:3])
    survey = SurveyFactory(owner_department=crm, touchpoint=touchpoint)
    for score in range(11):
        SurveyResponseFactory(survey=survey, score=score, comment=f"Comment {score}")
    EventFactory.create_batch(5, touchpoint=touchpoint)
    client.force_login(crm_editor)
    client.get(detail_url(touchpoint))

    # session, user, roles, touchpoint, values, permissions (user, groups) for view_pii,
    # can-edit, events by type, events by week, NPS counts, comments with customers,
    # memberships for the header, shares, surveys
    with django_assert_num_queries(15):
        client.get(detail_url(touchpoint))


# --- Catalogue -------------------------------------------------------------------------------


def post_data(department, **overrides) -> dict:
    return {
        "code": "ginza-store",
        "name": "Ginza store",
        "channel": "store",
        "kind": "offline",
        "description": "Flagship",
        "experience_values": ["reassurance"],
        "owner_department": department.pk,
        "is_active": "on",
        **overrides,
    }


def test_editor_creates_a_touchpoint(client, crm, crm_editor):
    client.force_login(crm_editor)

    form = client.get(CREATE_URL).content.decode()
    response = client.post(CREATE_URL, post_data(crm))

    assert "Trust and safety" in form  # values come with their descriptions
    touchpoint = Touchpoint.objects.get(code="ginza-store")
    assert response.status_code == 302
    assert response.url == detail_url(touchpoint)
    assert [v.code for v in touchpoint.experience_values.all()] == ["reassurance"]


def test_create_form_offers_only_departments_where_the_user_edits(client, crm, sales, crm_editor):
    client.force_login(crm_editor)

    response = client.post(CREATE_URL, post_data(sales))

    assert response.status_code == 400
    assert "Sales planning" not in response.content.decode()
    assert not Touchpoint.objects.exists()


def test_duplicate_code_is_shown_on_the_code_field(client, crm, crm_editor):
    TouchpointFactory(code="ginza-store")
    client.force_login(crm_editor)

    response = client.post(CREATE_URL, post_data(crm))

    assert response.status_code == 400
    assert "Touchpoint with this Code already exists." in response.content.decode()


def test_viewer_cannot_create(client, crm, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, post_data(crm)).status_code == 403
    assert not Touchpoint.objects.exists()


def test_editor_edits_own_touchpoint(client, crm, crm_editor):
    touchpoint = TouchpointFactory(owner_department=crm, code="web", name="Web")
    client.force_login(crm_editor)

    form = client.get(edit_url(touchpoint)).content.decode()
    response = client.post(edit_url(touchpoint), post_data(crm, code="web", name="Web shop"))

    assert 'value="web"' in form
    assert response.status_code == 302
    touchpoint.refresh_from_db()
    assert touchpoint.name == "Web shop"


def test_viewer_cannot_edit_and_other_departments_get_404(
    client, crm, sales, crm_viewer, sales_editor
):
    touchpoint = TouchpointFactory(owner_department=crm, name="Web")

    client.force_login(crm_viewer)
    assert client.get(edit_url(touchpoint)).status_code == 403
    assert client.post(edit_url(touchpoint), post_data(crm, name="X")).status_code == 403
    client.force_login(sales_editor)
    assert client.get(edit_url(touchpoint)).status_code == 404
    assert client.post(edit_url(touchpoint), post_data(sales, name="X")).status_code == 404
    touchpoint.refresh_from_db()
    assert touchpoint.name == "Web"


# --- Values ----------------------------------------------------------------------------------


def test_values_page_lists_the_five_values_with_visible_touchpoints_and_events(
    client, crm, sales, crm_editor
):
    deal = ExperienceValue.objects.get(code="deal")
    TouchpointFactory(owner_department=crm, name="Coupon app").experience_values.add(deal)
    TouchpointFactory(owner_department=sales, name="Sales flyers").experience_values.add(deal)
    EventFactory.create_batch(2, value_bits=ExperienceValue.bits_for(["deal"]))
    client.force_login(crm_editor)

    html = client.get(VALUES_URL).content.decode()

    for code in ExperienceValue.Code.values:
        assert f'data-value="{code}"' in html
    assert "Getting more for the money" in html
    assert "Coupon app" in html
    assert "Sales flyers" not in html
    deal_card = html.split('data-value="deal"')[1].split("</article>")[0]
    assert 'data-testid="touchpoints">1<' in deal_card
    assert 'data-testid="events">2<' in deal_card


def test_values_page_speaks_japanese(client, crm_editor):
    client.force_login(crm_editor)

    html = client.get(VALUES_URL, headers={"Accept-Language": "ja"}).content.decode()

    assert "お得" in html
