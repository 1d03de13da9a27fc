"""POST /api/v1/events: tokens only, per-item rejections, nothing stored on a bad request."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from config.org.tokens import api_token_create, api_token_revoke
from customers.models import Identity
from experience.ingest import MAX_ITEMS
from experience.models import Event
from tests.factories import CustomerFactory, EventTypeFactory, IdentityFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


@pytest.fixture(autouse=True)
def registry():
    EventTypeFactory(name="page_view", property_schema={"path": "string"})
    EventTypeFactory(name="add_to_cart", property_schema={"sku": "string", "price": "number"})


@pytest.fixture
def token(crm):
    return api_token_create(name="Web shop", department=crm, source="web-shop", by=None)


@pytest.fixture
def secret(token):
    return token[1]


def event(n: int = 0, **overrides):
    base = {
        "type": "page_view",
        "occurred_at": (timezone.now() - dt.timedelta(minutes=1)).isoformat(),
        "event_id": f"web-{n}",
        "identifiers": {"cookie": f"c-{n}"},
        "properties": {"path": f"/p/{n}"},
    }
    base.update(overrides)
    return base


def post(client, body, secret=None, *, url=URL, keyword="Bearer"):
    headers = {"HTTP_AUTHORIZATION": f"{keyword} {secret}"} if secret else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **headers)


def test_valid_batch_is_stored(client, secret):
    response = post(client, {"events": [event(n) for n in range(3)]}, secret)

    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert set(Event.objects.values_list("source", flat=True)) == {"web-shop"}
    assert Event.objects.count() == 3


def test_path_with_trailing_slash_works_too(client, secret):
    response = post(client, {"events": [event()]}, secret, url=URL + "/")
    assert response.status_code == 200
    assert Event.objects.count() == 1


def test_token_keyword_is_accepted(client, secret):
    response = post(client, {"events": [event()]}, secret, keyword="Token")
    assert response.status_code == 200


def test_mixed_batch_lists_rejections_and_stores_the_valid_items(client, secret):
    body = {
        "events": [
            event(0),
            event(1, type="page_veiw"),
            event(2, identifiers={"email": "nope"}),
            event(3, type="add_to_cart", properties={"sku": "A", "price": "3200"}),
            event(4),
        ]
    }

    response = post(client, body, secret)

    assert response.status_code == 200
    data = response.json()
    assert data["accepted"] == 2
    assert data["rejected"] == [
        {"index": 1, "field": "type", "reason": "unknown event type 'page_veiw'"},
        {"index": 2, "field": "identifiers.email", "reason": "not a valid email address"},
        {
            "index": 3,
            "field": "properties.price",
            "reason": "must be a number (schema type number), got string",
        },
    ]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["web-0", "web-4"]


def test_all_items_rejected_is_a_400_with_the_same_body(client, secret):
    response = post(client, {"events": [event(occurred_at="2026-11-22T10:00:00")]}, secret)

    assert response.status_code == 400
    assert response.json()["accepted"] == 0
    assert response.json()["rejected"][0]["field"] == "occurred_at"


@pytest.mark.parametrize(
    "body", ['{"events": [', "not json", '["a list"]', '{"events": "x"}', "{}"]
)
def test_malformed_body_is_refused_and_nothing_stored(client, secret, body):
    response = post(client, body, secret)

    assert response.status_code == 400
    assert "detail" in response.json()
    assert not Event.objects.exists()


def test_wrong_token_is_401_and_nothing_stored(client, secret):
    response = post(client, {"events": [event()]}, secret[:-2] + "xx")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"detail": "Invalid or revoked API token."}
    assert not Event.objects.exists()


def test_revoked_token_is_401_and_nothing_stored(client, token):
    api_token_revoke(token=token[0], by=None)

    response = post(client, {"events": [event()]}, token[1])

    assert response.status_code == 401
    assert not Event.objects.exists()


def test_missing_token_and_staff_session_are_told_a_token_is_needed(client, crm_editor):
    assert post(client, {"events": [event()]}).status_code == 401
    client.force_login(crm_editor)

    response = post(client, {"events": [event()]})

    assert response.status_code == 401
    assert "API token" in response.json()["detail"]
    assert not Event.objects.exists()


def test_replayed_batch_counts_duplicates(client, secret):
    body = {"events": [event(n) for n in range(4)]}
    post(client, body, secret)

    response = post(client, body, secret)

    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 4, "rejected": []}
    assert Event.objects.count() == 4


def test_same_event_id_from_another_source_is_stored(client, crm, secret):
    _app, app_secret = api_token_create(name="App", department=crm, source="app", by=None)
    post(client, {"events": [event(1)]}, secret)

    response = post(client, {"events": [event(1)]}, app_secret)

    assert response.json()["accepted"] == 1
    assert Event.objects.count() == 2


def test_anonymous_visitor_is_merged_into_the_email_profile_when_identified(client, secret):
    known = CustomerFactory()
    IdentityFactory(customer=known, kind=Identity.Kind.EMAIL, value="hanako@example.jp")
    post(client, {"events": [event(1, identifiers={"cookie": "c-visitor"})]}, secret)
    anonymous = Identity.objects.get(value="c-visitor").customer
    assert anonymous.is_anonymous

    both = {"cookie": "c-visitor", "email": "Hanako@example.jp"}
    response = post(client, {"events": [event(2, type="add_to_cart", identifiers=both)]}, secret)

    assert response.status_code == 200
    anonymous.refresh_from_db()
    assert anonymous.merged_into_id == known.pk
    assert list(Event.objects.values_list("customer_id", flat=True).distinct()) == [known.pk]


def test_more_than_the_limit_is_refused_whole(client, secret):
    body = {"events": [event(n) for n in range(MAX_ITEMS + 1)]}

    response = post(client, body, secret)

    assert response.status_code == 413
    assert str(MAX_ITEMS) in response.json()["detail"]
    assert not Event.objects.exists()


def test_get_is_not_allowed(client, secret):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 405


@pytest.mark.parametrize(
    "path",
    ["/api/v1/customers/", "/api/v1/touchpoints/", "/api/v1/segments/", "/api/v1/me/"],
)
def test_a_token_opens_no_other_endpoint(client, secret, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code in (401, 403)


def test_a_token_is_no_login_for_pages(client, secret):
    response = client.get("/experience/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 302


def test_throttle_limits_requests_per_token(client, secret, settings, monkeypatch):
    from django.core.cache import cache

    from experience.api_events import IngestThrottle

    cache.clear()
    monkeypatch.setattr(IngestThrottle, "THROTTLE_RATES", {"ingest": "2/minute"})
    codes = [post(client, {"events": [event(n)]}, secret).status_code for n in range(3)]
    cache.clear()
    assert codes == [200, 200, 429]


def test_schema_describes_the_endpoint_examples_and_bearer_scheme(client, crm_editor):
    client.force_login(crm_editor)

    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/events"]["post"]
    assert "/api/v1/events/" not in schema["paths"]
    assert operation["security"] == [{"apiToken": []}]
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    request_examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert "AValidBatch" in request_examples
    ok_examples = operation["responses"]["200"]["content"]["application/json"]["examples"]
    assert any("Mixed" in key for key in ok_examples)
    assert "examples" in operation["responses"]["400"]["content"]["application/json"]
    assert {"200", "400", "401", "413"} <= set(operation["responses"])
