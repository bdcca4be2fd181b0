"""Replay by the recording, the two kinds of attendance and certificate codes, as rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sto_analytics import certificates
from sto_analytics.domain import (
    attendance_kind,
    recording_minute,
    replay_minutes,
    replay_window_end,
    watch_figures,
)


def test_a_replay_position_falls_in_its_minute_of_the_recording() -> None:
    assert recording_minute(0) == 0
    assert recording_minute(59.9) == 0
    assert recording_minute(60) == 1
    assert recording_minute(3599) == 59


def test_replay_minutes_are_distinct_minutes_of_the_recording() -> None:
    # Minute 3 watched twice (rewound) and minutes 10-12 after skipping ahead: 5 minutes,
    # however many clock minutes it took.
    assert replay_minutes(recording=[3, 3, 4, 10, 11, 12, 3], clock=range(100, 120)) == 5


def test_a_viewer_without_positions_falls_back_to_the_clock_minutes() -> None:
    assert replay_minutes(recording=[], clock=[100, 101, 101, 102]) == 3


def test_watch_figures_count_replay_by_the_recording_and_views_by_the_clock() -> None:
    figures = watch_figures(
        {
            ("v_anna", "replay"): {100, 101, 102, 103},  # one view of 4 clock minutes...
            ("v_bert", "replay"): {100, 102},  # no positions: two views, 2 minutes
            ("v_anna", "live"): {50, 51},
        },
        recording={"v_anna": {0, 1}},  # ...that showed the first two minutes, twice
    )
    assert (figures.views_replay, figures.watch_minutes_replay) == (3, 2 + 2)
    assert (figures.views_live, figures.watch_minutes_live, figures.unique_viewers) == (1, 2, 2)


def test_two_kinds_of_attendance() -> None:
    assert attendance_kind(10, 0, checked_in=False, min_minutes=10) == "live"
    assert attendance_kind(0, 0, checked_in=True, min_minutes=10) == "live"
    assert attendance_kind(3, 10, checked_in=False, min_minutes=10) == "replay"
    assert attendance_kind(10, 10, checked_in=False, min_minutes=10) == "live"
    # Live and replay minutes are never added up: each kind stands on its own.
    assert attendance_kind(6, 6, checked_in=False, min_minutes=10) is None


def test_the_replay_window_is_days_after_the_end() -> None:
    end = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert replay_window_end(end, 30) == datetime(2026, 4, 1, 16, 0, tzinfo=UTC)


def test_a_verification_code_is_ten_unambiguous_symbols_printed_in_two_groups() -> None:
    codes = {certificates.new_code() for _ in range(1000)}
    assert len(codes) == 1000
    for code in codes:
        assert len(code) == 10
        assert not set(code) & set("ILOU")
        assert certificates.normalised(certificates.grouped(code)) == code
    assert certificates.grouped("7KQ2MXD9RT") == "7KQ2M-XD9RT"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("7kq2m-xd9rt", "7KQ2MXD9RT"),
        (" 7KQ2M XD9RT ", "7KQ2MXD9RT"),
        ("OIL2M-XD9RT", "0112MXD9RT"),  # read as they look: O is 0, I and L are 1
        ("7KQ2M-XD9R", None),
        ("7KQ2M-XD9RTT", None),
        ("7KQ2U-XD9RT", None),  # U is not in the alphabet
        ("", None),
    ],
)
def test_a_typed_code_is_read_forgivingly(typed: str, stored: str | None) -> None:
    assert certificates.normalised(typed) == stored
