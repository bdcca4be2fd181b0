"""The watch page's rules: what it plays, which state it shows, and when its beacons go.

Pure: the page (``templates/watch.html``) renders these, and its script
(``static/player/watch.js``) follows them as data, deciding nothing of its own.

**What plays.** ``stream_source`` sorts an address. HLS (a path ending in ``.m3u8``) plays in a
``<video>``: natively where the browser plays HLS itself (``canPlayType``), through the vendored
hls.js otherwise. A YouTube or Vimeo address is embedded with that service's iframe player and
followed through its official iframe API. Any other http(s) address gets an "Open de uitzending"
link; anything else (another scheme, no address) plays nothing. The organiser's form and the API
refuse a stream or replay address that is not http(s) (``api/schemas.py``).

**When beacons go.** ``BEACON_RULES`` maps (session state, player event) to (beacon, next
state): a join on the first ``playing``, a leave on pause, end, failure or leaving the page,
heartbeats only in ``HEARTBEAT_STATES``. Two rules of judgement:

- *A stall*: while the player buffers, heartbeats go on for ``STALL_LIMIT_S`` seconds (a
  viewer waiting out a short rebuffer is still watching); a longer stall sends a leave, and
  the next ``playing`` a new join.
- *A hidden tab*: keeps counting while the player plays with sound (a webinar is mostly
  speech: listening with the tab in the background is watching). Hidden *and* silent (muted or
  volume 0) sends a leave; visible or audible again, a join. The embedded players report sound
  only where their API answers at once (YouTube does, Vimeo does not: a hidden Vimeo tab keeps
  counting while it plays).

**The embeds.** ``YOUTUBE_STATES`` and ``VIMEO_EVENTS`` turn those players' states into the
events above; the adapters in the script are a few lines that look them up. YouTube and Vimeo
cannot be reached from the machines the tests run on, so these mappings are tested here, as
data (``tests/unit/test_player_states.py``); the table and the beacons are tested end to end
with a real HLS stream (``tests/e2e/test_watch_player.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qs, quote, urlsplit

from stolive_shared.contracts.events import EventStatus

SourceKind = Literal["hls", "youtube", "vimeo", "link", "none"]
WatchState = Literal["upcoming", "live", "replay", "replay_pending", "cancelled"]
SignUp = Literal["open", "not_yet", "closed"]

SessionState = Literal["idle", "watching", "stalled", "stuck", "unseen", "closed"]
PlayerEvent = Literal[
    "playing",  # the media plays (first frame shown, or playing again after buffering)
    "resumed",  # buffering ended (Vimeo's bufferend: also fired after a preload or a seek)
    "paused",
    "buffering",
    "stall_limit",  # the page's own timer: buffering for STALL_LIMIT_S
    "ended",
    "failed",  # the stream does not answer, or cannot be played
    "unseen",  # the tab is hidden and the player silent
    "seen",  # visible again, or audible again while hidden
    "gone",  # the page is left (pagehide)
    "over",  # the broadcast ended (the page's status poll)
    "refused",  # the beacon endpoint does not know the event (404)
]
Beacon = Literal["join", "leave"] | None

STALL_LIMIT_S = 20
HEARTBEAT_STATES: tuple[SessionState, ...] = ("watching", "stalled")

_LEAVE_TO_IDLE: dict[PlayerEvent, tuple[Beacon, SessionState]] = {
    "paused": ("leave", "idle"),
    "ended": ("leave", "idle"),
    "failed": ("leave", "idle"),
    "gone": ("leave", "idle"),
    "over": ("leave", "closed"),
    "refused": (None, "closed"),
    "unseen": ("leave", "unseen"),
}
_BACK_TO_IDLE: dict[PlayerEvent, tuple[Beacon, SessionState]] = {
    "paused": (None, "idle"),
    "ended": (None, "idle"),
    "failed": (None, "idle"),
    "gone": (None, "idle"),
    "over": (None, "closed"),
    "refused": (None, "closed"),
}
BEACON_RULES: dict[SessionState, dict[PlayerEvent, tuple[Beacon, SessionState]]] = {
    # No session: the first frame played starts one.
    "idle": {
        "playing": ("join", "watching"),
        "over": (None, "closed"),
        "refused": (None, "closed"),
    },
    "watching": {**_LEAVE_TO_IDLE, "buffering": (None, "stalled")},
    # Buffering: still a viewer (heartbeats go on) until the stall limit.
    "stalled": {
        **_LEAVE_TO_IDLE,
        "playing": (None, "watching"),
        "resumed": (None, "watching"),
        "stall_limit": ("leave", "stuck"),
    },
    # Buffered too long: the session ended; the media playing again starts a new one.
    "stuck": {**_BACK_TO_IDLE, "playing": ("join", "watching"), "resumed": ("join", "watching")},
    # Hidden and silent: the session ended; seen or heard again starts a new one.
    "unseen": {**_BACK_TO_IDLE, "seen": ("join", "watching")},
    # The broadcast is over or unknown: nothing more is reported from this page.
    "closed": {},
}

# YouTube's IFrame API ``onStateChange`` data: -1 unstarted, 0 ended, 1 playing, 2 paused,
# 3 buffering, 5 cued. Unstarted and cued change nothing. ``onError`` is "failed".
YOUTUBE_STATES: dict[str, PlayerEvent] = {
    "0": "ended",
    "1": "playing",
    "2": "paused",
    "3": "buffering",
}
# Vimeo's player.js events. ``play`` (asked to play) is left out: ``playing`` comes when it
# does; ``bufferend`` is "resumed", which only counts during a stall.
VIMEO_EVENTS: dict[str, PlayerEvent] = {
    "playing": "playing",
    "pause": "paused",
    "ended": "ended",
    "bufferstart": "buffering",
    "bufferend": "resumed",
    "error": "failed",
}

_YOUTUBE_HOSTS = {"youtube.com", "m.youtube.com", "youtube-nocookie.com", "youtu.be"}
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_PATHS = re.compile(r"^/(?:live|embed|shorts|v)/([A-Za-z0-9_-]{11})(?:/|$)")
_VIMEO_HOSTS = {"vimeo.com", "player.vimeo.com"}
_VIMEO_VIDEO = re.compile(r"^/(?:video/)?(\d+)(?:/([0-9a-f]+))?/?$")
_VIMEO_EVENT = re.compile(r"^/event/(\d+)(?:/embed)?/?$")


@dataclass(frozen=True)
class Source:
    """What the page plays: ``url`` goes into the player (for an embed, the embed address);
    ``address`` is the one the organiser gave, the page's "open it elsewhere" link."""

    kind: SourceKind
    url: str = ""
    address: str = ""

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""

    def page_sources(self) -> dict[str, tuple[str, ...]]:
        """What the page's Content-Security-Policy must allow beyond the site itself.

        HLS: the stream's origin for ``<video>`` and for hls.js's requests. An https stream
        may fetch its segments from other https hosts (a CDN), so hls.js may reach ``https:``
        on this page, as ``<video>`` already may on every page. An http stream gets its own
        origin, never ``http:`` as a whole. An embed: its player's origin as a frame.
        """
        if self.kind == "hls":
            https = self.url.startswith("https://")
            return {
                "media-src": () if https else (self.origin,),
                "connect-src": ("https:", self.origin) if https else (self.origin,),
            }
        if self.kind in ("youtube", "vimeo"):
            return {"frame-src": (self.origin,)}
        return {}


