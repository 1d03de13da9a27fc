"""Field-level masking per role, on every surface that shows a person: snapshot tests.

One deterministic person (names in kanji and kana, email, phone, POS ID, birth date,
postal code, an important date, a personal and a non-personal attribute) is a member of a
CRM segment, sits in an RFM cell, has a look-alike profile (a merge candidate) and got a
direct-mail and an email delivery. For each role, what each surface shows of that person
(HTML pages, CSV/XLSX exports, API) is extracted field by field and compared with the
committed snapshot ``snapshots/masking.json``. Run with ``UPDATE_SNAPSHOTS=1`` to write it
after an intended change, and review the diff.

Independently of the snapshot, a masked role must find none of the person's clear
email, phone, name or address strings anywhere in any response body or file, so a new
surface that leaks fails even if the snapshot was regenerated carelessly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from customers.metrics import metrics_rebuild
from customers.models import (
    AttributeDefinition,
    CustomerMetrics,
    Identity,
    ImportantDate,
    Segment,
    SegmentMembership,
)
from journeys.models import Campaign, Delivery
from tests.factories import (
    CampaignFactory,
    CampaignStepFactory,
    CustomerFactory,
    DeliveryFactory,
    IdentityFactory,
    OrderFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db

SNAPSHOT = Path(__file__).parent / "snapshots" / "masking.json"
ROLES = ["crm_viewer", "crm_pii_viewer", "crm_manager", "sales_editor", "superuser"]
MASKED_ROLES = {"crm_viewer", "crm_manager", "sales_editor"}

PERSON = {
    "family_name": "鷹司",
    "given_name": "翔太郎",
    "family_name_kana": "タカツカサ",
    "given_name_kana": "ショウタロウ",
    "birth_date": dt.date(1984, 7, 19),
    "gender": "m",
    "postal_code": "150-0001",
    "prefecture": "東京都",
    "city": "渋谷区神宮前",
    "language": "ja",
    "lifecycle_stage": "customer",
    "attributes": {"address_line": "神宮前9-8-7 欅ハイツ302", "membership_rank": "gold"},
}
EMAIL = "shotaro.takatsukasa@example.jp"
PHONE = "+819076543210"
POS = "PM-55501"
# Strings a masked role must never receive, in any form a surface might print them.
SECRETS = [
    PERSON["family_name"],
    PERSON["given_name"],
    PERSON["family_name_kana"],
    PERSON["given_name_kana"],
    EMAIL,
    "shotaro.takatsukasa",
    PHONE,
    "090-7654-3210",
    "09076543210",
    "7654-3210",
    "76543210",
    PERSON["attributes"]["address_line"],
    PERSON["city"],
    "1984-07-19",
    "結婚記念日",
    "2011-06-12",
]


@pytest.fixture
def world(crm, crm_manager):
    now = timezone.now()
    AttributeDefinition.objects.create(
        owner_department=crm, key="address_line", label="Address line", type="text", is_pii=True
    )
    AttributeDefinition.objects.create(
        owner_department=crm, key="membership_rank", label="Rank", type="text", is_pii=False
    )
    person = CustomerFactory(**PERSON)
    IdentityFactory(customer=person, kind=Identity.Kind.EMAIL, value=EMAIL)
    IdentityFactory(customer=person, kind=Identity.Kind.PHONE, value=PHONE)
    IdentityFactory(customer=person, kind=Identity.Kind.POS, value=POS)
    ImportantDate.objects.create(
        customer=person, kind="anniversary", label="結婚記念日", month=6, day=12, year=2011
    )
    # Same names and birth date, no shared identifier: a merge candidate for review.
    twin = CustomerFactory(**{**PERSON, "attributes": {}})
    for days in (3, 40):
        OrderFactory(customer=person, ordered_at=now - dt.timedelta(days=days), total=12000)
    metrics_rebuild(now=now)
    segment = SegmentFactory(owner_department=crm, name="Masking VIPs", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=segment, customer=person)
    Segment.objects.filter(pk=segment.pk).update(computed_at=now)
    mail = CampaignFactory(owner_department=crm, channel=Campaign.Channel.DIRECT_MAIL)
    DeliveryFactory(
        step=CampaignStepFactory(campaign=mail), customer=person, sent_at=now, address=""
    )
    email = CampaignFactory(owner_department=crm, channel=Campaign.Channel.EMAIL)
    DeliveryFactory(
        step=CampaignStepFactory(campaign=email),
        customer=person,
        sent_at=now,
        address=EMAIL,
        status=Delivery.Status.FAILED,
        error=f"550 mailbox {EMAIL} unavailable",
    )
    metrics = CustomerMetrics.objects.get(customer=person)
    return {
        "person": person,
        "twin": twin,
        "segment": segment,
        "mail": mail,
        "email": email,
        "rfm": (metrics.rfm_recency, metrics.rfm_frequency),
    }


# --- extraction ------------------------------------------------------------------------


class _Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children = tag, attrs, []

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, _Node):
                yield from child.iter()


class _Tree(HTMLParser):
    """A forgiving element tree: enough to find cells by attribute or by the link they hold."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "source", "wbr", "col"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = _Node("root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def _find(root: _Node, **attrs) -> list[_Node]:
    tag = attrs.pop("tag", None)
    return [
        node
        for node in root.iter()
        if (tag is None or node.tag == tag)
        and all(node.attrs.get(k) == v for k, v in attrs.items())
    ]


