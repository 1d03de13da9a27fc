"""Identity resolution: normalisation, stitching batches onto profiles, merge candidates."""

from __future__ import annotations

import re

import pytest

from customers.identity import (
    IdentifierError,
    merge_candidates,
    normalize_identifier,
    resolve_customers,
)
from customers.models import Customer, CustomerMerge, Identity
from customers.services import customer_merge_undo, customers_merge
from tests.factories import CustomerFactory, EventFactory, IdentityFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Hanako.Yamada@Example.JP ", "hanako.yamada@example.jp"),
        ("email", "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", "hanako@example.jp"),
        ("email", "taro@花子.jp", "taro@xn--i8s592g.jp"),
        ("phone", "090-1234-5678", "+819012345678"),
        ("phone", "０９０ー１２３４ー５６７８", "+819012345678"),
        ("phone", "(03) 1234-5678", "+81312345678"),
        ("phone", "+81 90 1234 5678", "+819012345678"),
        ("phone", "+1 415 555 0100", "+14155550100"),
        ("app", "  APP-User-7 ", "APP-User-7"),
        ("pos", "0001234", "0001234"),
        ("cookie", " abcDEF ", "abcDEF"),
        ("line", "U123", "U123"),
        ("dmp", "d-1", "d-1"),
        ("custom", "x", "x"),
    ],
)
def test_normalize_identifier(kind, raw, expected):
    assert normalize_identifier(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        ("email", "not-an-email", "not a valid email address"),
        ("email", "a@", "not a valid email address"),
        ("email", "   ", "is empty"),
        ("phone", "12345", "not a valid phone number"),
        ("phone", "090-12ab-5678", "not a valid phone number"),
        ("phone", "+0123456789", "not a valid international phone number"),
        ("cookie", "", "is empty"),
        ("pos", "x" * 256, "longer than 255 characters"),
        ("fax", "1", "unknown identifier kind"),
    ],
)
def test_normalize_identifier_rejects_with_a_reason(kind, raw, reason):
    with pytest.raises(IdentifierError, match=reason):
        normalize_identifier(kind, raw)


def test_unknown_people_become_profiles_with_their_identifiers():
    ids = resolve_customers(
        people=[{"email": "A@example.jp", "phone": "090-1111-2222"}, {"cookie": "c-1"}],
        source="web",
    )

    first, second = (Customer.objects.get(pk=pk) for pk in ids)
    assert ids[0] != ids[1]
    assert set(first.identities.values_list("kind", "value")) == {
        ("email", "a@example.jp"),
        ("phone", "+819011112222"),
    }
    assert first.is_anonymous is False
    assert second.is_anonymous is True
    assert first.identities.first().source == "web"


def test_known_identifiers_resolve_to_their_profile_and_new_ones_are_attached():
    known = IdentityFactory(kind="email", value="a@example.jp").customer

    ids = resolve_customers(people=[{"email": "A@Example.jp", "pos": "M-1"}], source="pos")

    assert ids == [known.pk]
    assert known.identities.filter(kind="pos", value="M-1").exists()
    assert Customer.objects.count() == 1


def test_items_sharing_an_identifier_within_a_batch_are_one_person():
    ids = resolve_customers(
        people=[
            {"email": "a@example.jp"},
            {"email": "a@example.jp", "phone": "090-1111-2222"},
            {"phone": "09011112222", "pos": "M-9"},
            {"email": "b@example.jp"},
        ],
        source="import",
    )

    assert ids[0] == ids[1] == ids[2]
    assert ids[3] != ids[0]
    assert Customer.objects.count() == 2
    assert Identity.objects.filter(customer_id=ids[0]).count() == 3


def test_overlapping_web_and_pos_files_end_with_the_right_number_of_profiles():
    # Web shop: 30 people by email. POS: 20 people by member number and phone, of whom
    # 10 (people 20–29) also gave the same email as on the web: 40 people in all.
    web = [{"email": f"person{n}@example.jp"} for n in range(30)]
    pos = [
        {
            "pos": f"M{n:05d}",
            "phone": f"090-0000-{n:04d}",
            **({"email": f"PERSON{n}@example.jp"} if n < 30 else {}),
        }
        for n in range(20, 40)
    ]

    web_ids = resolve_customers(people=web, source="webshop")
    pos_ids = resolve_customers(people=pos, source="pos")

    assert Customer.objects.filter(merged_into__isnull=True).count() == 40
    assert pos_ids[:10] == web_ids[20:30]
    assert not CustomerMerge.objects.exists()
    again = resolve_customers(people=pos, source="pos")
    assert again == pos_ids
    assert Customer.objects.count() == 40


def test_an_item_linking_two_profiles_merges_them_into_the_oldest(crm_editor):
    older = IdentityFactory(kind="email", value="a@example.jp").customer
    newer = IdentityFactory(kind="phone", value="+819011112222").customer
    event = EventFactory(customer=newer)
    order = OrderFactory(customer=newer)

    ids = resolve_customers(
        people=[{"email": "a@example.jp", "phone": "090-1111-2222"}], source="pos", by=crm_editor
    )

    assert ids == [older.pk]
    newer.refresh_from_db()
    assert newer.merged_into_id == older.pk
    event.refresh_from_db()
    order.refresh_from_db()
    assert event.customer_id == order.customer_id == older.pk
    merge = CustomerMerge.objects.get()
    assert (merge.winner_id, merge.loser_id, merge.merged_by) == (older.pk, newer.pk, crm_editor)
    assert "email a***@example.jp" in merge.reason
    assert "phone +***" in merge.reason
    assert older.metrics.order_count == 1


