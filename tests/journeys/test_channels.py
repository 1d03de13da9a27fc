"""Channel adapters against real local servers: SMTP (aiosmtpd) and HTTP (webhooks)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings
from django.utils import timezone

from config.spreadsheets import csv_text
from journeys import channels, feedback
from journeys.channels import (
    FAKE_SENT,
    OutgoingMessage,
    direct_mail_csv,
    fake_outbox_read,
    get_adapter,
    webhook_verify,
)
from journeys.models import Campaign, StaffTask
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    IdentityFactory,
    TouchpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SITE = "https://circle.example.com"
SECRET = "test-signing-secret"


def message(delivery, *, address="", subject="件名", body="本文", html=""):
    return OutgoingMessage(
        delivery_id=delivery.pk,
        campaign_id=delivery.campaign_id,
        step_id=delivery.step_id,
        customer_id=delivery.customer_id,
        address=address or delivery.address,
        language="ja",
        subject=subject,
        body_text=body,
        body_html=html,
    )


def deliveries(n, *, channel=Campaign.Channel.EMAIL, **campaign):
    step = CampaignStepFactory(campaign=CampaignFactory(channel=channel, **campaign))
    return [
        DeliveryFactory(step=step, customer=CustomerFactory(), status="sending") for _ in range(n)
    ]


# --- email --------------------------------------------------------------------------------


@override_settings(
    SITE_URL=SITE,
    CAMPAIGN_UNSUBSCRIBE_MAILTO="unsubscribe@circle.example.com",
    CAMPAIGN_FROM_EMAIL="花屋 <news@circle.example.com>",
)
def test_email_batch_reaches_the_smtp_server_with_its_headers(smtp_server):
    rows = deliveries(3)
    smtp_server.refuse("bounce@example.jp")
    batch = [
        message(rows[0], address="a@example.jp", subject="春のご案内 🌸 山田様"),
        message(rows[1], address="bounce@example.jp"),
        message(rows[2], address="c@example.jp", html="<p>本文</p>"),
    ]

    results = get_adapter("email").send(batch)

    assert [(r.delivery_id, r.ok, r.retryable) for r in results] == [
        (rows[0].pk, True, False),
        (rows[1].pk, False, False),
        (rows[2].pk, True, False),
    ]
    assert "refused" in results[1].error
    assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.jp"], ["c@example.jp"]]
    first, third = smtp_server.messages
    assert first.message["Message-ID"] == f"<delivery-{rows[0].pk}@circle.example.com>"
    assert str(first.message["Subject"]) == "春のご案内 🌸 山田様"
    assert b"=?utf-8?" in first.raw.split(b"\r\n\r\n", 1)[0].lower()  # encoded on the wire
    unsubscribe = feedback.unsubscribe_url(rows[0].pk)
    assert str(first.message["List-Unsubscribe"]).strip().startswith(f"<{unsubscribe}>, <mailto:")
    assert "unsubscribe@circle.example.com?subject=unsubscribe-" in str(
        first.message["List-Unsubscribe"]
    )
    assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.mail_from == "news@circle.example.com"
    assert first.text.strip() == "本文"
    assert first.html is None
    assert third.html.strip() == "<p>本文</p>"


def test_email_without_server_reports_retryable_failures():
    rows = deliveries(2)
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=channels_free_port(),
        EMAIL_TIMEOUT=2,
    ):
        results = get_adapter("email").send([message(r, address="x@example.jp") for r in rows])

    assert [(r.ok, r.retryable) for r in results] == [(False, True), (False, True)]


def channels_free_port():
    from tests.journeys.smtp import free_port

    return free_port()


def test_email_addresses_come_from_email_identities():
    with_email, without = CustomerFactory(), CustomerFactory()
    IdentityFactory(customer=with_email, value="hanako@example.jp")

    assert get_adapter("email").addresses([with_email.pk, without.pk]) == {
        with_email.pk: "hanako@example.jp"
    }


# --- webhooks -----------------------------------------------------------------------------


class Receiver:
    """A local HTTP endpoint answering a scripted sequence of status codes."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(channels, "BACKOFF_SECONDS", 0.01)


@override_settings(WEBHOOK_SIGNING_SECRET=SECRET)
def test_webhook_posts_signed_json_with_an_idempotency_key():
    with Receiver() as receiver:
        [row] = deliveries(1, channel=Campaign.Channel.WEBHOOK, webhook_url=receiver.url)
        [result] = get_adapter("webhook").send([message(row, address="uuid-1")])

    assert result.ok
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["Idempotency-Key"] == f"delivery-{row.pk}"
    assert webhook_verify(
        SECRET, headers["X-Circle-Timestamp"], body, headers["X-Circle-Signature"]
    )
    assert not webhook_verify(
        "other", headers["X-Circle-Timestamp"], body, headers["X-Circle-Signature"]
    )
    payload = json.loads(body)
    assert payload["delivery_id"] == row.pk
    assert (payload["to"], payload["subject"], payload["body_text"]) == ("uuid-1", "件名", "本文")


@override_settings(WEBHOOK_SIGNING_SECRET=SECRET, WEBHOOK_ATTEMPTS=3)
def test_webhook_retries_503_with_the_same_key_then_succeeds():
    with Receiver([503, 503, 200]) as receiver:
        [row] = deliveries(1, channel=Campaign.Channel.WEBHOOK, webhook_url=receiver.url)
        [result] = get_adapter("webhook").send([message(row)])

    assert result.ok
    assert len(receiver.requests) == 3
    assert {r["headers"]["Idempotency-Key"] for r in receiver.requests} == {f"delivery-{row.pk}"}


