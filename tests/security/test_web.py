"""Web security of the site as a whole: deploy check, CSRF, passwords, tokens, throttling,
public tracking links, security headers and the CSP report endpoint."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.throttling import UserRateThrottle

from config.org.models import ApiToken
from config.org.tokens import api_token_create, api_token_revoke
from journeys import feedback
from journeys.models import Delivery
from tests.factories import CustomerFactory, DeliveryFactory, SegmentFactory
from tests.test_settings import manage

# Views that take a POST without a CSRF token, on purpose; everything else must refuse it.
CSRF_EXEMPT = {
    # RFC 8058 one-click unsubscribe: mail providers POST without any cookie or token.
    "tracking:unsubscribe",
    # Browsers post violation reports without cookies; the view only logs.
    "csp_report",
}
EXAMPLE_VALUES = {
    "int": "1",
    "slug": "x",
    "str": "x",
    "path": "x",
    "uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
}


def page_urls(patterns=None, prefix="", namespace=""):
    """(name, example path) of every page URL: not the API, the admin or static files."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(("api/", "admin/")):
            continue
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from page_urls(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            path = re.sub(r"<(?:(\w+):)?\w+>", lambda m: EXAMPLE_VALUES[m.group(1) or "str"], route)
            yield f"{namespace}{entry.name}", "/" + path


PAGE_URLS = sorted(set(page_urls()))


# --------------------------------------------------------------------------- deployment


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="circle.example.com",
        COMPANY_NAME="Example K.K.",
        COMPANY_ADDRESS="1-1 Marunouchi, Chiyoda-ku, Tokyo",
        SITE_URL="https://circle.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_csp_report_only_switch_sends_the_same_policy_as_report_only(tmp_path):
    script = (
        "from django.conf import settings; "
        "print(hasattr(settings, 'CONTENT_SECURITY_POLICY'), "
        "sorted(settings.CONTENT_SECURITY_POLICY_REPORT_ONLY['DIRECTIVES']))"
    )
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        CSP_REPORT_ONLY="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("False [")
    assert "'script-src'" in result.stdout


# --------------------------------------------------------------------------- headers, CSP


@pytest.mark.django_db
def test_pages_carry_the_content_security_policy_and_security_headers(client, crm_editor):
    client.force_login(crm_editor)
    response = client.get(reverse("home"))

    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    assert policy["script-src"] == f"'self' 'nonce-{nonce}'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'self'"
    assert policy["form-action"] == "'self'"
    assert policy["report-uri"] == "/csp-report/"
    # Every script of the page carries this response's nonce.
    scripts = re.findall(r"<script\b[^>]*>", response.content.decode())
    assert scripts
    assert all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_each_response_gets_a_new_nonce(client, crm_editor):
    client.force_login(crm_editor)

    first = client.get(reverse("home"))["Content-Security-Policy"]
    second = client.get(reverse("home"))["Content-Security-Policy"]

    assert first != second


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/csp-report",
            b'{"csp-report": {"document-uri": "http://x/", "violated-directive": "script-src",'
            b' "blocked-uri": "inline"}}',
        ),
        (
            "application/reports+json",
            b'[{"type": "csp-violation", "body": {"documentURL": "http://x/",'
            b' "effectiveDirective": "script-src-elem", "blockedURL": "inline"}}]',
        ),
    ],
)
def test_csp_reports_are_logged_without_login_or_csrf(content_type, body, caplog):
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("csp_report"), body, content_type=content_type)

    assert response.status_code == 204
    assert "CSP violation: script-src" in caplog.text


@pytest.mark.django_db
def test_csp_report_refuses_other_types_big_bodies_and_gets(client):
    url = reverse("csp_report")

    assert client.post(url, "{}", content_type="text/plain").status_code == 415
    too_big = b'{"csp-report": {"x": "' + b"a" * 70_000 + b'"}}'
    assert client.post(url, too_big, content_type="application/csp-report").status_code == 413
    assert client.post(url, b"{", content_type="application/csp-report").status_code == 400
    assert client.get(url).status_code == 405


# --------------------------------------------------------------------------- CSRF


def test_every_page_url_is_listed():
    names = {name for name, _ in PAGE_URLS}
    assert {"home", "login", "logout", "customers:index", "tracking:click"} <= names
    assert names >= CSRF_EXEMPT


