"""Analytics rules, pure: figures are computed from sets keyed by id, never from ``+= 1``.

At-least-once delivery replays records after a crash, and two workers may both see a record
during a rebalance; every rule here gives the same answer however often, and in whatever
order, a record is applied.

Live viewers
------------
A viewer is *live* while all of these hold:

- their newest beacon (by ``received_at``, the events service's clock, never the client's) is
  younger than the live timeout (75 s by default: two missed 30 s heartbeats), so a closed
  laptop stops counting without ever sending ``leave``;
- that newest beacon is not a ``leave``;
- that newest beacon was sent in ``live`` mode (replay watching is not live watching).

Only the newest beacon of a viewer matters ("newest timestamp wins"), so a duplicate changes
nothing and a beacon that arrives after a newer one (reordering, a replay after a crash) is
ignored. At equal timestamps a ``leave`` wins, so the outcome does not depend on arrival order.
The count is the size of a set of viewer ids, never a counter. ``LiveViewers`` keeps the set
and an index by second so that expiry costs only the viewers that actually expire.

Watching history
----------------
What a viewer watched is kept as the set of *minutes* (whole minutes since the epoch, from
``received_at``) in which a beacon of theirs arrived, per mode, and, for replay beacons that
carry the player's position (``position_s``, viewer.beacon v2), the set of *minutes of the
recording* they showed (``floor(position_s / 60)``). From those sets alone:

- **views**: runs of consecutive clock minutes per viewer and mode; a minute without any
  beacon ends a view (with 30 s heartbeats a watching viewer never leaves a minute empty). A
  viewer who leaves and comes back within the same or the next minute continues the same view;
- **watch minutes live**: the number of (viewer, clock minute) entries in live mode;
- **watch minutes replay** (``replay_minutes``), per viewer: the number of *distinct minutes
  of the recording* they watched, so watching minute 5 twice counts once and skipping ahead
  counts only what was shown; a viewer none of whose replay beacons carried a position (an
  older player) falls back to the clock-minute rule;
- **unique viewers**: distinct viewer ids, live and replay together.

Sets of minutes are idempotent and order-free, so a recount from the topic gives exactly the
figures the workers wrote.

Attendance
----------
Two kinds, each stated once (``attendance_kind``), among confirmed registrants, with N the
setting ``attendance_min_minutes`` and D ``replay_attendance_days``:

- **live**: at least N minutes watched live, or checked in at the venue;
- **replay**: not live, and at least N replay minutes (the rule above) watched no later than
  D days after the end. A recording minute counts from the first time it was shown.

When a figure is final
----------------------
- live figures (live count, peak, views and minutes live, average live viewers) and live
  attendance: final at the finalisation, a short grace period after the end;
- replay attendance: final D days after the end (until then a late replay attendee gets
  their certificate and one ``attendance.recorded``);
- views, unique viewers and watch minutes (replay) and the series totals: never final; they
  follow the viewing whenever it happens and carry the moment they were brought up to date.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

STATUSES = ("confirmed", "waitlisted", "cancelled")
UNKNOWN = "onbekend"
_ACTION_RANK = {"heartbeat": 0, "join": 1, "leave": 2}


# -- registrations ------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationTally:
    confirmed: int = 0
    waitlisted: int = 0
    cancelled: int = 0


def tally(status_by_registration: Mapping[str, str]) -> RegistrationTally:
    counts = Counter(status_by_registration.values())
    return RegistrationTally(**{status: counts.get(status, 0) for status in STATUSES})


def with_status(
    status_by_registration: Mapping[str, str], registration_id: str, status: str
) -> dict[str, str]:
    """The mapping after a registration took ``status`` (idempotent)."""
    updated = dict(status_by_registration)
    updated[registration_id] = status
    return updated


@dataclass(frozen=True)
class Profile:
    """What analytics keeps of a registration: enough to tie watching to region, role and
    school site, and the contact as the message sealed it (JSON of a ``Sealed``, None when
    unreadable): the worker's tables and their changelog topics hold no name in clear.
    ``check_in_undone``: the last word on the check-in was an organiser taking it back."""

    viewer_id: str
    region_code: str | None
    role: str
    sealed_contact: str | None
    checked_in: bool = False
    school_code: str | None = None
    check_in_undone: bool = False

    def as_list(self) -> list[object]:
        return [
            self.viewer_id,
            self.region_code,
            self.role,
            self.sealed_contact,
            self.checked_in,
            self.school_code,
            self.check_in_undone,
        ]

    @classmethod
    def from_list(cls, raw: Sequence[object]) -> Profile:
        """Also a profile written before school sites (five fields: no school, no undo)."""
        viewer_id, region_code, role, sealed_contact, checked_in = raw[:5]
        school_code = raw[5] if len(raw) > 5 else None
        undone = raw[6] if len(raw) > 6 else False
        # A profile written before contacts were sealed held the name there: not read.
        sealed = sealed_contact if isinstance(sealed_contact, str) else None
        return cls(
            viewer_id=str(viewer_id),
            region_code=None if region_code is None else str(region_code),
            role=str(role),
            sealed_contact=sealed if sealed and sealed.startswith("{") else None,
            checked_in=bool(checked_in),
            school_code=None if school_code is None else str(school_code),
            check_in_undone=bool(undone),
        )


def with_profile(
    profiles: Mapping[str, list[object]],
    registration_id: str,
    profile: Profile,
    *,
    undo_check_in: bool = False,
) -> dict[str, list[object]]:
    """The profiles after a registration message: its categories (role, region, school) and
    contact replace the old. A check-in, once made, is kept, unless ``undo_check_in``: an
    organiser took it back (until someone checks the person in again)."""
    updated = dict(profiles)
    raw = updated.get(registration_id)
    known = Profile.from_list(raw) if raw is not None else None
    if undo_check_in:
        checked_in, undone = False, True
    elif profile.checked_in:
        checked_in, undone = True, False
    else:
        checked_in = known is not None and known.checked_in
        undone = known is not None and known.check_in_undone
    updated[registration_id] = dataclasses.replace(
        profile, checked_in=checked_in, check_in_undone=undone
    ).as_list()
    return updated


@dataclass(frozen=True)
class SchoolTally:
    """Registrations and attendance of one school site (None: another school, typed, or
    none given)."""

    school_code: str | None
    confirmed: int
    attended: int


def school_tallies(registrants: Iterable[tuple[str | None, bool, bool]]) -> list[SchoolTally]:
    """Per school site, from (school code, confirmed, attended) of each registrant: the
    confirmed ones and those of them who attended; most confirmed first, the rest last."""
    confirmed: Counter[str | None] = Counter()
    present: Counter[str | None] = Counter()
    for school_code, is_confirmed, has_attended in registrants:
        if is_confirmed:
            confirmed[school_code] += 1
            present[school_code] += has_attended
    return sorted(
        (SchoolTally(code, confirmed[code], present[code]) for code in confirmed),
        key=lambda t: (t.school_code is None, -t.confirmed, t.school_code or ""),
    )


# -- live viewers -------------------------------------------------------------------------


@dataclass(slots=True)
class _Latest:
    at: float
    action: str
    mode: str


class LiveViewers:
    """The live viewers of one event (see the module docstring for the rules).

    Times are POSIX seconds. ``now`` is passed in, never read here.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._latest: dict[str, _Latest] = {}
        self._live: set[str] = set()
        # second of the newest beacon -> live viewers whose newest beacon fell in it
        self._by_second: dict[int, set[str]] = {}
        self.newest_at = 0.0

    def apply(self, viewer_id: str, action: str, mode: str, at: float, now: float) -> bool:
        """Take one beacon; True when it was the viewer's newest (a duplicate is not)."""
        known = self._latest.get(viewer_id)
        if known is not None and (
            at < known.at
            or (at == known.at and _ACTION_RANK.get(action, 0) <= _ACTION_RANK[known.action])
        ):
            return False
        if known is not None and viewer_id in self._live:
            self._forget_second(viewer_id, known.at)
        self._latest[viewer_id] = _Latest(at, action, mode)
        self.newest_at = max(self.newest_at, at)
        if action != "leave" and mode == "live" and at > now - self.timeout_s:
            self._live.add(viewer_id)
            self._by_second.setdefault(int(at), set()).add(viewer_id)
        else:
            self._live.discard(viewer_id)
        return True

    def expire(self, now: float) -> int:
        """Drop live viewers whose newest beacon is too old; return how many stopped counting.

        Beacon history older than the timeout is forgotten too: a late beacon older than that
        could never count again, so nothing is lost by not remembering what came after it.
        """
        horizon = now - self.timeout_s
        expired = 0
        for second in [s for s in self._by_second if s + 1 <= horizon]:
            for viewer_id in self._by_second.pop(second):
                # A viewer sits in the bucket of their newest beacon only: all expire here.
                self._live.discard(viewer_id)
                expired += 1
        if len(self._latest) > 2 * len(self._live) + 1000:
            self._latest = {v: s for v, s in self._latest.items() if s.at > horizon}
        return expired

    def count(self) -> int:
        return len(self._live)

    def live_viewer_ids(self) -> frozenset[str]:
        return frozenset(self._live)

    def _forget_second(self, viewer_id: str, at: float) -> None:
        bucket = self._by_second.get(int(at))
        if bucket is not None:
            bucket.discard(viewer_id)
            if not bucket:
                del self._by_second[int(at)]


