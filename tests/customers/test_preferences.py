"""The public preference centre: a signed link, consents and self-declared important dates."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Consent, ConsentChange, ImportantDate
from customers.selectors import preference_token
from tests.factories import ConsentFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return CustomerFactory(family_name="渡辺", given_name="花子")


@pytest.fixture
def token(customer):
    return preference_token(customer)


def url(name: str, token: str, *args) -> str:
    return reverse(f"customers:{name}", args=[token, *args])


def test_a_valid_link_opens_the_page_without_login(client, customer, token):
    ConsentFactory(customer=customer, channel="email", status=Consent.Status.GRANTED)

    response = client.get(url("preferences", token))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your preferences" in html
    assert 'name="email" id="id_email" checked' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'id="language-form"' in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-cache" in response["Cache-Control"]


def test_page_shows_nothing_beyond_what_the_person_gave(client, customer, token):
    ImportantDate.objects.create(
        customer=customer, kind="custom", label="From the store's member list", month=6, day=1
    )

    html = client.get(url("preferences", token)).content.decode()

    assert "member list" not in html  # not declared by the person
    assert "No dates yet." in html
    assert "score" not in html.lower()
    assert "渡辺" not in html


@pytest.mark.parametrize(
    "bad", ["tampered", "x" * 10, "ZmFrZQ:1abc:def"], ids=["word", "junk", "forged"]
)
def test_invalid_or_tampered_link_is_a_plain_404(client, customer, token, bad):
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    for candidate in (bad, tampered):
        response = client.get(url("preferences", candidate))

        assert response.status_code == 404
        assert "This link is not valid" in response.content.decode()
        assert "渡辺" not in response.content.decode()


def test_changing_consents_writes_history_from_the_preference_centre(client, customer, token):
    ConsentFactory(customer=customer, channel="email", status=Consent.Status.GRANTED)
    ConsentFactory(customer=customer, channel="line", status=Consent.Status.WITHDRAWN)

    response = client.post(url("preferences_consents", token), {"line": "on"})

    assert response.status_code == 302
    statuses = dict(customer.consents.values_list("channel", "status"))
    assert statuses == {"email": "withdrawn", "line": "granted"}
    changes = ConsentChange.objects.filter(consent__customer=customer)
    assert {(change.consent.channel, change.status, change.source) for change in changes} == {
        ("email", "withdrawn", "preference_centre"),
        ("line", "granted", "preference_centre"),
    }
    assert all(change.changed_by is None for change in changes)
    assert "Your contact preferences are saved." in client.get(response.url).content.decode()


def test_channels_never_asked_and_left_unticked_stay_unasked(client, customer, token):
    client.post(url("preferences_consents", token), {"sms": "on"})

    assert dict(customer.consents.values_list("channel", "status")) == {"sms": "granted"}


def test_consent_change_with_a_bad_token_writes_nothing(client, customer):
    response = client.post(url("preferences_consents", "bogus"), {"email": "on"})

    assert response.status_code == 404
    assert not Consent.objects.exists()


def test_forms_are_csrf_protected(customer, token):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)

    response = client.post(url("preferences_consents", token), {"email": "on"})

    assert response.status_code == 403
    assert not Consent.objects.exists()


def test_adding_an_important_date(client, customer, token):
    response = client.post(
        url("preferences_date_add", token),
        {"kind": "spouse_birthday", "label": "妻の誕生日", "month": "2", "day": "29"},
    )

    assert response.status_code == 302
    date = customer.important_dates.get()
    assert (date.kind, date.label, date.month, date.day, date.self_declared) == (
        "spouse_birthday",
        "妻の誕生日",
        2,
        29,
        True,
    )
    assert "妻の誕生日" in client.get(response.url).content.decode()


def test_an_impossible_date_is_refused_with_a_clear_message(client, customer, token):
    response = client.post(
        url("preferences_date_add", token),
        {"kind": "spouse_birthday", "label": "妻の誕生日", "month": "2", "day": "30"},
    )

    assert response.status_code == 400
    assert "February has no day 30." in response.content.decode()
    assert not customer.important_dates.exists()


def test_another_day_needs_a_label(client, customer, token):
    response = client.post(
        url("preferences_date_add", token), {"kind": "custom", "month": "5", "day": "5"}
    )

    assert response.status_code == 400
    assert "Say whose day it is" in response.content.decode()


def test_removing_a_self_declared_date_and_only_those(client, customer, token):
    declared = ImportantDate.objects.create(
        customer=customer, kind="custom", label="母の誕生日", month=5, day=5, self_declared=True
    )
    from_store = ImportantDate.objects.create(customer=customer, kind="birthday", month=1, day=2)
    someone_elses = ImportantDate.objects.create(
        customer=CustomerFactory(), kind="custom", label="x", month=1, day=1, self_declared=True
    )

    removed = client.post(url("preferences_date_remove", token, declared.pk))
    refused = client.post(url("preferences_date_remove", token, from_store.pk))
    foreign = client.post(url("preferences_date_remove", token, someone_elses.pk))

    assert removed.status_code == 302
    assert refused.status_code == foreign.status_code == 404
    assert set(ImportantDate.objects.all()) == {from_store, someone_elses}


def test_page_speaks_japanese_to_a_japanese_browser(client, token):
    response = client.get(url("preferences", token), headers={"Accept-Language": "ja"})

    html = response.content.decode()
    assert '<html lang="ja"' in html
    assert "2月" in html  # month names of the date form
