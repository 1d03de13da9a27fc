"""Channel adapters: how a claimed delivery leaves the building, one batch at a time.

Every adapter answers ``addresses(customer_ids)`` (who can be reached, and where) and
``send(messages) -> [SendResult]`` with one result per message, so one bad address never
fails its batch. Two flags tell the dispatcher how to treat a crash mid-send:

- ``atomic``: the send is a database write (staff task, direct mail); the dispatcher runs
  it inside the claim transaction, so it happened exactly when the delivery is marked.
- ``idempotent``: the receiver drops a repeat of the same ``Idempotency-Key:
  delivery-{id}`` (webhook and the providers behind SMS/LINE/push), so a delivery found in
  ``sending`` after a crash may be sent again. Email is neither: it carries
  ``Message-ID: <delivery-{id}@host>`` but SMTP servers do not deduplicate, so the
  reconciler marks such deliveries ``unconfirmed`` instead of resending.

``CAMPAIGN_TRANSPORT=fake`` swaps every channel's ``send`` for :class:`FakeTransport`
(addresses still come from the real adapter): nothing leaves the machine, the process
keeps a per-delivery count (``FAKE_SENT``) and, with ``CAMPAIGN_FAKE_OUTBOX``, appends one
JSON line per message to that file, which survives a killed worker for the fault test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from email.utils import parseaddr
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from journeys import feedback
from journeys.models import Campaign, Delivery, StaffTask

log = logging.getLogger(__name__)

WEBHOOK_CONCURRENCY = 8
BACKOFF_SECONDS = 0.5
RETRYABLE_HTTP = frozenset({408, 425, 429})


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    campaign_id: int
    step_id: int
    customer_id: int
    address: str
    language: str
    subject: str
    body_text: str
    body_html: str = ""
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    ok: bool
    error: str = ""
    retryable: bool = False


def outgoing_message(*, delivery: Delivery, rendered) -> OutgoingMessage:
    """The message for a delivery and its rendered content (``content.render_message``)."""
    return OutgoingMessage(
        delivery_id=delivery.pk,
        campaign_id=delivery.campaign_id,
        step_id=delivery.step_id,
        customer_id=delivery.customer_id,
        address=delivery.address,
        language=rendered.language,
        subject=rendered.subject,
        body_text=rendered.body_text,
        body_html=rendered.body_html,
    )


class ChannelAdapter:
    """Base of the adapters; see the module docstring for the contract."""

    code: str = ""
    atomic: bool = False
    idempotent: bool = False
    identity_kind: str = ""
    """The identifier kind its addresses are (blank: none, e.g. a postal or staff channel)."""

    def addresses(self, customer_ids: Iterable[int]) -> dict[int, str]:
        raise NotImplementedError

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        raise NotImplementedError


def _identity_addresses(customer_ids: Iterable[int], kind: str) -> dict[int, str]:
    """Each customer's most recently seen identifier of ``kind``: one query per 1,000."""
    from customers.models import Identity

    ids = list(customer_ids)
    found: dict[int, str] = {}
    for start in range(0, len(ids), 1000):
        rows = (
            Identity.objects.filter(customer_id__in=ids[start : start + 1000], kind=kind)
            .order_by("customer_id", "-last_seen_at", "-pk")
            .values_list("customer_id", "value")
        )
        for customer_id, value in rows:
            found.setdefault(customer_id, value)
    return found


# --- email ------------------------------------------------------------------------------------


def _message_id_domain() -> str:
    host = urlsplit(settings.SITE_URL).hostname if settings.SITE_URL else ""
    if not host:
        address = parseaddr(settings.CAMPAIGN_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL)[1]
        host = address.rpartition("@")[2]
    return host or "localhost"


def list_unsubscribe_headers(delivery_id: int) -> dict[str, str]:
    """RFC 2369 / 8058 headers: the one-click HTTPS URL (needs ``SITE_URL``) and a mailto."""
    targets = []
    if settings.SITE_URL:
        targets.append(f"<{feedback.unsubscribe_url(delivery_id)}>")
    if settings.CAMPAIGN_UNSUBSCRIBE_MAILTO:
        token = quote(feedback.unsubscribe_token(delivery_id), safe="")
        targets.append(
            f"<mailto:{settings.CAMPAIGN_UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{token}>"
        )
    if not targets:
        return {}
    headers = {"List-Unsubscribe": ", ".join(targets)}
    if settings.SITE_URL:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


