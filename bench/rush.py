"""A rush on one event: 1,000 browsers open its sign-up form at the same moment and send it.

Real parts: ``stolive up`` as its own process (PostgreSQL, the embedded broker, every service,
the gateway) on a fresh database, the browsers in this process, each with a cookie jar of its
own and bound to one of 250 loopback addresses (127.0.0.0/8), as teachers come from many
schools: the per-address sign-up limit stays on. Everything goes through the one address.
A browser GETs the form (its page carries the form token, ``csrf_token``, and sets the
matching cookie) and POSTs it; a 303 to the "received" page is its answer. An SMTP server
(aiosmtpd) in this process notes when each person's first e-mail arrives.

Figures: errors (anything but a 200 form and a 303 answer; target 0), seconds until every
browser had its answer, p50/p99 of the form GET and of the sign-up POST, p50/p99 from the
click (the POST) to the person's e-mail in the SMTP server (target under 5 s), and from the
database: confirmed, waitlisted, overbooked (target 0), and e-mails per person (target 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiosmtpd.controller import Controller

from bench import cpu
from bench.common import free_port, fresh_database
from bench.result import BenchResult

BROWSERS = 1_000
ADDRESSES = 250
SEATS = 50
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_READY_LINE = "Press Ctrl-C to stop."


@dataclass
class Visit:
    """One browser's rush: what it got and when."""

    email: str
    form_status: int = 0
    answer_status: int = 0
    error: str = ""
    form_s: float = 0.0
    answer_s: float = 0.0
    clicked_at: float = 0.0  # time.monotonic() when the POST went out
    done_at: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and self.form_status == 200 and self.answer_status == 303


@dataclass
class MailArrivals:
    """An aiosmtpd handler that keeps each recipient's arrival times and message count."""

    arrived: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        now = time.monotonic()
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self.arrived.setdefault(recipient.lower(), []).append(now)
        return "250 OK"

    def first(self, email: str) -> float | None:
        times = self.arrived.get(email.lower())
        return times[0] if times else None


def loopback_addresses(count: int) -> list[str]:
    """``count`` distinct addresses in 127.0.0.0/8, none of them 127.0.0.1."""
    return [f"127.0.{1 + n // 250}.{2 + n % 250}" for n in range(count)]


async def rush(
    base_url: str,
    event_id: str,
    browsers: int,
    addresses: Sequence[str],
    prefix: str = "rush",
    service_path: str = "/registrations",
) -> list[Visit]:
    """``browsers`` browsers, spread over ``addresses``, open the form and send it at once
    (``service_path``: where the registrations service answers under ``base_url``)."""
    shared_tls = ssl.create_default_context()  # unused over http; built once, not per browser
    clients = [
        httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(180.0),
            verify=shared_tls,
            trust_env=False,
            transport=httpx.AsyncHTTPTransport(
                local_address=addresses[n % len(addresses)], verify=shared_tls
            ),
        )
        for n in range(browsers)
    ]
    visits = [Visit(email=f"{prefix}{n}@school{n % len(addresses)}.nl") for n in range(browsers)]
    go = asyncio.Event()
    try:
        tasks = [
            asyncio.create_task(_browse(client, visit, f"{service_path}/events/{event_id}", go))
            for client, visit in zip(clients, visits, strict=True)
        ]
        await asyncio.sleep(0.1)  # every browser waits at the start line
        go.set()
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return visits


async def _browse(
    client: httpx.AsyncClient, visit: Visit, event_path: str, go: asyncio.Event
) -> None:
    await go.wait()
    form_path = f"{event_path}/aanmelden"
    try:
        started = time.monotonic()
        page = await client.get(form_path)
        visit.form_s = time.monotonic() - started
        visit.form_status = page.status_code
        found = _CSRF.search(page.text)
        if page.status_code != 200 or found is None:
            visit.error = f"form {page.status_code}"
            return
        visit.clicked_at = time.monotonic()
        answer = await client.post(
            form_path,
            data=filled_in_form(found.group(1), f"Docent {visit.email.split('@')[0]}", visit.email),
        )
        visit.done_at = time.monotonic()
        visit.answer_s = visit.done_at - visit.clicked_at
        visit.answer_status = answer.status_code
        if answer.status_code != 303:
            visit.error = f"answer {answer.status_code}"
    except httpx.HTTPError as exc:
        visit.error = type(exc).__name__
        visit.done_at = time.monotonic()