@override_settings(WEBHOOK_SIGNING_SECRET=SECRET, WEBHOOK_ATTEMPTS=3)
def test_webhook_does_not_retry_a_400_and_gives_up_on_persistent_5xx():
    with Receiver([400, 500, 500, 500]) as receiver:
        rows = deliveries(1, channel=Campaign.Channel.WEBHOOK, webhook_url=receiver.url)
        [bad] = get_adapter("webhook").send([message(rows[0])])
        assert len(receiver.requests) == 1
        [down] = get_adapter("webhook").send([message(rows[0])])

    assert (bad.ok, bad.retryable, bad.error) == (False, False, "HTTP 400")
    assert (down.ok, down.retryable, down.error) == (False, True, "HTTP 500")
    assert len(receiver.requests) == 4


def test_webhook_refuses_to_send_unsigned():
    [row] = deliveries(1, channel=Campaign.Channel.WEBHOOK, webhook_url="http://127.0.0.1:9/")
    with override_settings(WEBHOOK_SIGNING_SECRET=""):
        [result] = get_adapter("webhook").send([message(row)])
    assert not result.ok
    assert "WEBHOOK_SIGNING_SECRET" in result.error


def test_sms_goes_to_the_provider_url_from_settings():
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value="09012345678")
    with (
        Receiver() as receiver,
        override_settings(WEBHOOK_SIGNING_SECRET=SECRET, CHANNEL_WEBHOOK_SMS=receiver.url),
    ):
        adapter = get_adapter("sms")
        [row] = deliveries(1, channel=Campaign.Channel.SMS)
        address = adapter.addresses([customer.pk])[customer.pk]
        [result] = adapter.send([message(row, address=address)])

    assert result.ok
    assert json.loads(receiver.requests[0]["body"])["to"] == "09012345678"


def test_line_without_a_provider_url_fails_clearly():
    [row] = deliveries(1, channel=Campaign.Channel.LINE)
    with override_settings(WEBHOOK_SIGNING_SECRET=SECRET, CHANNEL_WEBHOOK_LINE=""):
        [result] = get_adapter("line").send([message(row)])
    assert (result.ok, result.retryable) == (False, False)
    assert "CHANNEL_WEBHOOK_LINE" in result.error


# --- staff tasks and direct mail -----------------------------------------------------------


def test_staff_task_is_created_once_per_delivery(crm):
    salesperson = UserFactory()
    store = TouchpointFactory()
    rows = deliveries(
        2,
        channel=Campaign.Channel.STAFF_TASK,
        owner_department=crm,
        task_assignee=salesperson,
        task_store=store,
    )
    batch = [message(r, subject="Visit", body="Bring the catalogue") for r in rows]
    adapter = get_adapter("staff_task")

    assert adapter.atomic
    assert all(r.ok for r in adapter.send(batch))
    assert all(r.ok for r in adapter.send(batch))  # a replay creates nothing

    tasks = StaffTask.objects.order_by("delivery_id")
    assert tasks.count() == 2
    task = tasks[0]
    assert (task.department, task.assignee, task.store) == (crm, salesperson, store)
    assert (task.title, task.instructions, task.customer_id) == (
        "Visit",
        "Bring the catalogue",
        rows[0].customer_id,
    )
    assert task.due_at > timezone.now() + dt.timedelta(days=6)


def test_direct_mail_csv_neutralises_formulas():
    customer = CustomerFactory(
        family_name='=HYPERLINK("http://evil")',
        given_name="+81",
        postal_code="100-0001",
        prefecture="東京都",
        city="千代田区",
        attributes={"address_line": "@千代田1-1"},
    )
    [row] = deliveries(1, channel=Campaign.Channel.DIRECT_MAIL)
    row.customer = customer
    row.sent_at = timezone.now()
    row.save()
    holdout = DeliveryFactory(step=row.step, status="holdout")

    text = csv_text(direct_mail_csv(row.campaign))
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))

    assert rows[0][:4] == ["delivery_id", "customer_uuid", "family_name", "given_name"]
    assert len(rows) == 2
    data = dict(zip(rows[0], rows[1], strict=True))
    assert data["family_name"] == '\'=HYPERLINK("http://evil")'
    assert data["given_name"] == "'+81"
    assert data["address_line"] == "'@千代田1-1"
    assert data["postal_code"] == "100-0001"
    assert str(holdout.pk) not in [r[0] for r in rows]
    assert get_adapter("dm").addresses([customer.pk]) == {
        customer.pk: "〒100-0001 東京都千代田区@千代田1-1"
    }


# --- the fake -----------------------------------------------------------------------------


def test_fake_transport_swaps_every_channel_and_writes_an_outbox(tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    rows = deliveries(2)
    with override_settings(CAMPAIGN_TRANSPORT="fake", CAMPAIGN_FAKE_OUTBOX=str(outbox)):
        adapter = get_adapter("email")
        adapter.send([message(r, address="x@example.jp") for r in rows])
        adapter.send([message(rows[0], address="x@example.jp")])
        staff = get_adapter("staff_task")
        assert staff.send([message(rows[1])])[0].ok

    assert FAKE_SENT[rows[0].pk] >= 2
    received, repeats = fake_outbox_read(str(outbox))
    assert received == {rows[0].pk, rows[1].pk}
    assert repeats == 2
    assert not StaffTask.objects.exists()


def test_unknown_channel_is_an_error():
    with pytest.raises(ValueError, match="unknown channel"):
        get_adapter("pigeon")