def _cell_linking(html: str, href: str) -> str | None:
    """The text of the table cell that links to ``href`` (the person's row), if any."""
    for cell in _find(_Tree(html).root, tag="td"):
        if any(a.attrs.get("href") == href for a in _find(cell, tag="a")):
            return cell.text()
    return None


def _profile_fields(html: str) -> dict:
    root = _Tree(html).root
    header = _find(root, tag="hgroup", **{"class": "customer-header"})[0]
    line = _find(header, tag="p")[0]
    identifiers = {}
    for row in _find(root, tag="tr"):
        values = _find(row, **{"data-testid": "identifier"})
        if values:
            identifiers[_find(row, tag="th")[0].text()] = values[0].text()
    dates_section = _find(root, tag="section", **{"aria-labelledby": "dates-title"})[0]
    return {
        "name": _find(root, **{"data-testid": "customer-name"})[0].text(),
        "kana": _find(line, tag="span")[0].text(),
        "identifiers": identifiers,
        "important_dates": [li.text() for li in _find(dates_section, tag="li")],
    }


def _table_row(rows: list[list], key_column: str, key: str, drop=()) -> dict | None:
    header = [str(h) for h in rows[0]]
    for row in rows[1:]:
        record = dict(zip(header, ["" if v is None else str(v) for v in row], strict=False))
        if record.get(key_column) == key:
            return {k: v for k, v in record.items() if k not in drop}
    return None


def _csv_rows(response) -> tuple[list[list], str]:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    text = raw.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text))), text


def _xlsx_rows(response) -> tuple[list[list], str]:
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    return rows, json.dumps(rows, ensure_ascii=False, default=str)


def _api_item(data, **match) -> dict | None:
    items = data["results"] if isinstance(data, dict) and "results" in data else data
    if isinstance(items, dict):
        items = [items]
    for item in items:
        if all(item.get(k) == v for k, v in match.items()):
            return item
    return None


def _pick(item: dict | None, fields) -> dict:
    if item is None:
        return {"absent": True}
    return {field: item.get(field) for field in fields}


CUSTOMER_API_FIELDS = (
    "full_name",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "gender",
    "postal_code",
    "prefecture",
    "city",
    "language",
    "lifecycle_stage",
    "pii_masked",
)