@pytest.mark.django_db
def test_every_page_refuses_a_post_without_the_csrf_token(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    accepted = {
        name: client.post(path).status_code for name, path in PAGE_URLS if name not in CSRF_EXEMPT
    }

    assert {name: code for name, code in accepted.items() if code != 403} == {}
    assert len(accepted) > 100


@pytest.mark.django_db
def test_htmx_requests_send_the_pages_csrf_token(crm_manager):
    client = Client(enforce_csrf_checks=True)
    client.force_login(crm_manager)
    page = client.get(reverse("home")).content.decode()

    token = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page).group(1)
    response = client.post(
        reverse("journeys:notifications_read"), headers={"HX-Request": "true", "X-CSRFToken": token}
    )

    assert response.status_code != 403


# --------------------------------------------------------------------------- passwords


@pytest.mark.parametrize("password", ["Sh0rt!", "password1234", "qwertyuiop", "81726354091827"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_long_uncommon_passphrase_is_accepted():
    validate_password("violet-ferry-lantern-2026")


# --------------------------------------------------------------------------- API tokens


@pytest.mark.django_db
def test_api_token_secret_is_nowhere_in_the_database(crm, crm_manager):
    token, secret = api_token_create(name="Shop", department=crm, source="shop", by=crm_manager)

    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())
    # The random part may itself contain "_": take everything after "cc_<prefix>_".
    random_part = secret.removeprefix(f"cc_{token.prefix}_")
    assert len(random_part) >= 32
    assert random_part not in str(stored)


@pytest.mark.django_db
def test_a_sales_token_cannot_read_crm_records(api, crm, sales, sales_editor):
    segment = SegmentFactory(owner_department=crm, name="CRM only")
    _, secret = api_token_create(name="Sales", department=sales, source="sales", by=None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    detail = api.get(reverse("segment-detail", args=[segment.pk]))
    listing = api.get(reverse("segment-list"))

    assert detail.status_code in (401, 403, 404)
    assert "CRM only" not in listing.content.decode()
    assert api.get(reverse("api-reports")).status_code == 200


@pytest.mark.django_db
def test_a_revoked_token_is_refused_at_once(api, crm, crm_manager):
    token, secret = api_token_create(name="Shop", department=crm, source="shop", by=crm_manager)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(reverse("api-reports")).status_code == 200

    api_token_revoke(token=token, by=crm_manager)

    assert api.get(reverse("api-reports")).status_code in (401, 403)


# --------------------------------------------------------------------------- throttling


@pytest.mark.django_db
def test_api_answers_429_with_retry_after_over_the_rate(api, crm_viewer, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "2/minute", raising=False)
    api.force_authenticate(crm_viewer)

    codes = [api.get(reverse("api-me")).status_code for _ in range(3)]
    response = api.get(reverse("api-me"))

    assert codes[:2] == [200, 200]
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


# --------------------------------------------------------------------------- tracking links


@pytest.fixture
def delivery(db):
    return DeliveryFactory(customer=CustomerFactory(), status=Delivery.Status.SENT)


def test_a_tampered_click_token_does_not_redirect(client, delivery):
    token = feedback.click_token(delivery.pk, "https://shop.example.com/")
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")

    response = client.get(reverse("tracking:click", args=[tampered]))

    assert 400 <= response.status_code < 500
    assert "Location" not in response


def test_a_click_token_leads_only_to_its_own_signed_url(client, delivery):
    ours = feedback.click_token(delivery.pk, "https://shop.example.com/")
    payload = feedback.click_token(delivery.pk, "https://evil.example/").rpartition(":")[0]
    spliced = payload + ":" + ours.rpartition(":")[2]

    assert client.get(reverse("tracking:click", args=[ours]))["Location"] == (
        "https://shop.example.com/"
    )
    response = client.get(reverse("tracking:click", args=[spliced]))
    assert "Location" not in response


def test_a_validly_signed_javascript_url_is_still_refused(client, delivery):
    token = signing.dumps(
        [delivery.pk, "javascript:alert(document.cookie)"], salt=feedback.CLICK_SALT, compress=True
    )

    response = client.get(reverse("tracking:click", args=[token]))

    assert 400 <= response.status_code < 500
    assert "Location" not in response
    with pytest.raises(ValueError, match="http"):
        feedback.click_token(delivery.pk, "JavaScript:alert(1)")


@pytest.mark.parametrize("name", ["tracking:click", "tracking:unsubscribe"])
@pytest.mark.django_db
def test_a_script_in_a_token_path_is_not_reflected(client, name):
    probe = '"><script>alert(1)<img src=x onerror=alert(1)>'
    path = reverse(name, args=["PROBE"]).replace("PROBE", quote(probe, safe=""))

    response = client.get(path)

    assert 400 <= response.status_code < 500
    body = response.content.decode()
    # Shown, if at all, escaped or percent-encoded: never as markup.
    assert "<script>alert(1)" not in body
    assert "<img src=x onerror" not in body
    assert '"><' not in body
    assert response["X-Content-Type-Options"] == "nosniff"