def test_a_bad_identifier_stops_the_batch_naming_the_item_and_kind():
    with pytest.raises(IdentifierError, match=r"people\[1\]\.email: not a valid email"):
        resolve_customers(people=[{"email": "a@example.jp"}, {"email": "nope"}], source="web")

    assert not Customer.objects.exists()


def test_an_item_without_any_identifier_is_refused():
    with pytest.raises(IdentifierError, match=r"people\[0\]: no identifier"):
        resolve_customers(people=[{"email": "  "}], source="web")


def test_resolve_maps_a_batch_without_a_query_per_item(django_assert_num_queries):
    known = IdentityFactory.create_batch(20, kind="pos")
    people = [{"email": f"new{n}@example.jp", "phone": f"080-2222-{n:04d}"} for n in range(40)]
    people += [
        {"pos": identity.value, "email": f"k{n}@example.jp"} for n, identity in enumerate(known)
    ]

    # savepoint, one lookup, customers insert, identities insert, last-seen update,
    # anonymous flag update, release
    with django_assert_num_queries(7):
        ids = resolve_customers(people=people, source="import")

    assert ids[40:] == [identity.customer_id for identity in known]


def test_merge_candidates_pairs_same_name_and_birth_date():
    import datetime as dt

    first = CustomerFactory(family_name="佐藤", given_name="健", birth_date=dt.date(1980, 1, 2))
    second = CustomerFactory(family_name="佐藤", given_name="健", birth_date=dt.date(1980, 1, 2))
    CustomerFactory(family_name="佐藤", given_name="健", birth_date=dt.date(1981, 1, 2))

    [candidate] = merge_candidates()

    assert (candidate.first, candidate.second) == (first, second)
    assert candidate.kind == "name_birth_date"


def test_merge_candidates_finds_a_phone_kept_under_another_kind():
    owner = IdentityFactory(kind="phone", value="+819011112222").customer
    other = IdentityFactory(kind="pos", value="090-1111-2222").customer

    [candidate] = merge_candidates()

    assert {candidate.first, candidate.second} == {owner, other}
    assert candidate.kind == "phone"


def test_merge_candidates_leave_out_merged_and_undone_pairs(crm_manager):
    import datetime as dt

    birth = dt.date(1980, 1, 2)
    a = CustomerFactory(family_name="佐藤", given_name="健", birth_date=birth)
    b = CustomerFactory(family_name="佐藤", given_name="健", birth_date=birth)
    merge = customers_merge(winner=a, loser=b, by=crm_manager, reason="test")
    assert merge_candidates() == []

    customer_merge_undo(merge=merge, by=crm_manager)

    assert merge_candidates() == []


@pytest.mark.parametrize(
    "raw",
    [
        "A.B+tag@Sub.Example.CO.JP",
        "user_1%x@example-shop.jp",
        "a..b@example.jp",
        ".a@example.jp",
        "a@-example.jp",
        "a@example.j",
        "a@example.jp-",
        "a b@example.jp",
        "a@localhost",
        "a@[127.0.0.1]",
        "x@" + "a" * 64 + ".jp",
    ],
)
def test_the_email_fast_path_agrees_with_the_full_validation(raw):
    from customers import identity

    def full(value):
        saved = identity._PLAIN_EMAIL
        identity._PLAIN_EMAIL = re.compile(r"(?!)")  # never matches: the full path only
        try:
            return normalize_identifier("email", value)
        finally:
            identity._PLAIN_EMAIL = saved

    try:
        expected = full(raw)
    except IdentifierError as exc:
        with pytest.raises(IdentifierError, match=re.escape(str(exc))):
            normalize_identifier("email", raw)
    else:
        assert normalize_identifier("email", raw) == expected


def test_already_normalised_phones_pass_unchanged_and_bad_ones_still_fail():
    assert normalize_identifier("phone", "+819012345678") == "+819012345678"
    with pytest.raises(IdentifierError, match="international"):
        normalize_identifier("phone", "+0123456789")


def test_new_profiles_get_model_defaults_and_distinct_uuids():
    ids = resolve_customers(
        people=[{"email": f"d{n}@example.jp"} for n in range(5)] + [{"cookie": "c-9"}],
        source="web",
    )

    customers = list(Customer.objects.filter(pk__in=ids).order_by("pk"))
    assert [c.pk for c in customers] == sorted(ids)
    assert len({c.uuid for c in customers}) == 6
    assert all(c.language == "ja" and c.attributes == {} and c.created_at for c in customers)
    assert [c.is_anonymous for c in customers] == [False] * 5 + [True]
    assert Identity.objects.filter(customer_id__in=ids, last_seen_at__isnull=False).count() == 6
