"""Uploads: import files are size-limited and checked by content; bodies are bounded."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from openpyxl import Workbook

from config.org.tokens import api_token_create
from customers.models import ImportJob
from tests.factories import EventTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_in_tmp")]

CSV = "メールアドレス,姓,名\nhanako@example.jp,山田,花子\n"


def xlsx_bytes() -> bytes:
    workbook = Workbook()
    workbook.active.append(["email", "family_name"])
    workbook.active.append(["hanako@example.jp", "Yamada"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def upload_page(client, department, name: str, content: bytes):
    return client.post(
        reverse("customers:import_upload"),
        {
            "file": SimpleUploadedFile(name, content),
            "kind": "customers",
            "source": "pos",
            "department": department.pk,
        },
    )


def upload_api(api, department, name: str, content: bytes):
    data = {
        "file": SimpleUploadedFile(name, content),
        "kind": "customers",
        "source": "pos",
        "department": department.pk,
    }
    return api.post(reverse("import-job-list"), data, format="multipart")


def page_error(response) -> str:
    assert response.status_code == 200
    return " ".join(response.context["form"].errors["file"])


def test_a_file_over_the_limit_is_refused_naming_file_and_limit(
    client, api, crm, crm_editor, settings
):
    settings.IMPORT_MAX_BYTES = 1024
    content = CSV.encode() * 30
    client.force_login(crm_editor)
    api.force_authenticate(crm_editor)

    on_page = page_error(upload_page(client, crm, "members.csv", content))
    on_api = upload_api(api, crm, "members.csv", content)

    assert "members.csv" in on_page
    assert "1.0\xa0KB" in on_page
    assert on_api.status_code == 400
    assert "members.csv" in on_api.json()["file"][0]
    assert "1.0\xa0KB" in on_api.json()["file"][0]
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("members.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV text file"),
        ("members.csv", zip_bytes(), "not a CSV text file"),
        ("members.csv", CSV.encode("utf-16"), "not a CSV text file"),
        ("members.xlsx", CSV.encode(), "not an Excel workbook"),
        ("members.xlsx", zip_bytes(), "not an Excel workbook"),
    ],
    ids=["png-as-csv", "zip-as-csv", "utf16-csv", "csv-as-xlsx", "docx-as-xlsx"],
)
def test_content_must_match_the_type_the_name_claims(
    client, api, crm, crm_editor, name, content, message
):
    client.force_login(crm_editor)
    api.force_authenticate(crm_editor)

    assert message in page_error(upload_page(client, crm, name, content))
    response = upload_api(api, crm, name, content)
    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("members.csv", CSV.encode()),
        ("members.csv", CSV.encode("utf-8-sig")),
        ("members.csv", CSV.encode("shift_jis")),
        ("members.xlsx", xlsx_bytes()),
    ],
    ids=["utf8", "utf8-bom", "shift-jis", "xlsx"],
)
def test_genuine_csv_and_xlsx_files_are_accepted(client, crm, crm_editor, name, content):
    client.force_login(crm_editor)

    response = upload_page(client, crm, name, content)

    assert response.status_code == 302, response.context["form"].errors
    assert ImportJob.objects.get().original_name == name


def test_a_batch_of_1000_events_fits_the_body_limit(crm, settings):
    EventTypeFactory(name="page_view", property_schema={"path": "string", "referrer": "string"})
    _, secret = api_token_create(name="Shop", department=crm, source="shop", by=None)
    events = [
        {
            "type": "page_view",
            "occurred_at": "2026-05-01T12:00:00+09:00",
            "event_id": f"web-{n:06d}",
            "identifiers": {"email": f"customer-{n}@example.jp", "cookie": f"c-{n:012d}"},
            "properties": {
                "path": f"/products/{n}/お得なセット",
                "referrer": "https://example.jp/",
            },
        }
        for n in range(1000)
    ]
    body = json.dumps({"events": events})
    assert len(body.encode()) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2

    response = Client().post(
        reverse("api-events"),
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1000


def test_bodies_over_the_limit_are_refused_before_they_are_read(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.IMPORT_MAX_BYTES = 1000
    body = json.dumps({"events": ["x" * 2000]})

    response = client.post(reverse("api-events"), body, content_type="application/json")
    upload = client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("big.csv", b"a" * (2**20 + 2000))},
    )

    assert response.status_code == 413
    assert "at most 1000" in response.content.decode()
    assert upload.status_code == 413