def breakdown(
    viewer_ids: Iterable[str], profile_by_viewer: Mapping[str, Profile]
) -> tuple[dict[str, int], dict[str, int]]:
    """Live viewers per region and per role; viewers without a registration are 'onbekend'."""
    regions: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    for viewer_id in viewer_ids:
        profile = profile_by_viewer.get(viewer_id)
        regions[(profile.region_code if profile else None) or UNKNOWN] += 1
        roles[profile.role if profile else UNKNOWN] += 1
    return dict(regions), dict(roles)


@dataclass(frozen=True)
class Peak:
    viewers: int = 0
    at: float = 0.0

    def higher(self, viewers: int, at: float) -> Peak:
        """The first moment of the highest count stays the peak (max is idempotent)."""
        if viewers > self.viewers:
            return Peak(viewers, at)
        return self


# -- watching history ---------------------------------------------------------------------


def minute_of(at: datetime | float) -> int:
    """Whole minutes since the epoch: the bucket a beacon's ``received_at`` falls in."""
    seconds = at.timestamp() if isinstance(at, datetime) else at
    return math.floor(seconds / 60)


def runs(minutes: Iterable[int]) -> int:
    """How many runs of consecutive minutes: the number of views in these minutes."""
    count = 0
    previous: int | None = None
    for minute in sorted(set(minutes)):
        if previous is None or minute != previous + 1:
            count += 1
        previous = minute
    return count


