"""Public campaign links: open pixel, click redirect, unsubscribe (anonymous, signed tokens)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client, override_settings
from django.urls import reverse, set_script_prefix

from customers.models import Consent, Customer
from journeys import feedback
from journeys.models import Campaign, CampaignStep, Delivery, Variant
from tests.factories import (
    CampaignFactory,
    ConsentFactory,
    CustomerFactory,
    DeliveryFactory,
    IdentityFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo: outside quiet hours


@pytest.fixture
def delivery():
    customer = CustomerFactory(language="ja")
    ConsentFactory(customer=customer, channel="email")
    return DeliveryFactory(customer=customer, status=Delivery.Status.SENT, sent_at=NOW)


def tamper(token: str) -> str:
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


def test_open_pixel_is_a_gif_that_is_never_cached(client, delivery):
    response = client.get(reverse("tracking:open", args=[feedback.open_token(delivery.pk)]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"]
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.OPENED


def test_tampered_open_token_is_404_and_records_nothing(client, delivery):
    response = client.get(reverse("tracking:open", args=[tamper(feedback.open_token(delivery.pk))]))

    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.opened_at is None


def test_click_redirects_to_the_signed_url_and_records_the_click(client, delivery):
    url = "https://shop.example.com/sale?x=1&y=2"
    response = client.get(reverse("tracking:click", args=[feedback.click_token(delivery.pk, url)]))

    assert response.status_code == 302
    assert response["Location"] == url
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CLICKED


@pytest.mark.parametrize(
    "make_token",
    [
        lambda d: tamper(feedback.click_token(d.pk, "https://shop.example.com/")),
        # a genuine token of another purpose is no click token
        lambda d: feedback.open_token(d.pk),
        lambda d: feedback.unsubscribe_token(d.pk),
        lambda d: "garbage",
    ],
)
def test_forged_click_tokens_never_redirect(client, delivery, make_token):
    response = client.get(reverse("tracking:click", args=[make_token(delivery)]))

    assert response.status_code == 404
    assert "Location" not in response
    delivery.refresh_from_db()
    assert delivery.clicked_at is None


def test_a_token_cannot_be_edited_to_point_elsewhere(client, delivery):
    token = feedback.click_token(delivery.pk, "https://shop.example.com/")
    signature = token.partition(":")[2]
    evil = feedback.click_token(delivery.pk, "https://evil.example/").partition(":")[0]

    response = client.get(reverse("tracking:click", args=[f"{evil}:{signature}"]))

    assert response.status_code == 404
    assert "Location" not in response


def test_only_http_links_can_be_signed():
    with pytest.raises(ValueError, match="http"):
        feedback.click_token(1, "javascript:alert(1)")


@pytest.mark.parametrize("script_prefix", ["/", "/circle/"])
def test_links_in_messages_are_the_routes_own_urls_under_any_script_prefix(delivery, script_prefix):
    # Messages format tokens into each route reversed once; a sub-path deployment
    # (FORCE_SCRIPT_NAME) must still get exactly what reverse() answers.
    set_script_prefix(script_prefix)
    try:
        url = "https://shop.example.com/sale?x=1&y=2"
        assert feedback.open_url(delivery.pk) == reverse(
            "tracking:open", args=[feedback.open_token(delivery.pk)]
        )
        assert feedback.click_url(delivery.pk, url) == reverse(
            "tracking:click", args=[feedback.click_token(delivery.pk, url)]
        )
        assert feedback.unsubscribe_url(delivery.pk) == reverse(
            "tracking:unsubscribe", args=[feedback.unsubscribe_token(delivery.pk)]
        )
        assert feedback.open_url(delivery.pk).startswith(f"{script_prefix}t/o/")
    finally:
        set_script_prefix("/")


def test_the_open_link_written_into_a_message_records_the_open(client, delivery):
    response = client.get(feedback.open_url(delivery.pk))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.OPENED


def test_unsubscribe_get_only_asks_in_the_readers_language(client, delivery):
    response = client.get(feedback.unsubscribe_url(delivery.pk))

    assert response.status_code == 200
    assert response["Content-Language"] == "ja"
    assert b'method="post"' in response.content
    assert Consent.objects.get(customer=delivery.customer).status == "granted"


def test_unsubscribe_page_speaks_english_on_request(client, delivery):
    response = client.get(feedback.unsubscribe_url(delivery.pk) + "?lang=en")

    assert response["Content-Language"] == "en"
    assert b"Stop receiving these messages?" in response.content


def test_one_click_post_without_csrf_token_unsubscribes(delivery):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        feedback.unsubscribe_url(delivery.pk),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    consent = Consent.objects.get(customer=delivery.customer, channel="email")
    assert (consent.status, consent.source) == ("withdrawn", "one_click_unsubscribe")


def test_forged_unsubscribe_link_is_404_and_changes_nothing(client, delivery):
    token = tamper(feedback.unsubscribe_token(delivery.pk))
    response = client.post(reverse("tracking:unsubscribe", args=[token]))

    assert response.status_code == 404
    assert Consent.objects.get(customer=delivery.customer).status == "granted"


def test_public_links_need_no_login_and_show_no_personal_data(client, delivery):
    delivery.customer.family_name = "秘密"
    delivery.customer.save()

    response = client.get(feedback.unsubscribe_url(delivery.pk))

    assert response.status_code == 200
    assert "秘密".encode() not in response.content


def test_unsubscribe_from_a_received_email_stops_the_next_send(smtp_server, client):
    from journeys import engine

    campaign = CampaignFactory(
        status=Campaign.Status.RUNNING, holdout_percent=0, channel=Campaign.Channel.EMAIL
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    Variant.objects.create(
        step=step, label="A", content={"ja": {"subject": "お知らせ", "body": "こんにちは"}}
    )
    customer = CustomerFactory()
    IdentityFactory(customer=customer, value="hanako@example.jp")
    ConsentFactory(customer=customer, channel="email")

    def run(occurrence):
        engine.enroll_audience(
            campaign=campaign,
            customers=Customer.objects.filter(pk=customer.pk),
            occurrence=occurrence,
            entered_at=NOW,
        )
        engine.enrollments_advance(now=NOW, campaign_ids=[campaign.pk])
        return engine.deliveries_dispatch(now=NOW, campaign_ids=[campaign.pk])

    with override_settings(SITE_URL="https://circle.example.com"):
        run("r1")
        [received] = smtp_server.messages
        header = str(received.message["List-Unsubscribe"])
        path = re.search(r"<https://circle\.example\.com(/u/[^>]+)>", header).group(1)
        assert (
            client.post(
                path,
                data="List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            ).status_code
            == 200
        )
        run("r2")

    assert len(smtp_server.messages) == 1
    second = Delivery.objects.get(campaign=campaign, occurrence="r2")
    assert second.status == Delivery.Status.SUPPRESSED