def filled_in_form(csrf_token: str, name: str, email: str) -> dict[str, str]:
    """The sign-up form as a teacher sends it: one person, with consent."""
    return {
        "csrf_token": csrf_token,
        "collega_rijen": "0",
        "name": name,
        "email": email,
        "role": "docent",
        "region_code": "drenthe",
        "school_code": "",
        "organisation": "Dollard College",
        "consent": "ja",
        "actie": "aanmelden",
    }


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def seats(database_url: str, event_id: str) -> dict[str, int]:
    """Confirmed, waitlisted and overbooked, as PostgreSQL holds them."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM registrations.registrations"
            " WHERE event_id = $1 GROUP BY status",
            uuid.UUID(event_id),
        )
        capacity = await conn.fetchval(
            "SELECT capacity FROM registrations.events WHERE id = $1", uuid.UUID(event_id)
        )
    finally:
        await conn.close()
    counts = {str(r["status"]): int(r["n"]) for r in rows}
    confirmed = counts.get("confirmed", 0)
    return {
        "confirmed": confirmed,
        "waitlisted": counts.get("waitlisted", 0),
        "overbooked": max(0, confirmed - int(capacity)) if capacity is not None else 0,
    }


async def published_event(base_url: str, organiser_token: str, capacity: int) -> str:
    """A published webinar with ``capacity`` seats, once the sign-up form serves it."""
    headers = {"Authorization": f"Bearer {organiser_token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as organiser:
        await organiser.put(
            "/events/api/regions",
            json=[{"code": "drenthe", "name": "Drenthe", "province": "Drenthe"}],
        )
        starts = datetime.now(UTC) + timedelta(days=5)
        created = await organiser.post(
            "/events/api/events",
            json={
                "kind": "webinar",
                "title": "STO LIVE: de drukte",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(minutes=30)).isoformat(),
                "stream_url": "https://live.sterktechniekonderwijs.nl/demo",
                "capacity": capacity,
            },
        )
        created.raise_for_status()
        event_id: str = created.json()["id"]
        (await organiser.post(f"/events/api/events/{event_id}/publish")).raise_for_status()
        for _ in range(600):
            form = await organiser.get(f"/registrations/events/{event_id}/aanmelden")
            if form.status_code == 200:
                return event_id
            await asyncio.sleep(0.1)
    raise RuntimeError("the registrations service never learnt the event")


async def mail_stages(database_url: str, event_id: str) -> dict[str, str]:
    """Where the time from a sign-up to its e-mail went, from PostgreSQL's clock: from the
    sign-up's commit to its e-mail queued (outbox relay, broker, notifications consumer), and
    from queued to accepted by SMTP (the sender)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM e.created_at - r.created_at) AS to_queue,"
            " extract(epoch FROM e.sent_at - e.created_at) AS to_smtp"
            " FROM registrations.registrations r"
            " JOIN notifications.emails e ON e.registration_id = r.id"
            " WHERE r.event_id = $1 AND e.sent_at IS NOT NULL",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()
    return {
        "sign-up to e-mail queued p50/p99 s": _pair([float(r["to_queue"]) for r in rows]),
        "queued to SMTP p50/p99 s": _pair([float(r["to_smtp"]) for r in rows]),
    }


def summary(visits: Sequence[Visit], mail: MailArrivals, started_at: float) -> dict[str, object]:
    """The figures a rush is judged by."""
    errors = [v.error for v in visits if not v.ok]
    to_mail = [
        arrived - v.clicked_at
        for v in visits
        if v.ok and (arrived := mail.first(v.email)) is not None
    ]
    return {
        "errors": len(errors),
        "error kinds": dict(sorted((e, errors.count(e)) for e in set(errors))) or 0,
        "seconds to clear": round(max((v.done_at for v in visits), default=0) - started_at, 1),
        "form GET p50/p99 s": _pair([v.form_s for v in visits if v.form_status == 200]),
        "sign-up POST p50/p99 s": _pair([v.answer_s for v in visits if v.ok]),
        "click to e-mail p50/p99 s": _pair(to_mail),
        "e-mails arrived": f"{len(to_mail)} of {sum(v.ok for v in visits)}",
        "people with more than one e-mail": sum(len(t) > 1 for t in mail.arrived.values()),
    }