def recording_minute(position_s: float) -> int:
    """The minute of the recording a replay beacon's position falls in."""
    return math.floor(position_s / 60)


def replay_minutes(recording: Collection[int], clock: Collection[int]) -> int:
    """One viewer's replay watch minutes: distinct minutes of the recording when any of
    their replay beacons carried a position, else distinct clock minutes (older players)."""
    return len(set(recording)) if recording else len(set(clock))


@dataclass(frozen=True)
class WatchFigures:
    views_live: int = 0
    views_replay: int = 0
    unique_viewers: int = 0
    watch_minutes_live: int = 0
    watch_minutes_replay: int = 0

    @property
    def views(self) -> int:
        return self.views_live + self.views_replay


def watch_figures(
    minutes: Mapping[tuple[str, str], set[int]],
    recording: Mapping[str, set[int]] | None = None,
) -> WatchFigures:
    """Figures from (viewer id, mode) -> clock minutes watched and viewer id -> minutes of
    the recording watched: the recount rule."""
    recording = recording or {}
    views = Counter[str]()
    live_minutes = 0
    replay_watched = 0
    for (viewer, mode), seen in minutes.items():
        views[mode] += runs(seen)
        if mode == "live":
            live_minutes += len(seen)
        else:
            replay_watched += replay_minutes(recording.get(viewer, set()), seen)
    return WatchFigures(
        views_live=views["live"],
        views_replay=views["replay"],
        unique_viewers=len({viewer for (viewer, _mode), seen in minutes.items() if seen}),
        watch_minutes_live=live_minutes,
        watch_minutes_replay=replay_watched,
    )


