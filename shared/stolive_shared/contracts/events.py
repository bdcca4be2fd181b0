"""Messages on the events topic: each change of an event carries the whole event.

State transfer keeps consumers simple: a consumer stores the snapshot with the highest
``revision`` it has seen and ignores older ones, so redelivery and reordering are harmless.

Version 2 of every event message carries ``captions_url`` (WebVTT captions of the stream);
version 1 had none (``upcast_event_v1_v2``). ``event.replay_published`` was born with it.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.topics import EVENTS

EventKind = Literal["webinar", "regional_meeting", "supra_regional_meeting", "national_day"]
EventStatus = Literal["draft", "published", "live", "ended", "cancelled"]


# The programme's reminder schedule unless an event sets its own: 24 hours and 1 hour before.
DEFAULT_REMINDER_OFFSETS_HOURS: tuple[float, ...] = (24.0, 1.0)


class EventSnapshot(BaseModel):
    """An event as the events service holds it after the change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    revision: int
    kind: EventKind
    status: EventStatus
    title: str
    description: str = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    venue: str | None = None
    stream_url: str | None = None
    replay_url: str | None = None
    # WebVTT captions for the stream and the replay, when the organiser gives them.
    captions_url: str | None = None
    region_codes: tuple[str, ...] = ()
    series_code: str | None = None
    series_number: int | None = None
    capacity: int | None = None
    waitlist_enabled: bool = True
    registration_opens_at: AwareDatetime | None = None
    registration_closes_at: AwareDatetime | None = None
    reminder_offsets_hours: tuple[float, ...] = DEFAULT_REMINDER_OFFSETS_HOURS


class EventMessage(Message):
    """Every message about an event carries the whole event as it now is (its snapshot)."""

    TOPIC: ClassVar[str] = EVENTS.name
    event: EventSnapshot

    def partition_key(self) -> str:
        return str(self.event.event_id)


class EventPublished(EventMessage):
    type: Literal["event.published"] = "event.published"
    version: Literal[2] = 2


class EventUpdated(EventMessage):
    """Details changed (title, capacity, venue ...) without moving the event in time."""

    type: Literal["event.updated"] = "event.updated"
    version: Literal[2] = 2
    changed_fields: tuple[str, ...] = ()


class EventRescheduled(EventMessage):
    type: Literal["event.rescheduled"] = "event.rescheduled"
    version: Literal[2] = 2
    previous_starts_at: AwareDatetime
    previous_ends_at: AwareDatetime


class EventWentLive(EventMessage):
    type: Literal["event.went_live"] = "event.went_live"
    version: Literal[2] = 2


class EventEnded(EventMessage):
    type: Literal["event.ended"] = "event.ended"
    version: Literal[2] = 2


class EventCancelled(EventMessage):
    type: Literal["event.cancelled"] = "event.cancelled"
    version: Literal[2] = 2
    reason: str = ""


class EventReplayPublished(EventMessage):
    """The replay of an ended event was published or changed: at any time after the end, as
    often as the organiser changes it. ``previous_replay_url`` is None the first time."""

    type: Literal["event.replay_published"] = "event.replay_published"
    version: Literal[1] = 1
    previous_replay_url: str | None = None


def upcast_event_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no captions: none given (fills in, never overwrites)."""
    event = data.get("event")
    if isinstance(event, dict):
        data["event"] = {"captions_url": None, **event}
    return data


# The messages that were born at version 1 and carry captions from version 2 on.
VERSIONED_EVENT_MESSAGES: tuple[type[EventMessage], ...] = (
    EventPublished,
    EventUpdated,
    EventRescheduled,
    EventWentLive,
    EventEnded,
    EventCancelled,
)

EVENT_MESSAGES: tuple[type[EventMessage], ...] = (*VERSIONED_EVENT_MESSAGES, EventReplayPublished)
