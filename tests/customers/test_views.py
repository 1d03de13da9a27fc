"""The circle ① page: recent customers, search, pagination, masking for outsiders."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, IdentityFactory

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

    response = client.get(URL, {"q": "佐藤"})

    html = response.content.decode()
    assert "山田" not in html
    assert f"Customer #{customer.pk}" in html
    assert 'name="q"' not in html


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
