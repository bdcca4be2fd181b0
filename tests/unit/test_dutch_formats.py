"""Numbers and times as a Dutch reader expects them, on every page of every service."""

from __future__ import annotations

from datetime import UTC, datetime

from stolive_shared.templating import decimal, local_time


def test_a_decimal_is_written_with_a_comma() -> None:
    assert decimal(0.1) == "0,1"
    assert decimal(12.345, 2) == "12,35"
    assert decimal(3) == "3,0"


def test_a_time_is_shown_in_amsterdam_from_a_datetime_or_its_iso_text() -> None:
    summer = datetime(2026, 6, 2, 13, 30, tzinfo=UTC)
    assert local_time(summer) == "dinsdag 2 juni 2026, 15:30"
    assert local_time("2026-12-02T13:30:00+00:00") == "woensdag 2 december 2026, 14:30"
    assert local_time("2026-12-02T13:30:00Z", "%H:%M") == "14:30"