class EmailAdapter(ChannelAdapter):
    """Django's email backend (SMTP in production), one connection per batch."""

    code = Campaign.Channel.EMAIL
    identity_kind = "email"

    def addresses(self, customer_ids):
        return _identity_addresses(customer_ids, self.identity_kind)

    def build(self, message: OutgoingMessage, connection=None) -> EmailMultiAlternatives:
        domain = _message_id_domain()
        headers = {
            "Message-ID": f"<delivery-{message.delivery_id}@{domain}>",
            **list_unsubscribe_headers(message.delivery_id),
            **message.headers,
        }
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body_text,
            from_email=settings.CAMPAIGN_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
            to=[message.address],
            headers=headers,
            connection=connection,
        )
        if message.body_html:
            email.attach_alternative(message.body_html, "text/html")
        return email

    def send(self, messages):
        results: list[SendResult] = []
        if not messages:
            return results
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as exc:
            error = f"mail server unreachable: {exc}"
            return [SendResult(m.delivery_id, False, error, retryable=True) for m in messages]
        try:
            for message in messages:
                results.append(self._send_one(connection, message))
        finally:
            try:
                connection.close()
            except (OSError, smtplib.SMTPException):
                log.warning("closing the mail connection failed", exc_info=True)
        return results

    def _send_one(self, connection, message: OutgoingMessage) -> SendResult:
        if not message.address:
            return SendResult(message.delivery_id, False, "no email address")
        try:
            sent = connection.send_messages([self.build(message, connection)])
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(message.delivery_id, False, f"recipient refused: {exc}"[:500])
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                message.delivery_id,
                False,
                f"{exc.smtp_code} {exc.smtp_error!r}"[:500],
                retryable=400 <= exc.smtp_code < 500,
            )
        except (OSError, smtplib.SMTPException) as exc:
            # The connection broke: reopen it for the rest of the batch.
            try:
                connection.close()
                connection.open()
            except (OSError, smtplib.SMTPException):
                log.warning("reopening the mail connection failed", exc_info=True)
            return SendResult(message.delivery_id, False, f"{exc}"[:500], retryable=True)
        except ValueError as exc:  # a malformed address or header
            return SendResult(message.delivery_id, False, f"{exc}"[:500])
        if not sent:
            return SendResult(message.delivery_id, False, "not accepted", retryable=True)
        return SendResult(message.delivery_id, True)


# --- webhooks -------------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def webhook_verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant time); also reject old timestamps there."""
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature or "")


def _post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class WebhookAdapter(ChannelAdapter):
    """Signed JSON POSTs, retried with backoff on 5xx and connection errors (not on 4xx).

    Body: the message as JSON. Headers: ``X-Circle-Timestamp`` (Unix seconds),
    ``X-Circle-Signature`` (:func:`webhook_signature`), ``Idempotency-Key: delivery-{id}``
    — the same on every retry and on a resend after a crash, so receivers drop repeats.
    The campaign's ``webhook_url`` is the endpoint; ``setting`` names the provider URL for
    the SMS/LINE/push subclasses.
    """

    code = Campaign.Channel.WEBHOOK
    idempotent = True
    setting = ""

    def addresses(self, customer_ids):
        from customers.models import Customer

        ids = list(customer_ids)
        found = {}
        for start in range(0, len(ids), 1000):
            found.update(
                (pk, str(uuid))
                for pk, uuid in Customer.objects.filter(
                    pk__in=ids[start : start + 1000]
                ).values_list("pk", "uuid")
            )
        return found

    def endpoints(self, messages) -> dict[int, str]:
        """Campaign id → URL, one query."""
        ids = {m.campaign_id for m in messages}
        return dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "webhook_url"))

    def payload(self, message: OutgoingMessage) -> dict:
        return {
            "delivery_id": message.delivery_id,
            "campaign_id": message.campaign_id,
            "step_id": message.step_id,
            "channel": self.code,
            "to": message.address,
            "language": message.language,
            "subject": message.subject,
            "body_text": message.body_text,
            "body_html": message.body_html,
        }

    def send(self, messages):
        if not messages:
            return []
        secret = settings.WEBHOOK_SIGNING_SECRET
        if not secret:
            error = "WEBHOOK_SIGNING_SECRET is not set"
            return [SendResult(m.delivery_id, False, error) for m in messages]
        urls = self.endpoints(messages)

        def one(message: OutgoingMessage) -> SendResult:
            url = urls.get(message.campaign_id) or ""
            if urlsplit(url).scheme not in ("http", "https"):
                where = self.setting or "the campaign's webhook URL"
                return SendResult(message.delivery_id, False, f"no endpoint configured ({where})")
            return self.post(url, message, secret=secret)

        if len(messages) == 1:
            return [one(messages[0])]
        with ThreadPoolExecutor(max_workers=min(WEBHOOK_CONCURRENCY, len(messages))) as pool:
            return list(pool.map(one, messages))

    def post(self, url: str, message: OutgoingMessage, *, secret: str) -> SendResult:
        body = json.dumps(self.payload(message), ensure_ascii=False, separators=(",", ":"))
        body_bytes = body.encode()
        attempts = max(1, settings.WEBHOOK_ATTEMPTS)
        error = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "CustomerCircle-Campaigns/1",
                "X-Circle-Timestamp": timestamp,
                "X-Circle-Signature": webhook_signature(secret, timestamp, body_bytes),
                "Idempotency-Key": f"delivery-{message.delivery_id}",
                **message.headers,
            }
            try:
                status = _post(url, body_bytes, headers, timeout=settings.WEBHOOK_TIMEOUT)
            except (TimeoutError, OSError) as exc:
                error = f"connection failed: {getattr(exc, 'reason', exc)}"
                continue
            if 200 <= status < 300:
                return SendResult(message.delivery_id, True)
            error = f"HTTP {status}"
            if status < 500 and status not in RETRYABLE_HTTP:
                return SendResult(message.delivery_id, False, error, retryable=False)
        return SendResult(message.delivery_id, False, error[:500], retryable=True)