def average_live_viewers(live_watch_minutes: float, broadcast_minutes: float) -> float:
    """Live watch time divided by the broadcast's duration (0 for a broadcast of no length)."""
    if broadcast_minutes <= 0:
        return 0.0
    return live_watch_minutes / broadcast_minutes


# -- attendance ---------------------------------------------------------------------------


AttendedAs = Literal["live", "replay"]


def attendance_kind(
    minutes_live: float, minutes_replay: float, checked_in: bool, min_minutes: float
) -> AttendedAs | None:
    """How a registrant attended (see the module docstring), or None. ``minutes_replay``
    counts only what was watched within the replay window."""
    if checked_in or minutes_live >= min_minutes:
        return "live"
    if minutes_replay >= min_minutes:
        return "replay"
    return None


def replay_window_end(ended_at: datetime, days: float) -> datetime:
    """Replay watched until this moment counts toward replay attendance."""
    return ended_at + timedelta(days=days)


@dataclass(frozen=True)
class Funnel:
    """Registrations to attendance. Attendance is counted among confirmed registrants."""

    registered: int
    confirmed: int
    waitlisted: int
    cancelled: int
    watched: int
    attended: int
    attended_live: int = 0
    attended_replay: int = 0

    @property
    def no_shows(self) -> int:
        """Confirmed registrants who did not attend (watched too little or not at all)."""
        return self.confirmed - self.attended

    @property
    def attendance_rate(self) -> float:
        return self.attended / self.confirmed if self.confirmed else 0.0


# -- series -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BroadcastSummary:
    event_id: str
    title: str
    series_number: int | None
    starts_at: datetime
    views: int
    average_live_viewers: float


@dataclass(frozen=True)
class SeriesFigures:
    series_code: str
    broadcasts: int
    total_views: int
    average_live_viewers: float
    trend_per_broadcast: float
    history: tuple[BroadcastSummary, ...]
    # When the newest of these figures was computed (they follow replay viewing).
    updated_at: datetime | None = None

    @property
    def trend(self) -> str:
        """'stijgend', 'dalend' or 'gelijk': the sign of the fitted line, 1 % of the mean."""
        if abs(self.trend_per_broadcast) <= 0.01 * max(self.average_live_viewers, 1.0):
            return "gelijk"
        return "stijgend" if self.trend_per_broadcast > 0 else "dalend"


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their position (0 for fewer than two)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    denominator = sum((x - mean_x) ** 2 for x in range(n))
    return numerator / denominator


def series_figures(series_code: str, broadcasts: Sequence[BroadcastSummary]) -> SeriesFigures:
    """Totals of the ended broadcasts of a series, in broadcast order."""
    ordered = sorted(
        broadcasts,
        key=lambda b: (b.series_number if b.series_number is not None else 1 << 30, b.starts_at),
    )
    averages = [b.average_live_viewers for b in ordered]
    return SeriesFigures(
        series_code=series_code,
        broadcasts=len(ordered),
        total_views=sum(b.views for b in ordered),
        average_live_viewers=sum(averages) / len(averages) if averages else 0.0,
        trend_per_broadcast=slope(averages),
        history=tuple(ordered),
    )
