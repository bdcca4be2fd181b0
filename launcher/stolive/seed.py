"""Demo data for a fresh platform, created once through the events API like an organiser would.

The regions the programme's newsletters name and a few demo school sites (the events
service's demo CSVs), and a small programme: two STO LIVE broadcasts (one of them live now, so
the watch page and the live viewer figures have something to show), two regional meetings, a
supra-regional meeting and the national day. Times are Amsterdam wall-clock times days or
weeks ahead, so the demo stays in the future.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sto_events.regions import DEMO_REGIONS_CSV, DEMO_SCHOOLS_CSV
from stolive_shared.http import stateless_client

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _next_weekday(today: date, weekday: int, weeks_ahead: int) -> date:
    days = (weekday - today.weekday()) % 7 or 7
    return today + timedelta(days=days + 7 * (weeks_ahead - 1))


def _local(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=AMSTERDAM).isoformat()


def demo_events(today: date) -> list[dict[str, Any]]:
    """Each with the lifecycle steps to take after creating it."""
    webinar_day = _next_weekday(today, 1, 1)  # a Tuesday
    meeting_day = _next_weekday(today, 3, 2)  # a Thursday
    soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
    return [
        {
            "kind": "webinar",
            "title": "STO LIVE #26: De instroomcijfers van schooljaar 2023-2024",
            "description": "Een half uur live over de instroom in het technisch vmbo: wat zeggen "
            "de cijfers per regio, en wat doen regio's die groeien anders?",
            "starts_at": _local(webinar_day, 15, 30),
            "ends_at": _local(webinar_day, 16, 0),
            "stream_url": "https://live.sterktechniekonderwijs.nl/sto-live-26",
            "series_code": "sto-live",
            "series_number": 26,
            "capacity": None,
            "steps": ["publish"],
        },
        {
            "kind": "webinar",
            "title": "STO LIVE: proefuitzending voor programmaleiders",
            "description": "Een korte proefuitzending: test je beeld en geluid en kijk hoe de "
            "kijkcijfers live meelopen.",
            "starts_at": soon.isoformat(),
            "ends_at": (soon + timedelta(hours=2)).isoformat(),
            "stream_url": "https://live.sterktechniekonderwijs.nl/proef",
            "capacity": None,
            "steps": ["publish", "go-live"],
        },
        {
            "kind": "regional_meeting",
            "title": "Regiobijeenkomst STO Noord-Nederland",
            "description": "Programmaleiders en penvoerders uit Groningen, Friesland en Drenthe "
            "delen wat werkt: techlabs, doorlopende leerlijnen en samenwerking met het mbo.",
            "starts_at": _local(meeting_day, 13, 30),
            "ends_at": _local(meeting_day, 17, 0),
            "venue": "Alfa-college, Groningen",
            "region_codes": ["groningen", "friesland", "drenthe"],
            "capacity": 60,
            "steps": ["publish"],
        },
        {
            "kind": "regional_meeting",
            "title": "Regiobijeenkomst Rotterdam Zuid: techniek in de onderbouw",
            "description": "Docenten techniek en decanen over oriëntatie in leerjaar 1 en 2.",
            "starts_at": _local(meeting_day + timedelta(days=7), 15, 0),
            "ends_at": _local(meeting_day + timedelta(days=7), 17, 30),
            "venue": "Zadkine, Rotterdam",
            "region_codes": ["rotterdam-zuid"],
            "capacity": 40,
            "steps": ["publish"],
        },
        {
            "kind": "supra_regional_meeting",
            "title": "Bovenregionale bijeenkomst Oost- en Midden-Nederland",
            "starts_at": _local(meeting_day + timedelta(days=14), 10, 0),
            "ends_at": _local(meeting_day + timedelta(days=14), 15, 0),
            "venue": "Aventus, Apeldoorn",
            "region_codes": ["apeldoorn-eo", "midden-brabant"],
            "capacity": 120,
            "steps": ["publish"],
        },
        {
            "kind": "national_day",
            "title": "Landelijke STO-dag",
            "description": "De jaarlijkse dag voor iedereen die werkt aan sterk techniekonderwijs.",
            "starts_at": _local(meeting_day + timedelta(days=28), 9, 30),
            "ends_at": _local(meeting_day + timedelta(days=28), 16, 30),
            "venue": "Jaarbeurs, Utrecht",
            "capacity": 600,
            "steps": ["publish"],
        },
    ]


async def seed_demo(events_url: str, token: str, today: date) -> list[str]:
    """Create the demo once; returns the titles created (empty when events already exist)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with stateless_client(base_url=events_url, headers=headers, timeout=10) as client:
        existing = (await client.get("/api/organiser/events")).raise_for_status().json()
        if existing:
            return []
        (
            await client.post(
                "/api/regions/import",
                content=DEMO_REGIONS_CSV.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
        ).raise_for_status()
        (
            await client.post(
                "/api/schools/import",
                content=DEMO_SCHOOLS_CSV.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
        ).raise_for_status()
        created = []
        for planned in demo_events(today):
            body = {key: value for key, value in planned.items() if key != "steps"}
            event = (await client.post("/api/events", json=body)).raise_for_status().json()
            for step in planned["steps"]:
                (await client.post(f"/api/events/{event['id']}/{step}", json={})).raise_for_status()
            created.append(body["title"])
        return created