class ProviderAdapter(WebhookAdapter):
    """SMS, LINE and push through a provider endpoint from settings, same signed format."""

    def addresses(self, customer_ids):
        return _identity_addresses(customer_ids, self.identity_kind)

    def endpoints(self, messages):
        url = getattr(settings, self.setting, "")
        return {m.campaign_id: url for m in messages}


class SmsAdapter(ProviderAdapter):
    code = Campaign.Channel.SMS
    setting = "CHANNEL_WEBHOOK_SMS"
    identity_kind = "phone"


class LineAdapter(ProviderAdapter):
    code = Campaign.Channel.LINE
    setting = "CHANNEL_WEBHOOK_LINE"
    identity_kind = "line"


class PushAdapter(ProviderAdapter):
    code = Campaign.Channel.PUSH
    setting = "CHANNEL_WEBHOOK_PUSH"
    identity_kind = "app"


# --- offline channels -----------------------------------------------------------------------


class StaffTaskAdapter(ChannelAdapter):
    """Each message becomes a task for the campaign's assignee or store.

    Atomic: the dispatcher calls it inside the claim transaction; a replay creates nothing
    (one task per delivery, ``ON CONFLICT DO NOTHING``).
    """

    code = Campaign.Channel.STAFF_TASK
    atomic = True
    idempotent = True

    def addresses(self, customer_ids):
        return {int(pk): "" for pk in customer_ids}

    def send(self, messages):
        if not messages:
            return []
        campaigns = {
            c.pk: c
            for c in Campaign.objects.filter(pk__in={m.campaign_id for m in messages}).only(
                "pk", "name", "owner_department_id", "task_assignee_id", "task_store_id"
            )
        }
        due = timezone.now() + dt.timedelta(days=settings.STAFF_TASK_DUE_DAYS)
        tasks = []
        for m in messages:
            campaign = campaigns[m.campaign_id]
            tasks.append(
                StaffTask(
                    campaign_id=campaign.pk,
                    delivery_id=m.delivery_id,
                    department_id=campaign.owner_department_id,
                    customer_id=m.customer_id,
                    assignee_id=campaign.task_assignee_id,
                    store_id=campaign.task_store_id,
                    title=(m.subject or campaign.name)[:200],
                    instructions=m.body_text,
                    due_at=due,
                )
            )
        with transaction.atomic():
            StaffTask.objects.bulk_create(tasks, batch_size=500, ignore_conflicts=True)
        return [SendResult(m.delivery_id, True) for m in messages]


def postal_address(postal_code: str, prefecture: str, city: str, line: str = "") -> str:
    """〒 postal code, prefecture, city and street, Japanese order; "" without a postal code."""
    if not postal_code:
        return ""
    return " ".join(part for part in (f"〒{postal_code}", f"{prefecture}{city}{line}") if part)


def _address_line(attributes: dict | None) -> str:
    attributes = attributes or {}
    return str(attributes.get("address_line") or attributes.get("address") or "")


