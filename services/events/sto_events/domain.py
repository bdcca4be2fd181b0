"""The events service's rules: kinds, lifecycle, series, regions, time in Europe/Amsterdam,
and which viewer beacons are accepted.

Pure: no database, Kafka or HTTP here. Every change returns the messages it causes, which the
service layer writes to the outbox in the same transaction as the change.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import (
    DEFAULT_REMINDER_OFFSETS_HOURS,
    EventCancelled,
    EventEnded,
    EventKind,
    EventPublished,
    EventReplayPublished,
    EventRescheduled,
    EventSnapshot,
    EventStatus,
    EventUpdated,
    EventWentLive,
)
from stolive_shared.errors import DomainError
from stolive_shared.programme import EVENT_STATUS_NL

PROGRAMME_TZ = ZoneInfo("Europe/Amsterdam")
# Every webinar belongs to a series; without one named it is a numbered STO LIVE broadcast.
DEFAULT_SERIES = "sto-live"


class EventRuleViolation(DomainError):
    """A request the rules refuse (HTTP 422); ``field`` names the input at fault, if any."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field=field)


class InvalidLocalTime(EventRuleViolation):
    """A wall-clock time in Amsterdam that does not exist or is ambiguous (HTTP 422)."""


class IllegalTransition(EventRuleViolation):
    """A lifecycle step not allowed from the event's status (HTTP 409)."""

    status = 409


class DuplicateSeriesNumber(EventRuleViolation):
    """The broadcast number is taken in its series (HTTP 409)."""

    status = 409

    @classmethod
    def taken(cls, number: int | None) -> DuplicateSeriesNumber:
        return cls(f"uitzending #{number} bestaat al in deze reeks", "series_number")


def to_utc(moment: datetime, field: str) -> datetime:
    """An aware UTC datetime; a naive one is read as Amsterdam wall-clock time.

    A wall-clock time skipped by the spring-forward change (e.g. 2026-03-29 02:30) does not
    exist and is refused; one that occurs twice in the autumn (2026-10-25 02:30) is refused
    unless the caller gives the offset explicitly.
    """
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment.astimezone(UTC)
    early = moment.replace(tzinfo=PROGRAMME_TZ, fold=0)
    late = moment.replace(tzinfo=PROGRAMME_TZ, fold=1)
    round_trip = early.astimezone(UTC).astimezone(PROGRAMME_TZ).replace(tzinfo=None)
    if round_trip != moment:
        raise InvalidLocalTime(
            f"{moment:%Y-%m-%d %H:%M} bestaat niet in Nederland (de klok springt dan vooruit)",
            field,
        )
    if early.utcoffset() != late.utcoffset():
        raise InvalidLocalTime(
            f"{moment:%Y-%m-%d %H:%M} komt twee keer voor (de klok gaat dan terug); "
            "geef de tijd met UTC-offset, bijvoorbeeld +02:00 of +01:00",
            field,
        )
    return early.astimezone(UTC)


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    kind: EventKind
    title: str
    starts_at: datetime
    ends_at: datetime
    status: EventStatus = "draft"
    revision: int = 1
    description: str = ""
    venue: str | None = None
    stream_url: str | None = None
    replay_url: str | None = None
    captions_url: str | None = None
    region_codes: tuple[str, ...] = ()
    series_code: str | None = None
    series_number: int | None = None
    capacity: int | None = None
    waitlist_enabled: bool = True
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    reminder_offsets_hours: tuple[float, ...] = DEFAULT_REMINDER_OFFSETS_HOURS
    events: list[Message] = field(default_factory=list, compare=False, repr=False)

    def snapshot(self) -> EventSnapshot:
        return EventSnapshot(
            event_id=self.id,
            revision=self.revision,
            kind=self.kind,
            status=self.status,
            title=self.title,
            description=self.description,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            venue=self.venue,
            stream_url=self.stream_url,
            replay_url=self.replay_url,
            captions_url=self.captions_url,
            region_codes=self.region_codes,
            series_code=self.series_code,
            series_number=self.series_number,
            capacity=self.capacity,
            waitlist_enabled=self.waitlist_enabled,
            registration_opens_at=self.registration_opens_at,
            registration_closes_at=self.registration_closes_at,
            reminder_offsets_hours=self.reminder_offsets_hours,
        )


