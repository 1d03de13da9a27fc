"""Consent law, proven end to end: Japan's Specified Electronic Mail Act (特定電子メール法)
and GDPR-style consent records.

- Advertising needs opt-in on every channel that carries it (email, SMS, LINE, push);
  transactional messages need none but still respect the suppression list.
- Every consent change, whatever the path, leaves a ConsentChange: source, time, actor.
- No file re-grants a consent the person withdrew (nor does a merge an import causes).
- Every advertising message names its sender and says how to opt out; email also carries
  RFC 2369/8058 headers. Checked on the wire (real local SMTP and HTTP servers).
- ``manage.py check --deploy`` refuses production without the sender's identity.
- A one-click unsubscribe posted between two batches stops the next batch and every other
  marketing campaign; a GET of the link only asks.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from customers.imports import (
    import_job_create,
    import_job_run_start,
    import_job_validate,
    import_job_validate_start,
    run_pending_import,
)
from customers.models import Consent, ConsentChange, Customer, ImportJob
from customers.selectors import preference_token
from customers.services import consent_set
from journeys import engine, feedback
from journeys.models import Campaign, CampaignStep, Delivery, Suppression, Variant
from tests.factories import CampaignFactory, CustomerFactory, IdentityFactory
from tests.journeys.test_channels import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp", "tasks_inline")]

NOW = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.UTC)  # noon in Tokyo: outside quiet hours
SITE = "https://circle.example.com"
SENDER = {
    "COMPANY_NAME": "花屋サークル株式会社",
    "COMPANY_ADDRESS": "〒100-0001 東京都千代田区千代田1-1",
    "SITE_URL": SITE,
}
ADVERTISING_CHANNELS = {
    # campaign channel: (identity kind, an address of that kind)
    "email": ("email", "hanako@example.jp"),
    "sms": ("phone", "09012345678"),
    "line": ("line", "U1234567890abcdef1234567890abcdef"),
    "push": ("app", "app-user-42"),
}
SENT = (Delivery.Status.SENT, Delivery.Status.UNCONFIRMED)


def make_campaign(*, channel="email", marketing=True, name="Spring sale", html=""):
    campaign = CampaignFactory(
        name=name,
        status=Campaign.Status.RUNNING,
        holdout_percent=0,
        channel=channel,
        is_marketing=marketing,
    )
    step = CampaignStep.objects.create(campaign=campaign, position=1)
    content = {"subject": f"{name}のお知らせ", "body": "春の新作が入荷しました。"}
    if html:
        content["html"] = html
    Variant.objects.create(step=step, label="A", content={"ja": content})
    return campaign


def person(*, kind="email", value="", consent: dict | None = None) -> Customer:
    """A customer with one identifier and the given consents (written with history)."""
    customer = CustomerFactory(language="ja")
    IdentityFactory(customer=customer, kind=kind, value=value or f"p{customer.pk}@example.jp")
    for channel, status in (consent or {}).items():
        consent_set(customer=customer, channel=channel, status=status, source="signup_form")
    return customer


def enrol(campaign, people, *, occurrence="r1", now=NOW) -> None:
    engine.enroll_audience(
        campaign=campaign,
        customers=Customer.objects.filter(pk__in=[p.pk for p in people]),
        occurrence=occurrence,
        entered_at=now,
    )
    engine.enrollments_advance(now=now, campaign_ids=[campaign.pk])


def run(campaign, people, *, occurrence="r1", now=NOW):
    enrol(campaign, people, occurrence=occurrence, now=now)
    return engine.deliveries_dispatch(now=now, campaign_ids=[campaign.pk])


def outcome(customer, campaign) -> tuple[str, str]:
    delivery = Delivery.objects.get(customer=customer, campaign=campaign)
    return delivery.status, delivery.reason


def import_csv(text: str, *, department, by) -> ImportJob:
    """The real import path: upload, validate, run (tasks run synchronously)."""
    job = import_job_create(
        file=io.BytesIO(text.encode()),
        original_name="members.csv",
        kind="customers",
        source="pos",
        department=department,
        by=by,
    )
    job = import_job_validate_start(job=job, mapping=job.mapping, by=by, queue=False)
    job = import_job_validate(job_id=job.pk)
    assert job.status == ImportJob.Status.VALID, list(job.row_errors.values_list("reason"))
    job = import_job_run_start(job=job, skip_invalid_rows=False, by=by, queue=False)
    return run_pending_import(job=job)


def latest_change(customer, channel="email") -> ConsentChange:
    return ConsentChange.objects.filter(
        consent__customer=customer, consent__channel=channel
    ).latest("changed_at", "pk")


def post_preferences(client, customer, **ticked) -> None:
    token = preference_token(customer)
    url = reverse("customers:preferences_consents", args=[token])
    response = client.post(url, {channel: "on" for channel, on in ticked.items() if on})
    assert response.status_code == 302


def one_click(delivery_id: int):
    """What a mail client sends for RFC 8058: a POST without cookies or CSRF token."""
    return Client(enforce_csrf_checks=True).post(
        feedback.unsubscribe_url(delivery_id),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )


# --- opt-in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(ADVERTISING_CHANNELS))
def test_advertising_reaches_only_people_who_opted_in_on_that_channel(channel, settings):
    settings.CAMPAIGN_TRANSPORT = "fake"
    kind, _value = ADVERTISING_CHANNELS[channel]
    other = "sms" if channel != "sms" else "email"

    def someone(n, consent):
        return person(kind=kind, value=f"{kind}-{channel}-{n}", consent=consent)

    opted_in = someone(1, {channel: "granted"})
    withdrawn = someone(2, {channel: "withdrawn"})
    never_asked = someone(3, {})
    other_channel_only = someone(4, {other: "granted"})
    campaign = make_campaign(channel=channel)

    run(campaign, [opted_in, withdrawn, never_asked, other_channel_only])

    assert outcome(opted_in, campaign)[0] == Delivery.Status.SENT
    for nobody in (withdrawn, never_asked, other_channel_only):
        assert outcome(nobody, campaign) == (Delivery.Status.SUPPRESSED, engine.REASON_NO_CONSENT)


def test_transactional_email_needs_no_consent_but_respects_the_suppression_list():
    withdrawn = person(consent={"email": "withdrawn"})
    never_asked = person()
    bounced = person(consent={"email": "granted"})
    Suppression.objects.create(channel="email", value=f"p{bounced.pk}@example.jp", reason="bounce")
    receipt = make_campaign(name="Order receipt", marketing=False)

    run(receipt, [withdrawn, never_asked, bounced])

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [f"p{withdrawn.pk}@example.jp", f"p{never_asked.pk}@example.jp"]
    )
    assert outcome(bounced, receipt) == (Delivery.Status.SUPPRESSED, engine.REASON_SUPPRESSED)
    # A transactional message carries no unsubscribe line (it is not advertising).
    assert "To stop receiving" not in mail.outbox[0].body


# --- every path leaves a consent record -------------------------------------------------------


def test_every_way_consent_changes_is_recorded_with_source_time_and_actor(
    client, api, crm, crm_editor, crm_manager
):
    started = timezone.now()
    hanako = person(value="hanako@example.jp")
    history: list[tuple[str, str, object]] = []

    def expect(status, source, actor):
        change = latest_change(hanako)
        assert (change.status, change.source, change.changed_by) == (status, source, actor)
        assert started <= change.changed_at <= timezone.now()
        history.append((status, source, actor))

    import_csv("メールアドレス,メール配信\nhanako@example.jp,1\n", department=crm, by=crm_editor)
    expect("granted", "pos", crm_editor)

    campaign = make_campaign()
    run(campaign, [hanako])
    delivery = Delivery.objects.get(customer=hanako)
    response = client.post(feedback.unsubscribe_url(delivery.pk), {"via": "page"})
    assert response.status_code == 200
    expect("withdrawn", "unsubscribe", None)

    api.force_authenticate(crm_editor)
    response = api.post(
        f"/api/v1/customers/{hanako.pk}/consents/",
        {"channel": "email", "status": "granted", "source": "store_counter"},
        format="json",
    )
    assert response.status_code == 200, response.content
    expect("granted", "store_counter", crm_editor)

    assert one_click(delivery.pk).status_code == 200
    expect("withdrawn", "one_click_unsubscribe", None)

    post_preferences(client, hanako, email=True)
    expect("granted", "preference_centre", None)

    consent_set(customer=hanako, channel="email", status="withdrawn", source="staff", by=crm_editor)
    expect("withdrawn", "staff", crm_editor)

    # Every change is kept, oldest first, and the current row agrees with the newest.
    changes = ConsentChange.objects.filter(consent__customer=hanako).order_by("changed_at", "pk")
    assert [(c.status, c.source, c.changed_by) for c in changes] == history
    consent = Consent.objects.get(customer=hanako, channel="email")
    assert (consent.status, consent.source) == ("withdrawn", "staff")

    privacy = pytest.importorskip("customers.privacy")
    if not hasattr(privacy, "subject_erase"):
        pytest.skip("customers.privacy.subject_erase is not there yet")
    post_preferences(client, hanako, email=True, sms=True)
    privacy.subject_erase(customer=hanako, by=crm_manager, reason="request by phone")
    for channel in ("email", "sms"):
        change = latest_change(hanako, channel)
        assert (change.status, change.changed_by) == ("withdrawn", crm_manager)
        assert change.source
        assert started <= change.changed_at <= timezone.now()


# --- imports never re-grant a withdrawal --------------------------------------------------------


def test_an_import_never_regrants_a_consent_the_person_withdrew(client, crm, crm_editor):
    hanako = person(value="hanako@example.jp", consent={"email": "granted"})
    campaign = make_campaign()
    run(campaign, [hanako], occurrence="week-1")
    assert one_click(Delivery.objects.get(customer=hanako).pk).status_code == 200

    job = import_csv(
        "メールアドレス,メール配信\nhanako@example.jp,1\nnew@example.jp,1\n",
        department=crm,
        by=crm_editor,
    )

    consent = Consent.objects.get(customer=hanako, channel="email")
    assert (consent.status, consent.source) == ("withdrawn", "one_click_unsubscribe")
    counts = job.result["counts"]
    assert (counts["consents_kept"], counts["consents_changed"]) == (1, 1)
    run(campaign, [hanako], occurrence="week-2")
    assert len(mail.outbox) == 1  # only week 1's message

    # Only the person's own action grants again; after that a file may withdraw.
    post_preferences(client, hanako, email=True)
    import_csv("メールアドレス,メール配信\nhanako@example.jp,0\n", department=crm, by=crm_editor)
    assert Consent.objects.get(customer=hanako, channel="email").status == "withdrawn"


def test_a_merge_caused_by_an_import_does_not_regrant_a_withdrawal(client, crm, crm_editor):
    """Mautic's classic failure, one step removed: the person unsubscribes on their email
    profile; a later shop export opted in their phone profile; the next file links both."""
    by_email = person(value="hanako@example.jp", consent={"email": "granted"})
    campaign = make_campaign()
    run(campaign, [by_email], occurrence="week-1")
    assert one_click(Delivery.objects.get(customer=by_email).pk).status_code == 200
    import_csv("電話番号,メール配信\n090-1234-5678,1\n", department=crm, by=crm_editor)
    by_phone = Customer.objects.get(identities__value="+819012345678")
    assert Consent.objects.get(customer=by_phone, channel="email").status == "granted"

    import_csv(
        "メールアドレス,電話番号\nhanako@example.jp,090-1234-5678\n", department=crm, by=crm_editor
    )

    merged = Customer.objects.filter(merged_into__isnull=True, pk__in=[by_email.pk, by_phone.pk])
    [survivor] = merged
    assert Consent.objects.get(customer=survivor, channel="email").status == "withdrawn"
    run(campaign, [survivor], occurrence="week-2")
    assert len(mail.outbox) == 1

    # The person's own newer grant wins, on the merged profile as anywhere.
    post_preferences(client, survivor, email=True)
    run(campaign, [survivor], occurrence="week-3")
    assert len(mail.outbox) == 2


# --- sender identity and opt-out in every advertising message ----------------------------------


@override_settings(**SENDER, CAMPAIGN_UNSUBSCRIBE_MAILTO="unsubscribe@circle.example.com")
@pytest.mark.parametrize("own_html", [False, True], ids=["text-only", "own-html"])
def test_every_marketing_email_names_the_sender_and_offers_unsubscribe(smtp_server, own_html):
    html = "<h1>春の新作</h1><p><a href='https://shop.example.jp/new'>見る</a></p>"
    campaign = make_campaign(html=html if own_html else "")
    people = [person(consent={"email": "granted"}) for _ in range(2)]

    run(campaign, people)

    assert len(smtp_server.messages) == 2
    for received in smtp_server.messages:
        [to] = received.rcpt_tos
        delivery = Delivery.objects.get(address=to)
        unsubscribe = feedback.unsubscribe_url(delivery.pk)
        assert unsubscribe.startswith(f"{SITE}/u/")
        for part in (received.text, received.html):
            assert SENDER["COMPANY_NAME"] in part
            assert SENDER["COMPANY_ADDRESS"] in part
            assert unsubscribe in part
        header = str(received.message["List-Unsubscribe"])
        assert f"<{unsubscribe}>" in header
        assert "<mailto:unsubscribe@circle.example.com?subject=unsubscribe-" in header
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("channel", ["sms", "line", "push"])
def test_short_channel_advertising_names_the_sender_and_carries_an_opt_out_link(channel):
    kind, value = ADVERTISING_CHANNELS[channel]
    customer = person(kind=kind, value=value, consent={channel: "granted"})
    campaign = make_campaign(channel=channel)
    receipt = make_campaign(channel=channel, marketing=False, name="Order receipt")
    provider = {"sms": "CHANNEL_WEBHOOK_SMS", "line": "CHANNEL_WEBHOOK_LINE"}.get(
        channel, "CHANNEL_WEBHOOK_PUSH"
    )
    with (
        Receiver() as receiver,
        override_settings(**SENDER, WEBHOOK_SIGNING_SECRET="s3cret", **{provider: receiver.url}),
    ):
        run(campaign, [customer])
        run(receipt, [customer])
        unsubscribe = feedback.unsubscribe_url(Delivery.objects.get(campaign=campaign).pk)

    by_campaign = {p["campaign_id"]: p for p in (json.loads(r["body"]) for r in receiver.requests)}
    advert, transactional = by_campaign[campaign.pk], by_campaign[receipt.pk]
    assert advert["to"] == value
    assert SENDER["COMPANY_NAME"] in advert["body_text"]
    assert unsubscribe in advert["body_text"]
    assert unsubscribe not in transactional["body_text"]
    # The opt-out link works like the email one (it stops this channel's advertising).
    assert one_click(Delivery.objects.get(campaign=campaign).pk).status_code == 200
    assert Consent.objects.get(customer=customer, channel=channel).status == "withdrawn"


# --- the deploy check -------------------------------------------------------------------------


def sender_errors() -> dict[str, str]:
    return {
        message.id: message.msg
        for message in run_checks(include_deployment_checks=True, tags=["compliance"])
    }


def test_deploy_check_requires_sender_identity_when_debug_is_off():
    with override_settings(DEBUG=False, **SENDER):
        assert sender_errors() == {}
    with override_settings(DEBUG=False, **{**SENDER, "COMPANY_ADDRESS": " "}):
        errors = sender_errors()
        assert list(errors) == ["journeys.E002"]
        assert errors["journeys.E002"].startswith("COMPANY_ADDRESS is empty")
    with override_settings(DEBUG=False, COMPANY_NAME="", COMPANY_ADDRESS="", SITE_URL=""):
        assert sorted(sender_errors()) == ["journeys.E001", "journeys.E002", "journeys.E003"]
        with pytest.raises(SystemCheckError, match="COMPANY_NAME is empty"):
            call_command("check", deploy=True, tags=["compliance"])
    with override_settings(DEBUG=True, COMPANY_NAME="", COMPANY_ADDRESS="", SITE_URL=""):
        assert sender_errors() == {}


# --- one-click between batches -----------------------------------------------------------------


@override_settings(**SENDER)
def test_one_click_between_batches_stops_the_next_batch_and_every_other_campaign(smtp_server):
    people = [person(consent={"email": "granted"}) for _ in range(4)]
    _first, _second, late, later = people
    newsletter = make_campaign(name="Newsletter")
    last_week = make_campaign(name="Last week")
    run(last_week, [late], occurrence="last-week", now=NOW - dt.timedelta(days=7))
    late_link = feedback.unsubscribe_url(Delivery.objects.get(campaign=last_week).pk)
    enrol(newsletter, people)
    # The campaign goes out in batches of two: the second batch is due ten minutes later.
    Delivery.objects.filter(campaign=newsletter, customer__in=[late, later]).update(
        due_at=NOW + dt.timedelta(minutes=10)
    )
    assert len(smtp_server.messages) == 1

    batch_1 = engine.deliveries_dispatch(now=NOW, campaign_ids=[newsletter.pk], batch_size=2)
    assert (batch_1.batches, batch_1.sent) == (1, 2)

    # A mail scanner (or the person) opening the link changes nothing: GET only asks.
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(late_link)
    assert page.status_code == 200
    assert b'method="post"' in page.content
    assert Consent.objects.get(customer=late, channel="email").status == "granted"
    # The RFC 8058 POST: no login, no cookie, no CSRF token.
    response = anonymous.post(
        late_link,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200

    batch_2 = engine.deliveries_dispatch(
        now=NOW + dt.timedelta(minutes=10), campaign_ids=[newsletter.pk], batch_size=2
    )
    assert batch_2.sent == 1
    assert outcome(late, newsletter) == (Delivery.Status.SUPPRESSED, engine.REASON_NO_CONSENT)
    assert outcome(later, newsletter)[0] == Delivery.Status.SENT

    flash_sale = make_campaign(name="Flash sale")
    receipt = make_campaign(name="Order receipt", marketing=False)
    run(flash_sale, people, now=NOW + dt.timedelta(hours=1))
    run(receipt, [late], now=NOW + dt.timedelta(hours=1))
    assert outcome(late, flash_sale) == (Delivery.Status.SUPPRESSED, engine.REASON_NO_CONSENT)
    assert outcome(late, receipt)[0] == Delivery.Status.SENT  # transactional mail still goes
    late_address = f"p{late.pk}@example.jp"
    advertising_to_late = [
        m
        for m in smtp_server.messages
        if m.rcpt_tos == [late_address] and not re.search("Order receipt", m.message["Subject"])
    ]
    assert len(advertising_to_late) == 1  # only last week's, before the unsubscribe
    assert Delivery.objects.filter(status__in=SENT, customer=late).count() == 2
