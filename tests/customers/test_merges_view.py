"""The merge review page: candidates masked per view_pii, merge for editors, undo for managers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from customers.models import CustomerMerge
from customers.services import customers_merge
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = reverse("customers:merge_candidates")
BIRTH = dt.date(1980, 1, 2)


@pytest.fixture
def twins():
    first = CustomerFactory(family_name="佐藤", given_name="健", birth_date=BIRTH)
    second = CustomerFactory(family_name="佐藤", given_name="健", birth_date=BIRTH)
    return first, second


def test_page_lists_pairs_masked_without_view_pii(client, crm_viewer, twins):
    client.force_login(crm_viewer)

    html = client.get(URL).content.decode()

    assert f"Customer #{twins[0].pk}" in html
    assert "佐藤" not in html
    assert "1980-01-02" not in html
    assert "Same name and birth date" in html
    assert reverse("customers:merge") not in html  # viewers get no merge button


def test_page_shows_names_with_view_pii(client, crm_pii_viewer, twins):
    client.force_login(crm_pii_viewer)

    html = client.get(URL).content.decode()

    assert "佐藤 健" in html
    assert "1980-01-02" in html


def test_users_without_membership_get_403(client):
    client.force_login(UserFactory())

    assert client.get(URL).status_code == 403


def test_editor_merges_a_pair_with_htmx(client, crm_editor, twins):
    first, second = twins
    client.force_login(crm_editor)

    response = client.post(
        reverse("customers:merge"),
        {"winner": first.pk, "loser": second.pk, "reason": "same name and birth date"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="merge-board">')
    assert f"Customer #{second.pk} was merged into #{first.pk}" in html
    merge = CustomerMerge.objects.get()
    assert (merge.winner_id, merge.loser_id, merge.merged_by) == (first.pk, second.pk, crm_editor)
    assert merge.reason == "same name and birth date (staff review)"


def test_merge_without_javascript_redirects_back(client, crm_editor, twins):
    client.force_login(crm_editor)

    response = client.post(
        reverse("customers:merge"), {"winner": twins[0].pk, "loser": twins[1].pk}
    )

    assert response.status_code == 302
    assert response.url == URL


def test_viewer_cannot_merge(client, crm_viewer, twins):
    client.force_login(crm_viewer)

    response = client.post(
        reverse("customers:merge"), {"winner": twins[0].pk, "loser": twins[1].pk}
    )

    assert response.status_code == 403
    assert not CustomerMerge.objects.exists()


def test_merging_twice_reports_the_error(client, crm_editor, twins):
    client.force_login(crm_editor)
    data = {"winner": twins[0].pk, "loser": twins[1].pk}
    client.post(reverse("customers:merge"), data)

    response = client.post(reverse("customers:merge"), data, headers={"HX-Request": "true"})

    assert response.status_code == 400
    assert "already merged" in response.content.decode()


def test_manager_undoes_a_merge_and_others_cannot(client, crm_editor, crm_manager, twins):
    merge = customers_merge(winner=twins[0], loser=twins[1], by=crm_editor, reason="x")
    url = reverse("customers:merge_undo", args=[merge.pk])

    client.force_login(crm_editor)
    assert url not in client.get(URL).content.decode()
    assert client.post(url).status_code == 403
    client.force_login(crm_manager)
    assert url in client.get(URL).content.decode()
    response = client.post(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "was undone" in response.content.decode()
    merge.refresh_from_db()
    assert merge.undone_by == crm_manager
    twins[1].refresh_from_db()
    assert twins[1].merged_into_id is None


def test_undo_needs_post(client, crm_manager, twins):
    merge = customers_merge(winner=twins[0], loser=twins[1], by=crm_manager, reason="x")
    client.force_login(crm_manager)

    assert client.get(reverse("customers:merge_undo", args=[merge.pk])).status_code == 405


def test_csrf_is_enforced(crm_editor, twins):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(crm_editor)

    response = client.post(
        reverse("customers:merge"), {"winner": twins[0].pk, "loser": twins[1].pk}
    )

    assert response.status_code == 403
    assert not CustomerMerge.objects.exists()


def test_page_query_count_does_not_grow_with_merges(client, crm_manager, django_assert_num_queries):
    client.force_login(crm_manager)
    for _ in range(2):
        customers_merge(
            winner=CustomerFactory(), loser=CustomerFactory(), by=crm_manager, reason="x"
        )
    client.get(URL)

    # session, user, roles, candidate reads (phone-like ids, name groups, undone merges),
    # view_pii permissions (user, group), memberships for the header, recent merges.
    with django_assert_num_queries(10):
        client.get(URL)
    for _ in range(3):
        customers_merge(
            winner=CustomerFactory(), loser=CustomerFactory(), by=crm_manager, reason="x"
        )
    with django_assert_num_queries(10):
        client.get(URL)
