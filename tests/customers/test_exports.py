"""Exports of customer lists: CSV with BOM or XLSX, PII masked without view_pii, audited."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from config.org.models import AuditLog
from config.spreadsheets import csv_text
from customers.exports import ExportError, export_customers
from customers.models import Customer
from tests.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hanako():
    customer = CustomerFactory(family_name="山田", given_name="花子")
    IdentityFactory(customer=customer, kind="email", value="hanako@example.jp")
    IdentityFactory(customer=customer, kind="phone", value="+819012345678")
    return customer


def read_csv(response) -> list[list[str]]:
    content = b"".join(response.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_csv_export_masks_personal_data_for_a_viewer(client, crm_viewer, hanako):
    client.force_login(crm_viewer)
    response = client.get(reverse("customers:export"), {"format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    header, row = read_csv(response)
    assert header[:3] == ["Customer ID", "Family name", "Given name"]
    assert row[0] == str(hanako.pk)
    assert "山田" not in row
    assert "hanako@example.jp" not in row
    assert row[header.index("Email")] == "***"
    audit = AuditLog.objects.get(action="customer.export")
    assert audit.actor == crm_viewer
    assert audit.detail["count"] == 1
    assert audit.detail["format"] == "csv"
    assert audit.detail["pii"] is False


def test_csv_export_shows_personal_data_to_a_pii_viewer(client, crm_pii_viewer, hanako):
    client.force_login(crm_pii_viewer)
    header, row = read_csv(client.get(reverse("customers:export"), {"format": "csv", "q": "花子"}))
    assert row[header.index("Family name")] == "山田"
    assert row[header.index("Email")] == "hanako@example.jp"
    # A leading "+" would make Excel compute the number: the apostrophe keeps it text.
    assert row[header.index("Phone")] == "'+819012345678"
    assert AuditLog.objects.get(action="customer.export").detail["pii"] is True


def test_xlsx_export_streams_every_customer(client, crm_pii_viewer, hanako):
    from openpyxl import load_workbook

    CustomerFactory.create_batch(4)
    client.force_login(crm_pii_viewer)
    response = client.get(reverse("customers:export"), {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 6
    assert "hanako@example.jp" in rows[1]  # by customer id: hanako came first
    assert AuditLog.objects.get(action="customer.export").detail == {
        "count": 5,
        "format": "xlsx",
        "pii": True,
        "what": "customer list",
    }


def test_a_bad_format_is_refused_naming_the_parameter(client, crm_viewer):
    client.force_login(crm_viewer)
    response = client.get(reverse("customers:export"), {"format": "pdf"})
    assert response.status_code == 400
    assert "format" in response.content.decode()
    assert not AuditLog.objects.filter(action="customer.export").exists()


def test_export_of_any_queryset_loads_identifiers_per_batch(
    crm_pii_viewer, django_assert_num_queries, monkeypatch
):
    from customers import exports

    monkeypatch.setattr(exports, "BATCH", 2)
    for i in range(5):
        IdentityFactory(kind="email", value=f"p{i}@example.jp")
    crm_pii_viewer.has_perm("customers.view_pii")  # warm the permission cache
    # count, audit insert, the customers, then one identifier query per batch of 2
    with django_assert_num_queries(6):
        _name, rows = export_customers(Customer.objects.all(), fmt="csv", user=crm_pii_viewer)
        content = csv_text(rows)
    assert content.count("@example.jp") == 5
    with pytest.raises(ExportError, match="format"):
        export_customers(Customer.objects.all(), fmt="json", user=crm_pii_viewer)


def test_a_customer_named_like_a_formula_cannot_run_in_either_format(client, crm_pii_viewer):
    from openpyxl import load_workbook

    CustomerFactory(family_name='=HYPERLINK("http://evil.example","x")', given_name="@A1")
    client.force_login(crm_pii_viewer)

    header, row = read_csv(client.get(reverse("customers:export"), {"format": "csv"}))
    xlsx = client.get(reverse("customers:export"), {"format": "xlsx"})

    assert row[header.index("Family name")] == '\'=HYPERLINK("http://evil.example","x")'
    assert row[header.index("Given name")] == "'@A1"
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    cell = sheet.cell(row=2, column=header.index("Family name") + 1)
    assert cell.value == '=HYPERLINK("http://evil.example","x")'
    assert cell.data_type == "s"
