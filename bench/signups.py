"""Durable sign-ups/s at 50 concurrent clients, beside the one-INSERT ceiling of the same run.

The registrations API runs as its own process (``python -m sto_registrations api``) on a fresh
database; the load generator (``bench.loadgen``) is another process on loopback. A sign-up
counts when its 202 came back: the registration, its seat and its outbox message are
committed by then. Two loads: every sign-up on one hot event (capacity 1,000 and a waiting
list, so it fills and queues), and sign-ups spread over 100 events. Afterwards the database
is checked: no event overbooked, no person twice on an event, one outbox message per
registration. The per-client-address rate limit is switched off: all load comes from one
address.

The load generator takes its URL once; to spread sign-ups over events it runs here
(``python -m bench.signups spread ...``) with its request builder wrapped so that the event
number it wrote into the email domain (``@e{k}.school.nl``) picks the event in the path.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from bench.common import (
    ceiling,
    cpu_seconds,
    free_port,
    fresh_database,
    load,
    measured_load,
    server_process,
    wait_http,
)
from bench.result import BenchResult

CLIENTS = 50
SPREAD_EVENTS = 100
HOT_CAPACITY = 1_000
SPREAD_CAPACITY = 200
SCHEMA = "registrations"
# The API serves at the root here; "/registrations" is the gateway's prefix.
_PATH = "/api/events/{event}/registrations"
# "{token}": the event's form token (the API's bot guard), put in per event.
_BODY = (
    '{"name": "Docent {n}", "email": "docent{n}@e{k}.school.nl", "organisation": "Dollard'
    ' College", "role": "docent", "region_code": "groningen", "privacy_consent": true,'
    ' "form_token": "{token}"}'
)


async def _events(database_url: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    from sto_registrations import repository
    from sto_registrations.bootstrap import DEFINITION
    from stolive_shared.contracts.events import EventSnapshot
    from stolive_shared.db import apply_migrations

    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    starts = datetime.now(UTC) + timedelta(days=7)
    ids = [uuid.uuid4() for _ in range(SPREAD_EVENTS + 1)]
    try:
        for number, event_id in enumerate(ids):
            async with conn.transaction():
                await repository.store_event(
                    conn,
                    EventSnapshot(
                        event_id=event_id,
                        revision=1,
                        kind="regional_meeting",
                        status="published",
                        title=f"Regiobijeenkomst {number}",
                        starts_at=starts,
                        ends_at=starts + timedelta(hours=3),
                        capacity=HOT_CAPACITY if number == 0 else SPREAD_CAPACITY,
                        waitlist_enabled=True,
                    ),
                )
    finally:
        await conn.close()
    return ids[0], ids[1:]


async def _form_tokens(base_url: str, events: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each event's form token, fetched as a partner page would (usable at once here)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return {
            event: (await client.get(f"/api/events/{event}/form-token")).json()["form_token"]
            for event in events
        }


async def _spread_load(
    base_url: str, tokens: dict[uuid.UUID, str], seconds: float
) -> dict[str, Any]:
    events = list(tokens)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.signups", "spread",
        ",".join(f"{event}={token}" for event, token in tokens.items()),
        "--url", base_url + _PATH.format(event=events[0]), "--body", _BODY,
        "--connections", str(CLIENTS), "--seconds", str(seconds), "--keys", str(len(events)),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


async def _check(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        overbooked = await conn.fetchval(
            """SELECT count(*) FROM events e WHERE e.capacity IS NOT NULL AND (
                   e.confirmed_count > e.capacity
                   OR (SELECT count(*) FROM registrations r
                       WHERE r.event_id = e.id AND r.status = 'confirmed') > e.capacity)"""
        )
        miscounted = await conn.fetchval(
            """SELECT count(*) FROM events e WHERE e.confirmed_count <> (
                   SELECT count(*) FROM registrations r
                   WHERE r.event_id = e.id AND r.status = 'confirmed')"""
        )
        duplicates = await conn.fetchval(
            "SELECT count(*) - count(DISTINCT (event_id, lower(email))) FROM registrations"
        )
        registrations = await conn.fetchval("SELECT count(*) FROM registrations")
        messages = await conn.fetchval("SELECT count(*) FROM outbox")
        waitlisted = await conn.fetchval(
            "SELECT count(*) FROM registrations WHERE status = 'waitlisted'"
        )
    finally:
        await conn.close()
    return {
        "overbooked_events": overbooked,
        "miscounted_events": miscounted,
        "duplicates": duplicates,
        "registrations": registrations,
        "waitlisted": waitlisted,
        "outbox_messages": messages,
    }


async def run(seconds: float) -> BenchResult:
    async with fresh_database() as database_url:
        hot, spread = await _events(database_url)
        port = free_port()
        env = {
            "DATABASE_URL": database_url,
            "HTTP_PORT": str(port),
            "ROOT_PATH": "",
            "DB_POOL_MIN_SIZE": "10",
            "DB_POOL_MAX_SIZE": "20",  # as the ceiling's pool
            "SIGNUP_RATE_PER_MINUTE": "0",
            "SIGNUP_FORM_TOKEN_MIN_AGE_S": "0",
            "LOG_LEVEL": "WARNING",
        }
        with server_process(["-m", "sto_registrations", "api"], port, env) as server:
            await wait_http(f"{server.url}/healthz")
            base = server.url
            tokens = await _form_tokens(base, [hot, *spread])
            await load(
                base + _PATH.format(event=spread[0]),
                seconds=1.0,
                body=_BODY.replace("{token}", tokens[spread[0]]),
            )  # warm up
            insert = await ceiling("insert", seconds, CLIENTS, database_url)
            hot_load = await measured_load(
                server, base + _PATH.format(event=hot), seconds=seconds, connections=CLIENTS,
                body=_BODY.replace("{token}", tokens[hot]),
            )  # fmt: skip
            before = cpu_seconds(server.process.pid)
            spread_load = await _spread_load(base, {e: tokens[e] for e in spread}, seconds)
            used = cpu_seconds(server.process.pid) - before
            spread_load["server_cpu_us"] = round(used / max(1, spread_load["ok"]) * 1e6)
        checked = await _check(database_url)
    hot_rate, spread_rate = float(hot_load["ok_per_s"]), float(spread_load["ok_per_s"])
    roof = float(insert["ok_per_s"])
    details: dict[str, object] = {
        "ceiling (FastAPI + one asyncpg INSERT)": _figures(insert),
        "hot event (1 event)": _figures(hot_load) + f", {hot_rate / roof:.2f}x ceiling",
        f"spread ({SPREAD_EVENTS} events)": _figures(spread_load)
        + f", {spread_rate / roof:.2f}x ceiling",
        "checked": ", ".join(f"{k} {v}" for k, v in checked.items()),
        "machine": f"{os.cpu_count()} cores, shared; load generator and server on loopback;"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end",
    }
    return BenchResult(
        "signups", min(hot_rate, spread_rate), "durable sign-ups/s (worst)", roof, details
    )


def _figures(result: dict[str, Any]) -> str:
    return (
        f"{result['ok_per_s']:,.0f}/s ok, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
        f" statuses {result['statuses']}, errors {result['errors']},"
        f" server CPU {result['server_cpu_us']} us/request"
    )


def _spread_main(argv: list[str]) -> None:
    """The load generator, its path chosen per request by the event number in the body."""
    from bench import loadgen

    events = [pair.split("=", 1) for pair in argv[0].split(",")]
    build = loadgen._request_bytes
    number = re.compile(rb"@e(\d+)\.school\.nl")

    def per_event(method: str, host: str, _path: str, body: bytes, content_type: str) -> bytes:
        match = number.search(body)
        assert match is not None
        event, token = events[int(match.group(1))]
        body = body.replace(b"{token}", token.encode())
        return build(method, host, _PATH.format(event=event), body, content_type)

    loadgen._request_bytes = per_event  # type: ignore[assignment]
    sys.argv = [sys.argv[0], *argv[1:]]
    loadgen.main()


if __name__ == "__main__" and sys.argv[1:2] == ["spread"]:
    _spread_main(sys.argv[2:])