def validate_new_event(event: Event, now: datetime) -> None:
    if event.ends_at <= event.starts_at:
        raise EventRuleViolation("het einde moet na het begin liggen", "ends_at")
    if event.starts_at <= now:
        raise EventRuleViolation("een nieuw evenement begint in de toekomst", "starts_at")
    _check_details(event)
    if event.kind != "webinar" and (event.series_code or event.series_number):
        raise EventRuleViolation("alleen webinars horen bij een reeks", "series_code")


def _check_details(event: Event) -> None:
    """What holds for an event's details, new or changed."""
    if event.kind == "regional_meeting" and not event.region_codes:
        raise EventRuleViolation(
            "een regionale bijeenkomst hoort bij minstens één regio", "region_codes"
        )
    if event.kind != "webinar" and event.capacity is None:
        raise EventRuleViolation("een fysieke bijeenkomst heeft een capaciteit", "capacity")
    if event.capacity is not None and event.capacity < 0:
        raise EventRuleViolation("de capaciteit kan niet negatief zijn", "capacity")
    opens, closes = event.registration_opens_at, event.registration_closes_at
    if opens and closes and closes <= opens:
        raise EventRuleViolation("de inschrijving sluit na het openen", "registration_closes_at")
    if any(hours <= 0 for hours in event.reminder_offsets_hours):
        raise EventRuleViolation("herinneringen gaan vóór het begin uit", "reminder_offsets_hours")
    if closes and closes > event.ends_at:
        raise EventRuleViolation(
            "de inschrijving sluit uiterlijk aan het einde", "registration_closes_at"
        )


@dataclass(frozen=True)
class Series:
    """A numbered run of webinars, such as the STO LIVE broadcasts."""

    code: str
    title: str
    description: str = ""


def in_series(event: Event, taken_numbers: set[int]) -> Event:
    """The webinar with its series and broadcast number: the next free one unless given."""
    if event.kind != "webinar":
        return event
    series = event.series_code or DEFAULT_SERIES
    number = event.series_number
    if number is None:
        number = max(taken_numbers, default=0) + 1
    elif number in taken_numbers:
        raise DuplicateSeriesNumber.taken(number)
    return replace(event, series_code=series, series_number=number)


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """1 January 00:00 to the next 1 January 00:00 in Amsterdam, as UTC."""
    if not 2000 <= year <= 2100:
        raise EventRuleViolation("kies een jaar tussen 2000 en 2100", "year")
    start = datetime(year, 1, 1, tzinfo=PROGRAMME_TZ).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=PROGRAMME_TZ).astimezone(UTC)
    return start, end


_ALLOWED: dict[str, set[EventStatus]] = {
    "publish": {"draft"},
    "go_live": {"published"},
    "end": {"live", "published"},
    "cancel": {"draft", "published"},
    "reschedule": {"draft", "published"},
    "update": {"draft", "published", "live"},
    "replay": {"ended"},
}


def _require(event: Event, action: str) -> None:
    if event.status not in _ALLOWED[action]:
        raise IllegalTransition(
            f"kan '{action}' niet uitvoeren: het evenement is {EVENT_STATUS_NL[event.status]}"
        )


def _next(event: Event, **changes: Any) -> Event:
    return replace(event, revision=event.revision + 1, events=[], **changes)


def publish(event: Event) -> Event:
    _require(event, "publish")
    changed = _next(event, status="published")
    changed.events.append(EventPublished.create(event=changed.snapshot()))
    return changed


def go_live(event: Event) -> Event:
    _require(event, "go_live")
    changed = _next(event, status="live")
    changed.events.append(EventWentLive.create(event=changed.snapshot()))
    return changed


def end(event: Event, replay_url: str | None = None) -> Event:
    """The event is over. With a replay address (given now, or earlier while it was live) a
    second change follows: ``event.replay_published``, the one message that means "the replay
    is there", whenever that is (here, or later by ``publish_replay``)."""
    _require(event, "end")
    ended = _next(event, status="ended", replay_url=replay_url or event.replay_url)
    ended.events.append(EventEnded.create(event=ended.snapshot()))
    if not ended.replay_url:
        return ended
    published = _next(ended)
    published.events.extend(ended.events)
    published.events.append(EventReplayPublished.create(event=published.snapshot()))
    return published


