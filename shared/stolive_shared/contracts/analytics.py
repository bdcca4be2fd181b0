"""Messages on the analytics topic: who of the registrants attended an event, keyed by event id.

After an event ends the analytics service publishes one ``attendance.recorded`` per registrant
it saw (watched, live or replay, or checked in) and then one ``attendance.finalised`` for the
event. The notifications service sends the thank-you to those recorded as attended and the
replay link to the other confirmed registrants once the event is finalised (or, when the replay
comes later, once it is published).

Attendance has two kinds (version 2): ``live`` (enough minutes live, or checked in at the
venue) and ``replay`` (enough minutes of the recording within the replay window after the
end). A registrant who attends by replay after the finalisation gets a second
``attendance.recorded`` then, with ``attended_as="replay"``: the certificate is theirs from that
moment. ``certificate`` says one was issued (its link is ``PersonalLinks.certificate``).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import ANALYTICS


class AttendanceRecorded(Message):
    TOPIC: ClassVar[str] = ANALYTICS.name
    type: Literal["attendance.recorded"] = "attendance.recorded"
    version: Literal[2] = 2
    event_id: uuid.UUID
    registration_id: uuid.UUID
    # Live and replay minutes together, as in version 1.
    minutes_watched: float
    watched_live: bool
    checked_in: bool
    attended: bool
    minutes_live: float = 0.0
    minutes_replay: float = 0.0
    attended_as: Literal["live", "replay"] | None = None
    certificate: bool = False

    def partition_key(self) -> str:
        return str(self.event_id)


class AttendanceFinalised(Message):
    """Every ``attendance.recorded`` of this event was published before this message."""

    TOPIC: ClassVar[str] = ANALYTICS.name
    type: Literal["attendance.finalised"] = "attendance.finalised"
    version: Literal[1] = 1
    event_id: uuid.UUID
    ended_at: AwareDatetime
    registrants: int
    attended: int
    min_minutes_for_attendance: float

    def partition_key(self) -> str:
        return str(self.event_id)


def upcast_attendance_recorded_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 did not split live from replay minutes: all counted as live minutes, and an
    attendee attended live with a certificate (as version 1's finalisation issued one)."""
    attended = bool(data.get("attended"))
    return {
        "minutes_live": data.get("minutes_watched", 0.0),
        "minutes_replay": 0.0,
        "attended_as": "live" if attended else None,
        "certificate": attended,
        **data,
    }


ANALYTICS_MESSAGES: tuple[type[Message], ...] = (AttendanceRecorded, AttendanceFinalised)
