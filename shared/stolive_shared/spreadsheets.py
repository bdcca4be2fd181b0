"""CSV exports that open safely in a Dutch Excel: one writer for every service.

UTF-8 with a byte-order mark (Excel reads UTF-8 only after one), ';' between fields (a Dutch
locale splits on it), CRLF lines. Every text cell that a spreadsheet would read as a formula
(one starting with =, +, -, @, a tab, CR or LF) gets a leading apostrophe, so a name such as
``=HYPERLINK("http://…")`` typed into a public form shows as text in the organiser's sheet
instead of running there (OWASP: CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")

Cell = str | int | float | None


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """The CSV of ``rows`` under ``header``, every text cell neutralised; numbers as they are."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(name) for name in header])
    for row in rows:
        writer.writerow(
            [
                spreadsheet_safe(cell) if isinstance(cell, str) else "" if cell is None else cell
                for cell in row
            ]
        )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")