NO_SOURCE = Source("none")


def captions_for(source: Source, captions_url: str | None) -> str:
    """The WebVTT captions the page adds to its ``<video>`` as a ``<track>``: only an HLS
    source plays in our own ``<video>`` (an embed shows its own captions), and only an http(s)
    address (the forms refuse others)."""
    if source.kind != "hls" or not captions_url:
        return ""
    parts = urlsplit(captions_url.strip())
    return captions_url if parts.scheme in ("http", "https") and parts.netloc else ""


def captions_sources(captions_url: str) -> dict[str, tuple[str, ...]]:
    """What the page's CSP must allow for the captions: ``media-src`` governs ``<track>``."""
    parts = urlsplit(captions_url)
    return {"media-src": (f"{parts.scheme}://{parts.netloc}",)} if parts.netloc else {}


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host.removeprefix("www.")


def stream_source(address: str | None, page_origin: str = "") -> Source:
    """The player for ``address``; ``page_origin`` (the site's own) goes to YouTube's iframe,
    as its API asks."""
    if not address:
        return NO_SOURCE
    parts = urlsplit(address.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return NO_SOURCE
    host = _host(parts.netloc)
    if parts.path.lower().endswith(".m3u8"):
        return Source("hls", address, address)
    if host in _YOUTUBE_HOSTS:
        video = _youtube_id(host, parts.path, parts.query)
        if video:
            query = "enablejsapi=1&rel=0&playsinline=1"
            if page_origin:
                query += f"&origin={quote(page_origin, safe='')}"
            embed = f"https://www.youtube-nocookie.com/embed/{video}?{query}"
            return Source("youtube", embed, address)
    if host in _VIMEO_HOSTS:
        vimeo = _vimeo_embed(parts.path, parts.query)
        if vimeo:
            return Source("vimeo", vimeo, address)
    return Source("link", address, address)


def _youtube_id(host: str, path: str, query: str) -> str | None:
    if host == "youtu.be":
        candidate = path.strip("/").split("/", 1)[0]
        return candidate if _YOUTUBE_ID.match(candidate) else None
    if path.rstrip("/") == "/watch":
        candidate = (parse_qs(query).get("v") or [""])[0]
        return candidate if _YOUTUBE_ID.match(candidate) else None
    match = _YOUTUBE_PATHS.match(path)
    return match.group(1) if match else None


def _vimeo_embed(path: str, query: str) -> str | None:
    event = _VIMEO_EVENT.match(path)
    if event:
        return f"https://vimeo.com/event/{event.group(1)}/embed?dnt=1"
    video = _VIMEO_VIDEO.match(path)
    if not video:
        return None
    secret = video.group(2) or (parse_qs(query).get("h") or [""])[0]
    extra = f"&h={secret}" if re.fullmatch(r"[0-9a-f]+", secret) else ""
    return f"https://player.vimeo.com/video/{video.group(1)}?dnt=1{extra}"


def watch_state(status: EventStatus, replay_url: str | None) -> WatchState:
    """The page's state; a draft has no watch page at all (the route answers 404)."""
    if status == "cancelled":
        return "cancelled"
    if status == "live":
        return "live"
    if status == "ended":
        return "replay" if replay_url else "replay_pending"
    return "upcoming"


def sign_up(
    status: EventStatus,
    ends_at: datetime,
    opens_at: datetime | None,
    closes_at: datetime | None,
    now: datetime,
) -> SignUp:
    """Whether the registrations service takes sign-ups now (its ``check_open``, read here to
    show or hide the button; the form itself still decides)."""
    if status not in ("published", "live") or now >= ends_at:
        return "closed"
    if opens_at and now < opens_at:
        return "not_yet"
    if closes_at and now >= closes_at:
        return "closed"
    return "open"


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def countdown_nl(seconds: float) -> str:
    """'Nog 2 dagen en 3 uur', 'Nog 1 uur en 5 minuten', 'Nog 4 minuten': the two largest
    units, minutes rounded up; the page's script says the same as it counts down."""
    if seconds <= 60:
        return "De uitzending begint zo."
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = [
        _count(days, "dag", "dagen") if days else "",
        f"{hours} uur" if hours else "",
        _count(minutes, "minuut", "minuten") if minutes else "",
    ]
    first = next(i for i, unit in enumerate(units) if unit)
    shown = [unit for unit in units[first : first + 2] if unit]
    return "Nog " + " en ".join(shown)


def script_rules() -> dict[str, object]:
    """Everything the page's script follows, as JSON."""
    return {
        "rules": BEACON_RULES,
        "heartbeat_states": HEARTBEAT_STATES,
        "stall_limit_s": STALL_LIMIT_S,
        "youtube": YOUTUBE_STATES,
        "vimeo": VIMEO_EVENTS,
    }