def _pair(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f}"


async def run(seconds: float) -> BenchResult:  # noqa: ARG001 (a rush has no duration)
    mail = MailArrivals()
    smtp_port = free_port()
    controller = Controller(mail, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    ports = {
        "STOLIVE_PORT": free_port(),
        "STOLIVE_BROKER_PORT": free_port(),
        **{f"STOLIVE_{s.upper()}_PORT": free_port() for s in ("events", "registrations")},
        **{f"STOLIVE_{s.upper()}_PORT": free_port() for s in ("notifications", "analytics")},
    }
    base_url = f"http://127.0.0.1:{ports['STOLIVE_PORT']}"
    try:
        async with (
            fresh_database() as database_url,
            _launcher(database_url, ports, smtp_port) as (data, launcher_pid),
        ):
            token = (data / "organiser-token").read_text().strip()
            event_id = await published_event(base_url, token, SEATS)
            database = database_url.rsplit("/", 1)[-1]
            cpu_before = cpu.snapshot(launcher_pid, database)
            started_at = time.monotonic()
            visits = await rush(base_url, event_id, BROWSERS, loopback_addresses(ADDRESSES))
            ok = [v for v in visits if v.ok]
            for _ in range(600):  # at most 2 minutes
                if all(mail.first(v.email) is not None for v in ok):
                    break
                await asyncio.sleep(0.2)
            mailed_at = time.monotonic()
            cpu_spent = cpu.spent_between(cpu_before, cpu.snapshot(launcher_pid, database))
            await asyncio.sleep(2.0)  # a second e-mail, if any, would arrive by now
            held = await seats(database_url, event_id)
            stages = await mail_stages(database_url, event_id)
    finally:
        controller.stop()
    figures = summary(visits, mail, started_at)
    total_cpu_s = sum(cpu_spent.values())
    details: dict[str, object] = {
        "browsers, addresses, seats": f"{BROWSERS}, {ADDRESSES}, {SEATS}",
        **figures,
        **held,
        **stages,
        # From the start line to the last first e-mail: where two cores' time went.
        "seconds to the last e-mail": round(mailed_at - started_at, 1),
        "CPU s by part": cpu_spent,
        "CPU ms per sign-up": round(1000 * total_cpu_s / max(1, len(ok)), 1),
        "least seconds this CPU work takes on this machine": round(
            total_cpu_s / (os.cpu_count() or 1), 1
        ),
    }
    return BenchResult(
        name="rush",
        figure=len(ok) / max(0.001, float(str(figures["seconds to clear"]))),
        unit="sign-ups/s, 0 errors wanted",
        ceiling=0.0,
        details=details,
    )


@contextlib.asynccontextmanager
async def _launcher(database_url: str, ports: dict[str, int], smtp_port: int) -> Any:
    """``stolive up`` as its own process, as a person runs it; its data folder and pid."""
    with tempfile.TemporaryDirectory(prefix="stolive-rush-", dir="/var/tmp") as folder:
        data = Path(folder)
        env = {
            **os.environ,
            **{name: str(port) for name, port in ports.items()},
            "DATABASE_URL": database_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
        }
        out = data / "launcher.out"
        process = _start_launcher(data, env, out)
        try:
            while _READY_LINE not in out.read_text(errors="replace"):
                if process.poll() is not None:
                    raise RuntimeError(f"stolive up exited:\n{out.read_text(errors='replace')}")
                await asyncio.sleep(0.5)
            yield data, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 120)


def _start_launcher(data: Path, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "stolive", "up", "--data-dir", str(data), "--no-seed"],
            env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
