"""CSV exports for Dutch Excel: every text cell that would start a formula is shown as text."""

from __future__ import annotations

import csv
import io

import pytest

from stolive_shared.spreadsheets import spreadsheet_csv, spreadsheet_safe


@pytest.mark.parametrize(
    "hostile",
    ["=1+1", '=HYPERLINK("http://x")', "+31", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "\n=1"],
)
def test_a_cell_that_would_start_a_formula_is_shown_as_text(hostile: str) -> None:
    assert spreadsheet_safe(hostile) == "'" + hostile


def test_ordinary_text_is_left_alone() -> None:
    assert spreadsheet_safe("Anna de Vries") == "Anna de Vries"
    assert spreadsheet_safe("a=b") == "a=b"
    assert spreadsheet_safe("") == ""


def test_a_csv_opens_in_dutch_excel_with_numbers_as_numbers_and_text_neutralised() -> None:
    raw = spreadsheet_csv(["naam", "minuten", "regio"], [["=cmd", 42, None], ['Bo; "B"', 0, "-"]])
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["naam", "minuten", "regio"], ["'=cmd", "42", ""], ['Bo; "B"', "0", "'-"]]
    assert b"\r\n" in raw
