"""CSV and XLSX files that spreadsheets open safely: every export of the project writes here.

In CSV, a text cell that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is run by Excel and LibreOffice when the file is opened ("CSV
injection"), so such cells get a leading apostrophe; numbers and empty cells pass
unchanged. (A phone number such as ``+81-90-…`` is prefixed too: unprefixed, Excel would
compute it.) CSV is UTF-8 with a byte-order mark so Excel reads Japanese text correctly.
In XLSX, text is stored as text cells, which no spreadsheet runs, so values stay exact;
only what openpyxl would otherwise write as a formula is marked as text explicitly.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"
LINES_PER_CHUNK = 500


def cell_safe(value: Any) -> Any:
    """The value, with a leading apostrophe if it is text a spreadsheet would run."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return f"'{value}"
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [cell_safe(value) for value in row]


class _Echo:
    """A file-like object whose ``write`` hands the line back, for streaming csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The rows as CSV text in chunks of lines, the byte-order mark first."""
    writer = csv.writer(_Echo())
    yield BOM
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow(safe_row(row)))
        if len(chunk) >= LINES_PER_CHUNK:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def csv_bytes_stream(rows: Iterable[Iterable[Any]]) -> Iterator[bytes]:
    """``csv_lines`` encoded as UTF-8, for a StreamingHttpResponse."""
    for text in csv_lines(rows):
        yield text.encode()


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """The whole CSV as one string (small files: a journey map, a direct-mail list)."""
    return "".join(csv_lines(rows))


def xlsx_bytes(rows: Iterable[Iterable[Any]], *, title: str) -> bytes:
    """The rows as one XLSX sheet named ``title``, written in openpyxl's write-only mode."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        return handle.read()


def _xlsx_cell(sheet, value: Any) -> Any:
    """The value, or a text cell where openpyxl would take a leading ``=`` for a formula."""
    if not (isinstance(value, str) and value.startswith("=")):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def download_response(rows: Iterable[Iterable[Any]], *, fmt: str, filename: str, title: str):
    """The rows as a file download: CSV streamed, XLSX whole. ``fmt`` is one of ``FORMATS``;
    ``filename`` comes without its extension."""
    from django.http import HttpResponse, StreamingHttpResponse

    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_bytes_stream(rows), content_type="text/csv; charset=utf-8"
        )
    elif fmt == "xlsx":
        response = HttpResponse(xlsx_bytes(rows, title=title), content_type=XLSX_TYPE)
    else:
        raise ValueError(fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response
