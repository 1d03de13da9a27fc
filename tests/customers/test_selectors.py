"""Reads of circle ①: headline figures, the customer list and who may see names."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from customers.selectors import can_view_pii, customer_headline, customer_list
from tests.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


def test_headline_counts_customers_and_share_known_by_several_identifiers():
    first, second, third = CustomerFactory.create_batch(3)
    IdentityFactory.create_batch(2, customer=first)
    IdentityFactory.create_batch(2, customer=second)
    IdentityFactory(customer=third)

    assert customer_headline() == {
        "customers_total": 3,
        "customers_multi_identifier_pct": 66.7,
    }


def test_headline_leaves_out_profiles_merged_into_others():
    survivor = CustomerFactory()
    CustomerFactory(merged_into=survivor)
    IdentityFactory.create_batch(2, customer=survivor)

    assert customer_headline() == {
        "customers_total": 1,
        "customers_multi_identifier_pct": 100.0,
    }


def test_headline_of_an_empty_company_has_no_percentage():
    assert customer_headline() == {
        "customers_total": 0,
        "customers_multi_identifier_pct": None,
    }


def test_list_is_newest_first_with_identifier_counts_and_without_merged_profiles():
    older = CustomerFactory()
    newer = CustomerFactory()
    CustomerFactory(merged_into=newer)
    IdentityFactory.create_batch(3, customer=newer)

    rows = list(customer_list())

    assert rows == [newer, older]
    assert [row.identity_count for row in rows] == [3, 0]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("花子", {"hanako"}),
        ("ハナコ", {"hanako"}),
        ("佐藤", {"taro"}),
        ("山田 花子", {"hanako"}),
        ("山田　ハナコ", {"hanako"}),
        ("山田", {"hanako", "jiro"}),
        ("nobody", set()),
    ],
)
def test_search_matches_every_word_in_kanji_or_kana(q, expected):
    people = {
        "hanako": CustomerFactory(
            family_name="山田",
            given_name="花子",
            family_name_kana="ヤマダ",
            given_name_kana="ハナコ",
        ),
        "jiro": CustomerFactory(family_name="山田", given_name="次郎"),
        "taro": CustomerFactory(family_name="佐藤", given_name="太郎"),
    }

    found = set(customer_list(q=q))

    assert found == {people[key] for key in expected}


def test_personal_data_needs_the_view_pii_permission(crm_viewer, superuser):
    assert not can_view_pii(crm_viewer)
    assert can_view_pii(superuser)

    crm_viewer.user_permissions.add(Permission.objects.get(codename="view_pii"))
    crm_viewer = type(crm_viewer).objects.get(pk=crm_viewer.pk)  # permissions are cached

    assert can_view_pii(crm_viewer)