class DirectMailAdapter(ChannelAdapter):
    """Nothing is sent: the delivery is marked and shows up in the campaign's CSV export."""

    code = Campaign.Channel.DIRECT_MAIL
    atomic = True
    idempotent = True

    def addresses(self, customer_ids):
        from customers.models import Customer

        ids = list(customer_ids)
        found = {}
        for start in range(0, len(ids), 1000):
            rows = Customer.objects.filter(pk__in=ids[start : start + 1000]).values_list(
                "pk", "postal_code", "prefecture", "city", "attributes"
            )
            for pk, postal_code, prefecture, city, attributes in rows:
                address = postal_address(postal_code, prefecture, city, _address_line(attributes))
                if address:
                    found[pk] = address
        return found

    def send(self, messages):
        return [SendResult(m.delivery_id, True) for m in messages]


DIRECT_MAIL_HEADER = (
    "delivery_id",
    "customer_uuid",
    "family_name",
    "given_name",
    "postal_code",
    "prefecture",
    "city",
    "address_line",
    "language",
    "variant",
    "sent_at",
)


def direct_mail_csv(campaign: Campaign) -> Iterator[list]:
    """Header, then one row per delivery marked sent (personal data: the caller audits).

    Write it with ``config.spreadsheets``, which neutralises formula-like cells."""
    yield list(DIRECT_MAIL_HEADER)
    rows = (
        Delivery.objects.filter(campaign=campaign, sent_at__isnull=False)
        .exclude(status__in=[Delivery.Status.HOLDOUT, Delivery.Status.FAILED])
        .order_by("pk")
        .values_list(
            "pk",
            "customer__uuid",
            "customer__family_name",
            "customer__given_name",
            "customer__postal_code",
            "customer__prefecture",
            "customer__city",
            "customer__attributes",
            "customer__language",
            "variant__label",
            "sent_at",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        (pk, uuid, family, given, postal, prefecture, city, attributes, language, label, sent) = row
        yield [
            pk,
            str(uuid),
            family,
            given,
            postal,
            prefecture,
            city,
            _address_line(attributes),
            language,
            label or "",
            timezone.localtime(sent).isoformat(timespec="minutes"),
        ]


# --- the fake -----------------------------------------------------------------------------

FAKE_SENT: Counter[int] = Counter()
"""Delivery id → times handed to the fake in this process (tests, benchmarks)."""
_FAKE_LOCK = threading.Lock()


class FakeTransport(ChannelAdapter):
    """Sends nothing; counts each hand-off, and appends it to ``CAMPAIGN_FAKE_OUTBOX``.

    Idempotent like a real receiver: a repeat of a delivery id is recorded (so tests can
    count re-sends) but :func:`fake_outbox_read` reports each delivery once.
    """

    idempotent = True

    def __init__(self, real: ChannelAdapter) -> None:
        self.real = real
        self.code = real.code
        self.identity_kind = real.identity_kind

    def addresses(self, customer_ids):
        return self.real.addresses(customer_ids)

    def send(self, messages):
        path = settings.CAMPAIGN_FAKE_OUTBOX
        with _FAKE_LOCK:
            FAKE_SENT.update(m.delivery_id for m in messages)
            if path:
                with open(path, "a", encoding="utf-8") as outbox:
                    for m in messages:
                        line = {"channel": self.code, **asdict(m)}
                        outbox.write(json.dumps(line, ensure_ascii=False) + "\n")
                    outbox.flush()
        return [SendResult(m.delivery_id, True) for m in messages]


def fake_outbox_read(path: str) -> tuple[set[int], int]:
    """(delivery ids received, number of repeated hand-offs) from a fake outbox file."""
    seen: set[int] = set()
    repeats = 0
    with open(path, encoding="utf-8") as outbox:
        for line in outbox:
            if not line.strip():
                continue
            delivery_id = json.loads(line)["delivery_id"]
            if delivery_id in seen:
                repeats += 1
            seen.add(delivery_id)
    return seen, repeats


# --- registry -------------------------------------------------------------------------------

ADAPTERS: dict[str, ChannelAdapter] = {}


def register_adapter(adapter: ChannelAdapter) -> None:
    ADAPTERS[adapter.code] = adapter


for _adapter in (
    EmailAdapter(),
    WebhookAdapter(),
    SmsAdapter(),
    LineAdapter(),
    PushAdapter(),
    StaffTaskAdapter(),
    DirectMailAdapter(),
):
    register_adapter(_adapter)


def get_adapter(channel_code: str) -> ChannelAdapter:
    """The adapter of a campaign channel (the fake one with ``CAMPAIGN_TRANSPORT=fake``)."""
    try:
        adapter = ADAPTERS[channel_code]
    except KeyError:
        raise ValueError(f"unknown channel {channel_code!r}") from None
    if settings.CAMPAIGN_TRANSPORT == "fake":
        return FakeTransport(adapter)
    return adapter
