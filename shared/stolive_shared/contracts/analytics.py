"""Messages on the analytics topic: who of the registrants attended an event, keyed by event id.

After an event ends the analytics service publishes one ``attendance.recorded`` per registrant
it saw (watched, live or replay, or checked in) and then one ``attendance.finalised`` for the
event. The notifications service sends the thank-you to those recorded as attended and the
replay link to the other confirmed registrants once the event is finalised.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import AwareDatetime

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import ANALYTICS


class AttendanceRecorded(Message):
    TOPIC: ClassVar[str] = ANALYTICS.name
    type: Literal["attendance.recorded"] = "attendance.recorded"
    version: Literal[1] = 1
    event_id: uuid.UUID
    registration_id: uuid.UUID
    minutes_watched: float
    watched_live: bool
    checked_in: bool
    attended: bool

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


ANALYTICS_MESSAGES: tuple[type[Message], ...] = (AttendanceRecorded, AttendanceFinalised)
