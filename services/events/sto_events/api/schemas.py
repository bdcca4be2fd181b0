"""Request and response bodies of the events API.

Times may come with an offset, or without one as Amsterdam wall-clock time; the domain turns
them into UTC and refuses times that do not exist or are ambiguous.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import EllipsisType
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sto_events.domain import Beacon, Event, to_utc
from stolive_shared.contracts.events import DEFAULT_REMINDER_OFFSETS_HOURS, EventKind, EventStatus

_STREAM_URL_NL = {
    "url_scheme": "Het adres van de uitzending begint met https:// of http://.",
    "url_too_long": "Dit webadres is te lang (hooguit 2083 tekens).",
}


_CAPTIONS_URL_NL = {
    **_STREAM_URL_NL,
    "url_scheme": "Het adres van de ondertiteling (WebVTT) begint met https:// of http://.",
}


def _http_url(messages: dict[str, str]) -> WrapValidator:
    """An http(s) address, or a Dutch 422 for this field with ``messages``: the watch page
    loads nothing else (rtmp://, javascript:, file: and the like are refused here, at entry)."""

    def check(value: object, handler: ValidatorFunctionWrapHandler) -> HttpUrl:
        try:
            url: HttpUrl = handler(value)
        except ValidationError as exc:
            kind = str(exc.errors()[0]["type"])
            kind = kind if kind in messages else "url_parsing"
            message = messages.get(kind, "Dit is geen geldig webadres (begin met https://).")
            raise PydanticCustomError(kind, message) from None
        return url

    return WrapValidator(check)


# A stream or replay address (the same player plays both).
StreamUrl = Annotated[HttpUrl, _http_url(_STREAM_URL_NL)]
# WebVTT captions of the stream and the replay (a <track> of the watch page's <video>).
CaptionsUrl = Annotated[HttpUrl, _http_url(_CAPTIONS_URL_NL)]


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=10_000)
    starts_at: datetime
    ends_at: datetime
    venue: str | None = Field(default=None, max_length=300)
    stream_url: StreamUrl | None = None
    captions_url: CaptionsUrl | None = None
    region_codes: list[str] = Field(default_factory=list, max_length=78)
    series_code: str | None = Field(default=None, max_length=40)
    series_number: int | None = Field(default=None, ge=1)
    capacity: int | None = Field(default=None, ge=0, le=100_000)
    waitlist_enabled: bool = True
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    reminder_offsets_hours: list[float] = Field(default_factory=lambda: [24.0, 1.0], max_length=6)

    def to_event(self) -> Event:
        """A new draft; Amsterdam wall-clock times become UTC (or are refused)."""
        return Event(
            id=uuid.uuid4(),
            kind=self.kind,
            title=self.title.strip(),
            description=self.description,
            starts_at=to_utc(self.starts_at, "starts_at"),
            ends_at=to_utc(self.ends_at, "ends_at"),
            venue=self.venue or None,
            stream_url=str(self.stream_url) if self.stream_url else None,
            captions_url=str(self.captions_url) if self.captions_url else None,
            region_codes=tuple(sorted(set(self.region_codes))),
            series_code=self.series_code or None,
            series_number=self.series_number,
            capacity=self.capacity,
            waitlist_enabled=self.waitlist_enabled,
            registration_opens_at=_utc_or_none(self.registration_opens_at, "registration_opens_at"),
            registration_closes_at=_utc_or_none(
                self.registration_closes_at, "registration_closes_at"
            ),
            reminder_offsets_hours=tuple(self.reminder_offsets_hours)
            or DEFAULT_REMINDER_OFFSETS_HOURS,
        )


def _utc_or_none(moment: datetime | None, field: str) -> datetime | None:
    return to_utc(moment, field) if moment is not None else None


class EventUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=3, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    venue: str | None = Field(default=None, max_length=300)
    stream_url: StreamUrl | None = None
    replay_url: StreamUrl | None = None
    captions_url: CaptionsUrl | None = None
    capacity: int | None = Field(default=None, ge=0, le=100_000)
    waitlist_enabled: bool | None = None
    region_codes: list[str] | None = Field(default=None, max_length=78)
    reminder_offsets_hours: list[float] | None = Field(default=None, max_length=6)
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None

    def changes(self) -> dict[str, object]:
        """Only the fields the caller sent, in the domain's types (times in UTC)."""
        changes: dict[str, object] = {}
        for name, value in self.model_dump(exclude_unset=True).items():
            if name in ("stream_url", "replay_url", "captions_url") and value is not None:
                value = str(value)
            if name in ("registration_opens_at", "registration_closes_at"):
                value = _utc_or_none(value, name)
            if name == "region_codes" and value is not None:
                value = tuple(sorted(set(value)))
            if name == "reminder_offsets_hours" and value is not None:
                value = tuple(value)
            changes[name] = value
        return changes


class Reschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime
    ends_at: datetime


class Cancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class Ending(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replay_url: StreamUrl | None = None


class ReplayIn(BaseModel):
    """The replay of an ended event, and its captions: set or changed at any time after the
    end. Captions left out stay as they are; ``"captions_url": null`` removes them."""

    model_config = ConfigDict(extra="forbid")

    replay_url: StreamUrl
    captions_url: CaptionsUrl | None = None

    def captions(self) -> str | EllipsisType | None:
        """The captions to set: ``...`` (as they are) unless the request named them."""
        if "captions_url" not in self.model_fields_set:
            return ...
        return str(self.captions_url) if self.captions_url else None


class EventPublic(BaseModel):
    id: uuid.UUID
    kind: EventKind
    status: EventStatus
    revision: int
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    stream_url: str | None
    replay_url: str | None
    captions_url: str | None
    region_codes: list[str]
    series_code: str | None
    series_number: int | None
    capacity: int | None
    waitlist_enabled: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    reminder_offsets_hours: list[float]

    @classmethod
    def of(cls, event: Event) -> EventPublic:
        return cls(
            id=event.id,
            kind=event.kind,
            status=event.status,
            revision=event.revision,
            title=event.title,
            description=event.description,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            venue=event.venue,
            stream_url=event.stream_url,
            replay_url=event.replay_url,
            captions_url=event.captions_url,
            region_codes=list(event.region_codes),
            series_code=event.series_code,
            series_number=event.series_number,
            capacity=event.capacity,
            waitlist_enabled=event.waitlist_enabled,
            registration_opens_at=event.registration_opens_at,
            registration_closes_at=event.registration_closes_at,
            reminder_offsets_hours=list(event.reminder_offsets_hours),
        )


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=2, max_length=120)
    province: str = Field(default="", max_length=60)
    supra_region: str | None = Field(default=None, max_length=120)


class RegionPublic(RegionIn):
    pass


class SeriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=2, max_length=120)
    description: str = Field(default="", max_length=2_000)


class SeriesPublic(SeriesIn):
    code: str


class CalendarMonth(BaseModel):
    month: int
    name: str
    events: list[EventPublic]


class CalendarPublic(BaseModel):
    """A year of published events by Amsterdam month (an event belongs to its start's month)."""

    year: int
    timezone: str = "Europe/Amsterdam"
    months: list[CalendarMonth]


MAX_POSITION_S = 24 * 3600  # no recording of the programme is longer than a day


def _position(value: object, handler: ValidatorFunctionWrapHandler) -> float | None:
    """Seconds into the recording: a number from 0 to 24 hours, or a Dutch 422."""
    try:
        position: float | None = handler(value)
    except ValidationError:
        position = -1.0
    if position is not None and not 0 <= position <= MAX_POSITION_S:
        raise PydanticCustomError(
            "position_s",
            "De positie in de opname is een getal in seconden, van 0 tot 86400 (24 uur).",
        )
    return position


class BeaconIn(BaseModel):
    """One report from a player. ``viewer_id`` is opaque: an anonymous id the browser made,
    or a registration's (``v_…``), which needs ``viewer_token``, the token of that person's
    signed watch link."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    viewer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    viewer_token: str | None = Field(default=None, max_length=128)
    action: Literal["join", "heartbeat", "leave"]
    mode: Literal["live", "replay"] = "live"
    client_ts: AwareDatetime
    # During a replay: where the player is, in seconds from the recording's start.
    position_s: Annotated[float | None, WrapValidator(_position)] = None

    @model_validator(mode="after")
    def _position_only_in_a_replay(self) -> BeaconIn:
        if self.position_s is not None and self.mode != "replay":
            raise PydanticCustomError(
                "position_live", "Alleen een terugblik heeft een positie (position_s)."
            )
        return self

    def to_domain(self) -> Beacon:
        return Beacon(
            self.event_id,
            self.viewer_id,
            self.action,
            self.mode,
            self.client_ts,
            self.viewer_token,
            self.position_s,
        )


BEACONS: TypeAdapter[BeaconIn | list[BeaconIn]] = TypeAdapter(BeaconIn | list[BeaconIn])