def publish_replay(
    event: Event, replay_url: str, captions_url: str | EllipsisType | None = ...
) -> Event:
    """Set or change an ended event's replay and its captions (``...``: as they are), at any
    time after the end; the same values again change nothing (and send nothing).

    Captions often come later, made from the recording: a change of only them is an
    ``event.replay_published`` too (``previous_replay_url`` the unchanged address), whose
    consumers keep the whole snapshot and mail "Bekijk de terugblik" once per registration
    ever; ``event.updated`` means a change ahead of the registrants (reminders, invitations)."""
    if event.status not in _ALLOWED["replay"]:
        raise IllegalTransition(
            "een terugblik kan alleen bij een afgelopen evenement; dit evenement is "
            f"{EVENT_STATUS_NL[event.status]}"
        )
    captions = event.captions_url if captions_url is ... else captions_url
    if (replay_url, captions) == (event.replay_url, event.captions_url):
        return event
    changed = _next(event, replay_url=replay_url, captions_url=captions)
    changed.events.append(
        EventReplayPublished.create(event=changed.snapshot(), previous_replay_url=event.replay_url)
    )
    return changed


def cancel(event: Event, reason: str) -> Event:
    _require(event, "cancel")
    changed = _next(event, status="cancelled")
    changed.events.append(EventCancelled.create(event=changed.snapshot(), reason=reason))
    return changed


def reschedule(event: Event, starts_at: datetime, ends_at: datetime, now: datetime) -> Event:
    _require(event, "reschedule")
    if ends_at <= starts_at:
        raise EventRuleViolation("het einde moet na het begin liggen", "ends_at")
    if starts_at <= now:
        raise EventRuleViolation("een evenement verplaats je naar de toekomst", "starts_at")
    changed = _next(event, starts_at=starts_at, ends_at=ends_at)
    if event.status == "published":
        changed.events.append(
            EventRescheduled.create(
                event=changed.snapshot(),
                previous_starts_at=event.starts_at,
                previous_ends_at=event.ends_at,
            )
        )
    return changed


EditableField = Literal[
    "title",
    "description",
    "venue",
    "stream_url",
    "replay_url",
    "captions_url",
    "capacity",
    "waitlist_enabled",
    "registration_opens_at",
    "registration_closes_at",
    "reminder_offsets_hours",
    "region_codes",
]


def update(event: Event, changes: dict[str, object]) -> Event:
    _require(event, "update")
    changes = {k: v for k, v in changes.items() if getattr(event, k) != v}
    if not changes:
        return event
    changed = _next(event, **changes)
    _check_details(changed)
    if event.status != "draft":
        changed.events.append(
            EventUpdated.create(
                event=changed.snapshot(),
                changed_fields=tuple(sorted(changes)),
            )
        )
    return changed


# -- regions -----------------------------------------------------------------------------

REGION_CODE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Region:
    """One of the programme's STO regions; ``supra_region`` groups them for larger meetings."""

    code: str
    name: str
    province: str = ""
    supra_region: str | None = None


class RegionImportError(EventRuleViolation):
    """A regions CSV the import refuses; the message names the line."""


def parse_regions_csv(text: str) -> list[Region]:
    """Regions from CSV with a header ``code,name,province,supra_region`` (``;`` works too).

    Spreadsheet exports in the Netherlands often use ``;``; a byte-order mark is ignored. The
    whole file is refused on the first bad line, so an import never half-succeeds.
    """
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = tuple((name or "").strip().lower() for name in reader.fieldnames or ())
    missing = [column for column in ("code", "name") if column not in header]
    if missing:
        raise RegionImportError(f"kolom ontbreekt in de kopregel: {', '.join(missing)}")
    reader.fieldnames = list(header)
    regions: dict[str, Region] = {}
    for row in reader:
        line = reader.line_num
        values = {key: (value or "").strip() for key, value in row.items() if key}
        if not any(values.values()):
            continue
        code, name = values.get("code", "").lower(), values.get("name", "")
        if not REGION_CODE.match(code) or len(code) > 40:
            raise RegionImportError(
                f"regel {line}: code '{code}' mag alleen kleine letters, cijfers en - bevatten"
            )
        if not 2 <= len(name) <= 120:
            raise RegionImportError(f"regel {line}: de naam van {code} ontbreekt of is te lang")
        if code in regions:
            raise RegionImportError(f"regel {line}: regio {code} staat er twee keer in")
        regions[code] = Region(
            code=code,
            name=name,
            province=values.get("province", "")[:60],
            supra_region=values.get("supra_region") or None,
        )
    if not regions:
        raise RegionImportError("het bestand bevat geen regio's")
    return list(regions.values())


