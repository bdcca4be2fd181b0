"""What the manage page says after the event follows analytics' attendance messages: a
certificate once given stays, live attendance is not overwritten by a later replay record,
and minutes only grow, whatever order the messages come in."""

from __future__ import annotations

import uuid

from sto_registrations.attendance import Attendance, merged

SOMEONE = uuid.uuid4()


def test_the_first_message_is_taken_as_it_is() -> None:
    first = Attendance(SOMEONE, None, False, 3.0, 0.0)
    assert merged(None, first) == first


def test_attending_by_replay_later_brings_the_certificate() -> None:
    at_the_end = Attendance(SOMEONE, None, False, 3.0, 0.0)
    later = Attendance(SOMEONE, "replay", True, 3.0, 12.0)
    assert merged(at_the_end, later) == later


def test_what_was_given_is_never_taken_back_by_an_older_or_smaller_record() -> None:
    live = Attendance(SOMEONE, "live", True, 40.0, 5.0)
    stale = Attendance(SOMEONE, "replay", False, 2.0, 1.0)
    assert merged(live, stale) == live
