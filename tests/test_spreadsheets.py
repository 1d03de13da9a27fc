"""Exports open safely in spreadsheets: formula-like text never runs, values stay readable."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from config.spreadsheets import cell_safe, csv_text, xlsx_bytes

DANGEROUS = ['=HYPERLINK("http://evil","x")', "+cmd|'/C calc'!A0", "-2+3", "@SUM(A1)", "\tx"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_like_text_gets_an_apostrophe(text):
    assert cell_safe(text) == f"'{text}"


@pytest.mark.parametrize("value", ["山田", "hanako@example.jp", "", 42, -5, None, 3.5])
def test_plain_text_and_numbers_pass_unchanged(value):
    assert cell_safe(value) == value


def test_csv_starts_with_a_bom_and_neutralises_every_dangerous_cell():
    text = csv_text([["name", "note"], *[[value, "ok"] for value in DANGEROUS]])

    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["name", "note"]
    assert [row[0] for row in rows[1:]] == [f"'{value}" for value in DANGEROUS]


def test_xlsx_keeps_text_exact_and_never_writes_a_formula():
    content = xlsx_bytes([["name", "amount"], *[[value, 1200] for value in DANGEROUS]], title="x")

    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == DANGEROUS
    assert {cell.data_type for cell in cells} == {"s"}
    assert [row[1].value for row in sheet.iter_rows(min_row=2)] == [1200] * len(DANGEROUS)