# -- viewer beacons ----------------------------------------------------------------------

BeaconAction = Literal["join", "heartbeat", "leave"]
ViewingMode = Literal["live", "replay"]


@dataclass(frozen=True)
class Beacon:
    event_id: uuid.UUID
    viewer_id: str
    action: BeaconAction
    mode: ViewingMode
    client_ts: datetime
    viewer_token: str | None = None
    # During a replay: seconds into the recording (the player's currentTime).
    position_s: float | None = None


class BeaconRefused(DomainError):
    """A beacon the rules refuse; ``status`` is the HTTP answer the player gets."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status=status)


def check_viewer(beacon: Beacon, proven_viewer: str | None) -> None:
    """A registration's viewer id (``v_…``) counts toward that person's attendance, so only the
    token of their signed watch link may name it (``proven_viewer``: the id that token
    proves, if any); any other id is anonymous and counts in the live and view figures only."""
    if not beacon.viewer_id.startswith("v_"):
        return
    if proven_viewer != beacon.viewer_id:
        raise BeaconRefused("deze kijklink is niet geldig", 403)


def check_beacon(beacon: Beacon, status: EventStatus | None) -> None:
    """Only public events are watched; live viewing only while the event is live.

    A replay may be watched while the broadcast is still live (someone who started late) or
    after it ended. A live ``leave`` after the end is accepted: it closes a real live session.
    """
    if status is None or status in ("draft", "cancelled"):
        raise BeaconRefused("onbekend evenement", 404)
    if beacon.mode == "live" and status != "live":
        # Someone who watched live may still say goodbye after the broadcast ended.
        if not (beacon.action == "leave" and status == "ended"):
            raise BeaconRefused(f"het evenement is niet live maar {EVENT_STATUS_NL[status]}", 409)
    if beacon.mode == "replay" and status not in ("live", "ended"):
        raise BeaconRefused("de terugkijkversie is er nog niet", 409)


class ViewerThrottle:
    """At most one join or heartbeat per viewer of an event per ``min_interval_s``.

    A ``leave`` always passes and forgets the viewer, so a page reload (leave, then join)
    is not throttled. Times come from the caller (a monotonic clock), keeping this pure.
    Each API process throttles on its own: behind several, a viewer may get one beacon per
    process through in 5 s, which downstream counts (sets of viewers) absorb.
    """

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._last: dict[tuple[uuid.UUID, str], float] = {}

    def allow(self, beacon: Beacon, now: float) -> bool:
        key = (beacon.event_id, beacon.viewer_id)
        if beacon.action == "leave":
            self._last.pop(key, None)
            return True
        last = self._last.get(key)
        if last is not None:
            if now - last < self.min_interval_s:
                return False
            # Moved to the end: the dict stays in order of last beacon, oldest first.
            del self._last[key]
        self._last[key] = now
        return True

    def forget_older_than(self, now: float) -> int:
        """Drop viewers not heard from within the interval; keeps memory at the active set.

        Only the stale front of the dict is visited, so tidying costs nothing per active viewer.
        """
        stale = []
        for key, last in self._last.items():
            if now - last < self.min_interval_s:
                break
            stale.append(key)
        for key in stale:
            del self._last[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._last)


def beacon_clock_skew_ok(beacon: Beacon, received_at: datetime) -> bool:
    """A client timestamp more than a day off is a broken clock or a forged beacon."""
    return abs(beacon.client_ts - received_at) <= timedelta(days=1)
