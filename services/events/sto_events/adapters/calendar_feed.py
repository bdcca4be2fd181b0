"""Published events as an iCalendar feed (RFC 5545) that Outlook and Google Calendar subscribe to.

Each event keeps one UID for life (its id at a fixed domain) and its revision as SEQUENCE, so a
subscribed calendar updates a rescheduled event in place instead of adding a second one. Times
are written in UTC; ``X-WR-TIMEZONE`` tells clients to show them in Amsterdam time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import icalendar

from sto_events.domain import Event
from stolive_shared.programme import KIND_NL

UID_DOMAIN = "stolive.sterktechniekonderwijs.nl"
_STATUS = {"published": "CONFIRMED", "live": "CONFIRMED", "ended": "CONFIRMED"}


def event_uid(event: Event) -> str:
    return f"{event.id}@{UID_DOMAIN}"


def build_feed(
    events: Iterable[Event],
    *,
    name: str,
    description: str,
    now: datetime,
    page_url: str,
    link_for: dict[str, str] | None = None,
) -> bytes:
    """``link_for`` maps an event id to the page people open (watch page or sign-up page)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Sterk Techniekonderwijs//STO Live//NL")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-caldesc", description)
    calendar.add("x-wr-timezone", "Europe/Amsterdam")
    calendar.add("name", name)
    calendar.add("url", page_url)
    # Subscribers look again every hour (Outlook reads X-PUBLISHED-TTL, others REFRESH-INTERVAL).
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    links = link_for or {}
    for event in events:
        entry = icalendar.Event()
        entry.add("uid", event_uid(event))
        entry.add("sequence", event.revision)
        entry.add("dtstamp", now)
        entry.add("dtstart", event.starts_at)
        entry.add("dtend", event.ends_at)
        entry.add("summary", event.title)
        entry.add("categories", [KIND_NL[event.kind]])
        entry.add("status", _STATUS.get(event.status, "CONFIRMED"))
        place = event.venue or ("Online" if event.kind == "webinar" else "")
        if place:
            entry.add("location", place)
        link = links.get(str(event.id))
        text = event.description
        if link:
            entry.add("url", link)
            text = f"{text}\n\n{link}" if text else link
        if text:
            entry.add("description", text)
        calendar.add_component(entry)
    feed: bytes = calendar.to_ical()
    return feed