def observe(client, api, user, w) -> tuple[dict, list[str]]:
    """{surface: {field: value}} of what ``user`` is shown of the person, and every body."""
    person, segment = w["person"], w["segment"]
    profile = reverse("customers:detail", args=[person.pk])
    client.force_login(user)
    api.force_authenticate(user)
    shown: dict[str, dict] = {}
    bodies: list[str] = []

    def get(url, query=None):
        response = client.get(url, query or {})
        bodies.append(response.content.decode())
        return response

    def html_cell(name, url, query=None):
        response = get(url, query)
        if response.status_code != 200:
            shown[name] = {"status": response.status_code}
            return
        cell = _cell_linking(response.content.decode(), profile)
        shown[name] = {"row": cell} if cell is not None else {"absent": True}

    html_cell("html.customer_list", reverse("customers:index"))
    response = get(profile)
    shown["html.profile"] = _profile_fields(response.content.decode())
    html_cell("html.segment_members", reverse("customers:segment_detail", args=[segment.pk]))
    html_cell("html.rfm_cell", reverse("reports:rfm_cell", args=w["rfm"]))
    html_cell("html.merge_candidates", reverse("customers:merge_candidates"))

    drop = ("Created",)
    for name, url in (
        ("customers", reverse("customers:export")),
        ("segment", reverse("customers:segment_export", args=[segment.pk])),
    ):
        for fmt, reader in (("csv", _csv_rows), ("xlsx", _xlsx_rows)):
            response = client.get(url, {"format": fmt})
            if response.status_code != 200:
                shown[f"{fmt}.{name}"] = {"status": response.status_code}
                continue
            rows, text = reader(response)
            bodies.append(text)
            row = _table_row(rows, "Customer ID", str(person.pk), drop)
            shown[f"{fmt}.{name}"] = row or {"absent": True}
    response = client.get(reverse("journeys:campaign_dm_csv", args=[w["mail"].pk]))
    if response.status_code == 200:
        rows, text = _csv_rows(response)
        bodies.append(text)
        shown["csv.direct_mail"] = _table_row(
            rows, "customer_uuid", str(person.uuid), ("delivery_id", "customer_uuid", "sent_at")
        ) or {"absent": True}
    else:
        shown["csv.direct_mail"] = {"status": response.status_code}

    def api_get(name, url, query=None, *, match, fields, nested=None):
        response = api.get(url, query or {})
        if response.status_code != 200:
            shown[name] = {"status": response.status_code}
            return
        data = response.json()
        bodies.append(json.dumps(data, ensure_ascii=False))
        item = _api_item(data, **match)
        shown[name] = _pick(item, fields)
        if item is not None and nested:
            shown[name].update(nested(item))

    def identities(item):
        return {"identities": {row["kind"]: row["value"] for row in item.get("identities", [])}}

    api_get(
        "api.customers_list",
        "/api/v1/customers/",
        match={"id": person.pk},
        fields=("lifecycle_stage", "prefecture", "language", "is_anonymous"),
    )
    api_get(
        "api.customer_detail",
        f"/api/v1/customers/{person.pk}/",
        match={"id": person.pk},
        fields=CUSTOMER_API_FIELDS,
        nested=identities,
    )
    api_get(
        "api.customer_lookup",
        "/api/v1/customers/lookup/",
        {"kind": "email", "value": EMAIL.upper()},
        match={"id": person.pk},
        fields=CUSTOMER_API_FIELDS,
        nested=identities,
    )
    api_get(
        "api.segment_members",
        f"/api/v1/segments/{segment.pk}/members/",
        match={"customer": person.pk},
        fields=("name", "lifecycle_stage", "prefecture"),
    )
    for channel, campaign in (("direct_mail", w["mail"]), ("email", w["email"])):
        api_get(
            f"api.deliveries.{channel}",
            "/api/v1/deliveries/",
            {"campaign": campaign.pk},
            match={"customer": person.pk},
            fields=("address", "error", "status"),
        )
    return _placeholders(shown, w), bodies


def _placeholders(value, w):
    """Ids and UUIDs made stable across runs and databases."""
    swaps = {
        str(w["person"].uuid): "<uuid>",
        f"#{w['person'].pk}": "#<person>",
        f"#{w['twin'].pk}": "#<twin>",
    }
    if isinstance(value, dict):
        return {k: _placeholders(v, w) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v, w) for v in value]
    if isinstance(value, str):
        for old, new in swaps.items():
            value = value.replace(old, new)
        if value == str(w["person"].pk):
            return "<person>"
    return value


# --- the tests -------------------------------------------------------------------------


def _load_snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8")) if SNAPSHOT.exists() else {}


@pytest.mark.parametrize("role", ROLES)
def test_each_surface_shows_the_person_as_the_snapshot_says(request, client, api, world, role):
    user = request.getfixturevalue(role)
    shown, bodies = observe(client, api, user, world)

    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot = _load_snapshot()
        snapshot[role] = shown
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        ordered = {name: snapshot[name] for name in ROLES if name in snapshot}
        SNAPSHOT.write_text(
            json.dumps(ordered, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    snapshot = _load_snapshot()
    assert role in snapshot, (
        f"no snapshot for {role} in {SNAPSHOT}: run with UPDATE_SNAPSHOTS=1 and review it"
    )
    assert shown == snapshot[role]

    if role in MASKED_ROLES:
        for body in bodies:
            leaked = [secret for secret in SECRETS if secret in body]
            assert not leaked, f"{role} received {leaked} in: {body[:300]}…"


def test_the_snapshot_shows_clear_data_to_pii_roles_and_masks_it_for_the_others():
    """A guard on the committed file itself: regenerating it over a leak is visible here."""
    snapshot = _load_snapshot()
    assert set(snapshot) == set(ROLES)
    text = {role: json.dumps(snapshot[role], ensure_ascii=False) for role in ROLES}
    for role in ROLES:
        has_clear = EMAIL in text[role] and PERSON["given_name"] in text[role]
        assert has_clear == (role not in MASKED_ROLES), role
