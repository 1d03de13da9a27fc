"""Reads of circle ①: headline figures, search, the 360 header, masking and preference tokens."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth.models import Permission

from config.org.services import share_grant
from customers.models import Channel, ImportantDate, SegmentMembership
from customers.selectors import (
    PREFERENCE_MAX_AGE,
    can_view_pii,
    customer_for_preference_token,
    customer_headline,
    customer_list,
    customer_merge_winner,
    customer_profile,
    mask_text,
    preference_token,
)
from tests.factories import ConsentFactory, CustomerFactory, IdentityFactory, SegmentFactory

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


# --- search: names in kanji, kana and latin; identifiers for everyone ---------------------


@pytest.fixture
def people():
    return {
        "hanako": CustomerFactory(
            family_name="渡辺",
            given_name="花子",
            family_name_kana="ワタナベ",
            given_name_kana="ハナコ",
        ),
        "sophie": CustomerFactory(family_name="Brown", given_name="Sophie", language="en"),
        "taro": CustomerFactory(family_name="佐藤", given_name="太郎"),
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("渡辺 花子", {"hanako"}),
        ("花子 渡辺", {"hanako"}),
        ("渡辺花子", {"hanako"}),
        ("わたなべ", {"hanako"}),
        ("ﾜﾀﾅﾍﾞ", {"hanako"}),
        ("ワタナベ　ハナコ", {"hanako"}),
        ("brown", {"sophie"}),
        ("SOPHIE br", {"sophie"}),
        ("ｂｒｏｗｎ", {"sophie"}),
        ("rown", set()),
    ],
)
def test_name_search_matches_name_starts_in_any_order_and_script(people, q, expected):
    found = set(customer_list(q=q))

    assert found == {people[key] for key in expected}


@pytest.mark.parametrize(
    ("kind", "stored", "typed"),
    [
        ("email", "hanako@example.jp", "  Hanako@Example.JP "),
        ("phone", "+819012345678", "090-1234-5678"),
        ("phone", "+819012345678", "０９０ １２３４ ５６７８"),
        ("pos", "HM0000314187", "HM0000314187"),
        ("line", "U0006912c7891afa", "U0006912c7891afa"),
    ],
)
def test_identifier_search_finds_the_exact_normalised_identifier(people, kind, stored, typed):
    IdentityFactory(customer=people["taro"], kind=kind, value=stored)
    IdentityFactory(customer=people["hanako"], kind=kind, value=stored + "0")

    assert list(customer_list(q=typed, search_names=False)) == [people["taro"]]


def test_identifier_search_does_not_match_part_of_an_identifier(people):
    IdentityFactory(customer=people["taro"], kind="pos", value="HM0000314187")

    assert list(customer_list(q="HM00003", search_names=False)) == []


def test_without_name_search_a_name_finds_nobody(people):
    assert list(customer_list(q="渡辺", search_names=False)) == []


def test_search_finds_a_name_and_an_identifier_with_the_same_text(people):
    IdentityFactory(customer=people["taro"], kind="line", value="brown")

    assert set(customer_list(q="brown")) == {people["sophie"], people["taro"]}


def test_list_filters_by_lifecycle_stage(people):
    people["taro"].lifecycle_stage = "loyal"
    people["taro"].save()

    assert list(customer_list(stage="loyal")) == [people["taro"]]


def test_mask_text_keeps_only_the_first_character():
    assert mask_text("渡辺 花子") == "渡***"
    assert mask_text("") == ""


# --- the customer 360 header -------------------------------------------------------------


def test_profile_masks_personal_data_without_view_pii(crm_viewer):
    customer = CustomerFactory(
        family_name="渡辺", given_name="花子", family_name_kana="ワタナベ", given_name_kana="ハナコ"
    )
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    ImportantDate.objects.create(customer=customer, kind="birthday", month=4, day=1)

    profile = customer_profile(customer, user=crm_viewer)

    assert not profile.show_pii
    assert profile.name == "渡***"
    assert profile.name_kana == "ワ***"
    assert [row.value for row in profile.identifiers] == ["h***@example.jp"]
    assert [row.date for row in profile.important_dates] == ["***"]


def test_profile_shows_personal_data_with_view_pii(crm_pii_viewer):
    customer = CustomerFactory(family_name="渡辺", given_name="花子")
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    ImportantDate.objects.create(customer=customer, kind="birthday", month=4, day=1)

    profile = customer_profile(customer, user=crm_pii_viewer)

    assert profile.name == "渡辺 花子"
    assert [row.value for row in profile.identifiers] == ["hanako@example.jp"]
    assert [row.date for row in profile.important_dates] == ["04-01"]


def test_profile_lists_only_segments_the_viewer_may_see(crm, sales, crm_viewer):
    customer = CustomerFactory()
    ours = SegmentFactory(owner_department=crm, name="Ours")
    theirs = SegmentFactory(owner_department=sales, name="Theirs")
    shared = SegmentFactory(owner_department=sales, name="Shared")
    share_grant(obj=shared, department=crm, can_edit=False, by=None)
    for segment in (ours, theirs, shared):
        SegmentMembership.objects.create(segment=segment, customer=customer)
    SegmentMembership.objects.create(
        segment=SegmentFactory(owner_department=crm), customer=CustomerFactory()
    )

    profile = customer_profile(customer, user=crm_viewer)

    assert [segment.name for segment in profile.segments] == ["Ours", "Shared"]


def test_profile_gives_every_channel_its_consent_or_not_asked(crm_viewer):
    customer = CustomerFactory()
    ConsentFactory(customer=customer, channel="email", status="granted", source="pos")

    rows = {row.channel: row for row in customer_profile(customer, user=crm_viewer).consents}

    assert rows["email"].status == "granted"
    assert rows["email"].source == "pos"
    assert rows["sms"].status == ""
    assert set(rows) == set(Channel.values)


def test_merge_winner_follows_a_chain_of_merges():
    winner = CustomerFactory()
    middle = CustomerFactory(merged_into=winner)
    loser = CustomerFactory(merged_into=middle)

    assert customer_merge_winner(loser) == winner


# --- preference-centre tokens ------------------------------------------------------------


def test_preference_token_names_its_customer_and_survives_no_tampering():
    customer = CustomerFactory()
    token = preference_token(customer)

    assert customer_for_preference_token(token) == customer
    assert customer_for_preference_token(token[:-2] + "xx") is None
    assert customer_for_preference_token("not-a-token") is None


def test_preference_token_expires():
    customer = CustomerFactory()
    token = preference_token(customer)
    later = time.time() + PREFERENCE_MAX_AGE.total_seconds() + 60

    with mock.patch("time.time", return_value=later):
        assert customer_for_preference_token(token) is None


def test_preference_token_of_a_merged_profile_opens_the_winner():
    winner = CustomerFactory()
    loser = CustomerFactory(merged_into=winner)

    assert customer_for_preference_token(preference_token(loser)) == winner


# --- name search as index ranges ---------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("brown", {"brown", "brownie"}),
        ("BROWN", {"brown", "brownie"}),
        ("Brown", {"brown", "brownie"}),
        ("mcdonald", {"mcdonald_lower"}),
        ("ワタナベ", {"watanabe"}),
        ("ワタナ", {"watanabe", "watanape"}),
        ("Browo", {"browo"}),
    ],
)
def test_name_prefix_ranges_end_exactly_after_the_prefix(q, expected):
    people = {
        "brown": CustomerFactory(family_name="Brown", given_name="Sophie", language="en"),
        "brownie": CustomerFactory(family_name="Brownie", given_name="Ann", language="en"),
        "browo": CustomerFactory(family_name="Browo", given_name="Max", language="en"),
        "mcdonald_lower": CustomerFactory(family_name="mcdonald", given_name="Ray", language="en"),
        "watanabe": CustomerFactory(family_name="渡辺", family_name_kana="ワタナベ"),
        # ペ is the code point right after ベ: the upper end of the range for "ワタナベ".
        "watanape": CustomerFactory(family_name="渡部", family_name_kana="ワタナペ"),
    }

    found = set(customer_list(q=q))

    assert found == {people[key] for key in expected}


def test_name_search_compares_the_name_columns_themselves_so_indexes_answer_it():
    sql = str(customer_list(q="Sophie ぶらうん").query).upper()

    assert "UPPER(" not in sql
    assert "LOWER(" not in sql
    assert '"FAMILY_NAME" >=' in sql
    assert '"GIVEN_NAME_KANA" >=' in sql
