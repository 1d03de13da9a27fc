"""Circle ① pages: the customer list and search, and the customer 360 page with its timeline."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from config.org.models import AuditLog
from customers.models import CustomerMetrics, SegmentMembership
from experience.models import Event
from journeys.models import StaffTask
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    EventFactory,
    EventTypeFactory,
    IdentityFactory,
    OrderFactory,
    SegmentFactory,
    SurveyResponseFactory,
)

pytestmark = pytest.mark.django_db

URL = reverse("customers:index")


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_page_lists_recent_customers_with_their_identifier_count(client, crm_pii_viewer):
    customer = CustomerFactory(family_name="山田", given_name="花子")
    IdentityFactory.create_batch(2, customer=customer)
    client.force_login(crm_pii_viewer)

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>" in html
    assert "山田 花子" in html
    assert '<td class="number">2</td>' in html
    assert 'aria-current="page"' in html


def test_search_by_kana_narrows_the_list(client, crm_pii_viewer):
    CustomerFactory(family_name="山田", family_name_kana="ヤマダ", given_name="花子")
    CustomerFactory(family_name="佐藤", family_name_kana="サトウ", given_name="太郎")
    client.force_login(crm_pii_viewer)

    response = client.get(URL, {"q": "サトウ"})

    html = response.content.decode()
    assert "佐藤 太郎" in html
    assert "山田 花子" not in html


def test_search_with_htmx_returns_only_the_results_fragment(client, crm_pii_viewer):
    CustomerFactory(family_name="佐藤", given_name="太郎")
    client.force_login(crm_pii_viewer)

    response = client.get(URL, {"q": "佐藤"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="customer-results"')
    assert "佐藤 太郎" in html
    assert "HX-Request" in response["Vary"]


def test_list_is_paginated_by_fifty(client, crm_viewer):
    CustomerFactory.create_batch(51)
    client.force_login(crm_viewer)

    first = client.get(URL)
    second = client.get(URL, {"page": 2})

    assert len(first.context["page_obj"]) == 50
    assert len(second.context["page_obj"]) == 1
    assert "Page 1 of 2" in first.content.decode()
    assert "?page=2" in first.content.decode()


def test_pagination_keeps_the_search(client, crm_pii_viewer):
    CustomerFactory.create_batch(51, family_name="山田")
    client.force_login(crm_pii_viewer)

    response = client.get(URL, {"q": "山田"})

    assert "q=%E5%B1%B1%E7%94%B0&amp;page=2" in response.content.decode()


def test_staff_without_view_pii_see_no_names_and_cannot_search_by_them(client, crm_viewer):
    customer = CustomerFactory(family_name="山田", given_name="花子")
    client.force_login(crm_viewer)

    response = client.get(URL, {"q": "山田"})

    html = response.content.decode()
    assert "山田 花子" not in html
    assert list(response.context["page_obj"]) == []
    assert "Find by email, phone or any ID" in html
    assert customer.pk not in [row.pk for row in response.context["page_obj"]]


def test_staff_without_view_pii_find_a_known_identifier_but_see_it_masked(client, crm_viewer):
    customer = CustomerFactory(family_name="山田", given_name="花子")
    IdentityFactory(customer=customer, kind="phone", value="+819012345678")
    CustomerFactory()
    client.force_login(crm_viewer)

    response = client.get(URL, {"q": "090-1234-5678"})

    html = response.content.decode()
    assert [row.pk for row in response.context["page_obj"]] == [customer.pk]
    assert f"Customer #{customer.pk}" in html
    assert "山田" not in html


@pytest.mark.parametrize(
    "q",
    ["hanako@example.jp", "HANAKO@example.jp", "+81 90 1234 5678", "HM0001", "やまだ", "Hanako"],
)
def test_pii_viewer_finds_by_email_phone_identifier_kana_and_latin(client, crm_pii_viewer, q):
    customer = CustomerFactory(
        family_name="山田", given_name="Hanako", family_name_kana="ヤマダ", given_name_kana="ハナコ"
    )
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    IdentityFactory(customer=customer, kind="phone", value="+819012345678")
    IdentityFactory(customer=customer, kind="pos", value="HM0001")
    CustomerFactory(family_name="佐藤")
    client.force_login(crm_pii_viewer)

    response = client.get(URL, {"q": q})

    assert [row.pk for row in response.context["page_obj"]] == [customer.pk]


def test_list_filters_by_lifecycle_stage_and_keeps_it_in_page_links(client, crm_viewer):
    CustomerFactory.create_batch(51, lifecycle_stage="loyal")
    CustomerFactory(lifecycle_stage="dormant")
    client.force_login(crm_viewer)

    response = client.get(URL, {"stage": "loyal"})

    assert response.context["page_obj"].paginator.count == 51
    assert "stage=loyal&amp;page=2" in response.content.decode()


def test_an_unknown_stage_is_a_clear_error(client, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(URL, {"stage": "vip"})

    assert response.status_code == 400
    assert "stage: Select a valid choice" in response.content.decode()


def test_every_row_links_to_the_customer_360_page(client, crm_viewer):
    customer = CustomerFactory()
    client.force_login(crm_viewer)

    response = client.get(URL)

    assert f'href="/customers/{customer.pk}/"' in response.content.decode()


def test_empty_company_tells_a_newcomer_what_to_do(client, crm_viewer):
    client.force_login(crm_viewer)

    response = client.get(URL)

    assert "No customers yet" in response.content.decode()


def test_page_query_count_does_not_grow_with_customers(
    client, crm_viewer, django_assert_num_queries
):
    for customer in CustomerFactory.create_batch(60):
        IdentityFactory(customer=customer)
    client.force_login(crm_viewer)
    client.get(URL)

    # session, user, user and group permissions, count, page of customers, memberships
    with django_assert_num_queries(7):
        client.get(URL)


# --- the customer 360 page ---------------------------------------------------------------


def detail_url(customer, **params) -> str:
    url = reverse("customers:detail", args=[customer.pk])
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


@pytest.fixture
def hanako():
    customer = CustomerFactory(
        family_name="渡辺",
        given_name="花子",
        family_name_kana="ワタナベ",
        given_name_kana="ハナコ",
        lifecycle_stage="loyal",
    )
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    IdentityFactory(customer=customer, kind="phone", value="+819012345678")
    CustomerMetrics.objects.create(
        customer=customer,
        order_count=4,
        revenue_total=48000,
        average_order_value=12000,
        rfm_recency=5,
        rfm_frequency=3,
        rfm_monetary=4,
        lead_score=87,
    )
    return customer


def test_viewer_without_view_pii_sees_a_masked_profile_and_nothing_is_audited(
    client, crm_viewer, hanako
):
    client.force_login(crm_viewer)

    response = client.get(detail_url(hanako))

    html = response.content.decode()
    assert response.status_code == 200
    assert "渡***" in html
    assert "渡辺" not in html
    assert "h***@example.jp" in html
    assert "+***" in html
    assert "hanako@example.jp" not in html
    assert "Loyal" in html
    assert "¥48,000" in html
    assert "¥12,000" in html
    assert "<dd>87</dd>" in html
    assert "preferences/" not in html
    assert not AuditLog.objects.filter(action="customer.view_pii").exists()


def test_pii_viewer_sees_the_profile_unmasked_and_the_view_is_audited_once(
    client, crm_pii_viewer, hanako
):
    client.force_login(crm_pii_viewer)

    response = client.get(detail_url(hanako))
    client.get(detail_url(hanako), headers={"HX-Request": "true"})  # a timeline page

    html = response.content.decode()
    assert "渡辺 花子" in html
    assert "hanako@example.jp" in html
    assert "/customers/preferences/" in html
    audits = AuditLog.objects.filter(action="customer.view_pii")
    assert [(entry.actor, entry.target_id, entry.detail) for entry in audits] == [
        (crm_pii_viewer, str(hanako.pk), {"via": "web"})
    ]


def test_segments_of_other_departments_are_hidden(client, crm, sales, crm_viewer, hanako):
    for department, name in ((crm, "CRM loyal"), (sales, "Sales hot leads")):
        SegmentMembership.objects.create(
            segment=SegmentFactory(owner_department=department, name=name), customer=hanako
        )
    client.force_login(crm_viewer)

    html = client.get(detail_url(hanako)).content.decode()

    assert "CRM loyal" in html
    assert "Sales hot leads" not in html


def test_merged_profile_redirects_to_its_winner_with_a_notice(client, crm_viewer, hanako):
    loser = CustomerFactory(merged_into=hanako)
    client.force_login(crm_viewer)

    response = client.get(detail_url(loser), follow=True)

    assert response.redirect_chain == [(detail_url(hanako, merged_from=loser.pk), 302)]
    assert f"Profile #{loser.pk} was merged into this one" in response.content.decode()


def test_unknown_customer_is_404(client, crm_viewer):
    client.force_login(crm_viewer)

    assert client.get(reverse("customers:detail", args=[999999])).status_code == 404


def test_timeline_lists_every_kind_of_interaction(client, crm, crm_viewer, hanako):
    campaign = CampaignFactory(owner_department=crm, name="Mothers day mail")
    EventFactory(customer=hanako, event_type=EventTypeFactory(name="store_visit"))
    OrderFactory(customer=hanako, number="ORD-42")
    SurveyResponseFactory(customer=hanako, score=10, comment="最高でした")
    DeliveryFactory(customer=hanako, step=CampaignStepFactory(campaign=campaign))
    StaffTask.objects.create(customer=hanako, title="Thank-you call")
    client.force_login(crm_viewer)

    html = client.get(detail_url(hanako)).content.decode()

    for text in ("store_visit", "ORD-42", "NPS answer: 10 / 10", "最高でした", "Mothers day mail"):
        assert text in html
    assert "Thank-you call" in html


def test_timeline_type_filter_and_htmx_partial(client, crm_viewer, hanako):
    EventFactory(customer=hanako, event_type=EventTypeFactory(name="page_view"))
    OrderFactory(customer=hanako, number="ORD-7")
    client.force_login(crm_viewer)

    response = client.get(detail_url(hanako, type="orders"), headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="timeline"')
    assert "ORD-7" in html
    assert 'data-kind="page_view"' not in html
    assert "渡" not in html  # the fragment carries no header


def test_bad_timeline_cursor_is_a_clear_error(client, crm_viewer, hanako):
    client.force_login(crm_viewer)

    response = client.get(detail_url(hanako, before="garbage"))

    assert response.status_code == 400
    assert "before: not a timeline position" in response.content.decode()


def make_events(customer, count: int) -> None:
    event_type = EventTypeFactory(name="page_view")
    start = timezone.now() - dt.timedelta(days=365)
    Event.objects.bulk_create(
        Event(
            customer=customer,
            event_type=event_type,
            source="test",
            occurred_at=start + dt.timedelta(minutes=index),
        )
        for index in range(count)
    )


@pytest.mark.parametrize("events", [60, 2_000])
def test_profile_page_query_count_does_not_grow_with_events(
    client, crm_pii_viewer, hanako, events, django_assert_num_queries
):
    make_events(hanako, events)
    client.force_login(crm_pii_viewer)
    client.get(detail_url(hanako))

    # session, user, customer + metrics, the viewer's departments, 5 timeline sources (one
    # page each), user and group permissions, identities, dates, segments, merges, consents,
    # life situations, audit insert, header memberships, departments of the filter; panels of
    # circle ②: cart and favourites (2), survey answers and open invitations (2); circle ④:
    # predicted value (1)
    with django_assert_num_queries(25):
        response = client.get(detail_url(hanako))

    assert response.content.decode().count('class="timeline-entry"') == 50


def test_older_link_pages_through_the_timeline_without_repeats(client, crm_viewer, hanako):
    make_events(hanako, 120)
    client.force_login(crm_viewer)

    seen: list[str] = []
    url = detail_url(hanako)
    pages = 0
    while url:
        response = client.get(url, headers={"HX-Request": "true"})
        pages += 1
        html = response.content.decode()
        seen += re.findall(r'<time datetime="([^"]+)">', html)
        older = re.search(r'data-testid="timeline-older" href="([^"]+)"', html)
        url = detail_url(hanako) + older.group(1).replace("&amp;", "&") if older else ""

    assert pages == 3
    assert len(seen) == len(set(seen)) == 120


def test_page_links_the_circle_tools_and_exports_what_is_shown(client, crm_pii_viewer):
    CustomerFactory(family_name="佐藤", given_name="太郎")
    client.force_login(crm_pii_viewer)

    html = client.get(URL, {"q": "佐藤", "stage": "prospect"}).content.decode()

    for name in ("segment_list", "imports", "merge_candidates"):
        assert f'href="{reverse(f"customers:{name}")}"' in html
    assert (
        f"{reverse('customers:export')}?q=%E4%BD%90%E8%97%A4&amp;stage=prospect&amp;format=csv"
        in html
    )
