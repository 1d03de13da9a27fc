"""Persona pages: the narrative as cells, the live figures of the segment, who may do what."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db.models import Avg, Count, Q
from django.db.models.functions import Coalesce
from django.urls import reverse

from config.org.services import share_grant
from customers.models import Customer, CustomerMetrics, SegmentMembership
from experience.models import OrderLine
from journeys.maps.discussion import comment_add, comment_resolve
from journeys.models import Persona, Revision
from tests.factories import (
    CustomerFactory,
    EventFactory,
    JourneyFactory,
    LifeEventFactory,
    OrderFactory,
    PersonaFactory,
    ProductFactory,
    SegmentFactory,
    TouchpointFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def persona(crm):
    return PersonaFactory(
        owner_department=crm,
        name="Gift-giving regular",
        initials="GR",
        color="#b5446e",
        goals="A gift that arrives on time",
        quotes="<b>Something different</b>, please",
    )


@pytest.fixture
def segment_persona(crm, persona):
    """Three members with metrics, one customer outside the segment, activity of members."""
    segment = SegmentFactory(owner_department=crm, name="Gift regulars")
    members = CustomerFactory.create_batch(3)
    CustomerFactory()  # not a member: counts in the share's denominator
    for customer, revenue, orders, nps in zip(
        members, (12000, 30000, 0), (1, 3, 0), (10, 9, 3), strict=True
    ):
        CustomerMetrics.objects.create(
            customer=customer, revenue_total=revenue, order_count=orders, last_nps=nps
        )
        SegmentMembership.objects.create(segment=segment, customer=customer)
    app = TouchpointFactory(owner_department=crm, channel="app", name="App")
    EventFactory(customer=members[0], touchpoint=app)
    EventFactory(customer=members[1], touchpoint=app)
    order = OrderFactory(customer=members[1])
    OrderLine.objects.create(
        order=order, product=ProductFactory(name="Rose bouquet"), quantity=4, unit_price=3000
    )
    LifeEventFactory(customer=members[2])
    persona.segment = segment
    persona.save()
    return persona


def detail_url(persona) -> str:
    return reverse("journeys:persona_detail", args=[persona.pk])


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</d[dl]>', html, re.S)
    assert match, element_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


# --- the page -------------------------------------------------------------------------------


def test_the_page_shows_the_figures_computed_from_the_database(client, crm_viewer, segment_persona):
    members = SegmentMembership.objects.filter(segment=segment_persona.segment)
    expected = members.aggregate(
        size=Count("pk"),
        ltv=Avg(Coalesce("customer__metrics__revenue_total", Decimal(0))),
        promoters=Count("pk", filter=Q(customer__metrics__last_nps__gte=9)),
        detractors=Count("pk", filter=Q(customer__metrics__last_nps__lte=6)),
        buyers=Count("pk", filter=Q(customer__metrics__order_count__gte=1)),
        repeaters=Count("pk", filter=Q(customer__metrics__order_count__gte=2)),
    )
    customers = Customer.objects.filter(merged_into__isnull=True).count()
    client.force_login(crm_viewer)

    html = client.get(detail_url(segment_persona)).content.decode()

    assert text_of(html, "figure-size") == str(expected["size"])
    assert text_of(html, "figure-share") == f"{100 * expected['size'] / customers:.1f} %"
    assert text_of(html, "figure-ltv") == f"¥{expected['ltv']:,.0f}"
    nps = round(100 * (expected["promoters"] - expected["detractors"]) / expected["size"])
    assert text_of(html, "figure-nps").startswith(f"{nps} 3 responses")
    assert "2 promoters (67 %)" in text_of(html, "figure-nps")
    assert "1 detractors (33 %)" in text_of(html, "figure-nps")
    assert text_of(html, "figure-f2").startswith(
        f"{100 * expected['repeaters'] / expected['buyers']:.1f} %"
    )
    assert re.search(r'id="figure-channels">\s*<li>App <span class="figure-count">2<', html)
    assert "Rose bouquet" in html
    assert "Marriage" in html
    assert "Gift regulars" in html


def test_without_a_segment_the_page_says_so(client, crm_viewer, persona):
    client.force_login(crm_viewer)

    response = client.get(detail_url(persona))

    assert response.status_code == 200
    assert 'id="figures-no-segment"' in response.content.decode()


def test_the_narrative_is_shown_in_cells_escaped_with_the_avatar(client, crm_editor, persona):
    client.force_login(crm_editor)

    html = client.get(detail_url(persona)).content.decode()

    assert f'id="cell-persona-{persona.pk}-goals"' in html
    assert "A gift that arrives on time" in html
    assert "&lt;b&gt;Something different&lt;/b&gt;" in html
    assert 'fill="#b5446e"' in html
    assert ">GR</text>" in html
    assert reverse("journeys:persona_history", args=[persona.pk]) in html


def test_editors_get_edit_buttons_and_viewers_none(client, crm_editor, crm_viewer, persona):
    client.force_login(crm_editor)
    editor_html = client.get(detail_url(persona)).content.decode()
    client.force_login(crm_viewer)
    viewer_html = client.get(detail_url(persona)).content.decode()

    assert "map-cell-edit" in editor_html
    assert "map-cell-edit" not in viewer_html
    assert 'id="persona-read-only"' in viewer_html


def test_a_viewers_post_to_a_cell_is_refused(client, crm_viewer, persona):
    client.force_login(crm_viewer)

    response = client.post(
        reverse("journeys:cell", args=["persona", persona.pk, "goals"]),
        {"value": "Changed by a viewer", "version": 0},
    )

    assert response.status_code == 403
    persona.refresh_from_db()
    assert persona.goals == "A gift that arrives on time"


def test_another_department_gets_404_until_it_is_shared(
    client, crm_manager, sales, sales_editor, persona
):
    client.force_login(sales_editor)

    assert client.get(detail_url(persona)).status_code == 404

    share_grant(obj=persona, department=sales, can_edit=True, by=crm_manager)
    html = client.get(detail_url(persona)).content.decode()
    assert "map-cell-edit" in html  # an edit share lets sales co-edit


def test_anonymous_visitors_are_sent_to_log_in(client, persona):
    response = client.get(detail_url(persona))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_journeys_of_the_persona_are_listed_when_visible(
    client, crm, sales, sales_editor, crm_manager, persona
):
    shown = JourneyFactory(persona=persona, owner_department=crm, name="Anniversary gift")
    JourneyFactory(persona=persona, owner_department=crm, name="CRM-only journey")
    share_grant(obj=persona, department=sales, can_edit=False, by=crm_manager)
    share_grant(obj=shown, department=sales, can_edit=False, by=crm_manager)
    client.force_login(sales_editor)

    html = client.get(detail_url(persona)).content.decode()

    assert reverse("journeys:journey_detail", args=[shown.pk]) in html
    assert "CRM-only journey" not in html


def test_the_persona_page_runs_a_fixed_number_of_queries(
    client, crm, sales, crm_manager, crm_editor, segment_persona, django_assert_num_queries
):
    JourneyFactory.create_batch(3, persona=segment_persona, owner_department=crm)
    share_grant(obj=segment_persona, department=sales, can_edit=True, by=crm_manager)
    for field in ("", "goals", "quotes"):
        first = comment_add(
            by=crm_editor, body="@crm-manager ?", persona=segment_persona, field=field
        )
        comment_add(by=crm_manager, body="Noted", persona=segment_persona, parent=first)
    comment_resolve(comment=first, by=crm_manager)
    client.force_login(crm_manager)
    client.get(detail_url(segment_persona))  # warm caches (content types)

    with django_assert_num_queries(PERSONA_PAGE_QUERIES):
        response = client.get(detail_url(segment_persona))

    assert response.status_code == 200
    assert response.content.decode().count('class="comment-reply"') == 3


# Session, user, memberships; persona; figures (6); comment counts; segment name and
# experience values of the cells; journeys; latest revision; presence; shares and share
# targets; threads with replies (3); the header's memberships.
PERSONA_PAGE_QUERIES = 20


# --- new persona ----------------------------------------------------------------------------


def test_an_editor_creates_a_persona_for_their_department(client, crm, crm_editor):
    segment = SegmentFactory(owner_department=crm)
    client.force_login(crm_editor)

    response = client.post(
        reverse("journeys:persona_new"),
        {"name": "First-time app buyer", "owner_department": crm.pk, "segment": segment.pk},
    )

    persona = Persona.objects.get(name="First-time app buyer")
    assert response.status_code == 302
    assert response.url == detail_url(persona)
    assert (persona.owner_department, persona.segment) == (crm, segment)
    assert Revision.objects.filter(persona=persona, action=Revision.Action.CREATE).exists()


def test_the_form_offers_only_the_users_departments_and_visible_segments(
    client, crm, sales, crm_editor
):
    hidden = SegmentFactory(owner_department=sales, name="Sales-only segment")
    client.force_login(crm_editor)

    form_html = client.get(reverse("journeys:persona_new")).content.decode()
    foreign_department = client.post(
        reverse("journeys:persona_new"), {"name": "X", "owner_department": sales.pk}
    )
    foreign_segment = client.post(
        reverse("journeys:persona_new"),
        {"name": "Y", "owner_department": crm.pk, "segment": hidden.pk},
    )

    assert "Sales-only segment" not in form_html
    assert "Sales planning" not in form_html
    assert foreign_department.status_code == 422
    assert foreign_segment.status_code == 422
    assert not Persona.objects.exists()


def test_viewers_cannot_create_personas(client, crm, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(reverse("journeys:persona_new")).status_code == 403
    response = client.post(
        reverse("journeys:persona_new"), {"name": "X", "owner_department": crm.pk}
    )
    assert response.status_code == 403
    assert not Persona.objects.exists()


def test_anonymous_visitors_cannot_open_the_new_persona_form(client):
    response = client.get(reverse("journeys:persona_new"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
