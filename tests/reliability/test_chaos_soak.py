"""A chaos soak: the whole platform under mixed traffic while its processes are killed.

For ``SOAK_SECONDS`` (45 here and in CI; ``make soak`` runs 600) people sign up for three
events through the one address, some cancel with their personal link, an organiser keeps
changing two events, anonymous viewers watch a live webinar, and a mailing goes to one
event's registrants (scheduled before the chaos, sent during it). Meanwhile a random service
process is SIGKILLed every ``SOAK_KILL_EVERY_S`` (the launcher restarts it), the broker is
killed once (it forgets everything) and PostgreSQL is restarted once (its own embedded
server, so nobody else is disturbed).

Then the traffic stops and the platform is given time to settle, and PostgreSQL is compared
with the SMTP server and the analytics figures:

- no accepted sign-up is lost (every 202 has its registration row);
- every registration got its first e-mail (confirmation or waiting list), queued exactly once;
- every e-mail marked sent arrived, the newsletter at every recipient; an e-mail arrives twice
  (same Message-ID) only where its sender was killed between the SMTP server's answer and its
  own commit: at most one per SMTP connection per kill of a notifications process (the bound
  stated in ``sto_notifications.service.sending``);
- the analytics figures equal PostgreSQL's: registrations per status for every event, and
  the webinar's unique viewers equal the viewers whose beacons were accepted.

The figures are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from sto_notifications.config import NotificationsSettings
from stolive.broker import free_port
from stolive.embedded_postgres import EmbeddedPostgres
from stolive.stack import Stack
from stolive_shared.db import ensure_database, with_database
from stolive_shared.links import PersonalLinks
from stolive_shared.urls import PublicUrls
from tests.e2e.conftest import Platform, stack_config
from tests.e2e.test_registrations_in_browser import published_meeting
from tests.e2e.test_watch_player import broadcast
from tests.support import eventually, form_token, start_smtp_sink

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "45"))
KILL_EVERY_S = float(os.environ.get("SOAK_KILL_EVERY_S", "4"))
SETTLE_S = 300.0
FIRST_NOTICES = ("registration_confirmed", "registration_waitlisted")


class Soak:
    """The traffic, what was accepted, and the chaos done to the platform."""

    def __init__(self, platform: Platform, database_url: str, postgres: EmbeddedPostgres):
        self.platform = platform
        self.database_url = database_url
        self.postgres = postgres
        self.stop = asyncio.Event()
        self.accepted: dict[str, str] = {}  # address -> event id
        self.cancelled: set[str] = set()
        self.changes = 0
        self.viewers: set[str] = set()
        self.answers: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()
        self.links = PersonalLinks(
            platform.link_secret, PublicUrls(platform.stack.config.public_base_url)
        )

    async def sign_ups(self, lane: int, events: list[str], tokens: dict[str, str]) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            event_id = events[number % len(events)]
            address = f"soak-{lane}-{number}-{uuid.uuid4().hex[:6]}@school.example"
            try:
                answer = await self.platform.gateway.post(
                    f"/registrations/api/events/{event_id}/registrations",
                    json={"name": f"Docent {lane}-{number}", "email": address,
                          "role": "docent", "privacy_consent": True,
                          "form_token": tokens[event_id]},
                )  # fmt: skip
            except httpx.HTTPError:
                self.answers["sign-up: no answer"] += 1
                await asyncio.sleep(0.2)
                continue
            self.answers[f"sign-up: {answer.status_code}"] += 1
            if answer.status_code == 202:
                self.accepted[address] = event_id
            await asyncio.sleep(0.05)

    async def cancellations(self) -> None:
        """A person cancels with their personal link now and then."""
        while not self.stop.is_set():
            await asyncio.sleep(0.7)
            candidates = sorted(set(self.accepted) - self.cancelled)
            if not candidates:
                continue
            address = random.choice(candidates)
            registration_id = await self._registration_of(address)
            if registration_id is None:
                continue
            token = self.links.manage_token(registration_id)
            try:
                answer = await self.platform.gateway.delete(
                    f"/registrations/api/registrations/{token}"
                )
            except httpx.HTTPError:
                continue
            self.answers[f"cancel: {answer.status_code}"] += 1
            if answer.status_code == 200:
                self.cancelled.add(address)

    async def event_changes(self, events: list[str]) -> None:
        number = 0
        while not self.stop.is_set():
            await asyncio.sleep(1.5)
            number += 1
            event_id = events[number % len(events)]
            try:
                answer = await self.platform.organiser.patch(
                    f"/api/events/{event_id}", json={"title": f"Regiobijeenkomst (versie {number})"}
                )
            except httpx.HTTPError:
                continue
            self.answers[f"change: {answer.status_code}"] += 1
            self.changes += answer.status_code == 200

    async def beacons(self, webinar: str) -> None:
        """Twenty anonymous viewers; each beacon once per 6 s (the endpoint's per-viewer limit)."""
        viewers = [f"anon-soak-{n:02d}" for n in range(20)]
        while not self.stop.is_set():
            for viewer in viewers:
                try:
                    answer = await self.platform.gateway.post(
                        "/events/api/beacons",
                        json={"event_id": webinar, "viewer_id": viewer, "action": "heartbeat",
                              "mode": "live", "client_ts": datetime.now(UTC).isoformat()},
                    )  # fmt: skip
                except httpx.HTTPError:
                    continue
                self.answers[f"beacon: {answer.status_code}"] += 1
                if answer.status_code == 204:
                    self.viewers.add(viewer)
            await asyncio.sleep(6)

    async def chaos(self) -> None:
        """A random process killed every few seconds; the broker once, PostgreSQL once."""
        stack = self.platform.stack
        started = time.monotonic()
        broker_done = postgres_done = False
        while not self.stop.is_set():
            await asyncio.sleep(KILL_EVERY_S)
            elapsed = (time.monotonic() - started) / SOAK_SECONDS
            if not broker_done and elapsed >= 0.3 and stack.broker is not None:
                stack.broker.kill()
                self.kills["broker"] += 1
                broker_done = True
                continue
            if not postgres_done and elapsed >= 0.6:
                await asyncio.to_thread(self.postgres.stop)
                await asyncio.sleep(3)
                await asyncio.to_thread(self.postgres.start)
                self.kills["postgresql"] += 1
                postgres_done = True
                continue
            running = [p for p in stack.processes if p.is_running()]
            if running:
                victim = random.choice(running)
                victim.kill()
                self.kills[victim.name] += 1

    async def _registration_of(self, address: str) -> uuid.UUID | None:
        try:
            conn = await asyncpg.connect(self.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError):
            return None
        try:
            found: uuid.UUID | None = await conn.fetchval(
                """SELECT id FROM registrations.registrations
                   WHERE email = $1 AND status <> 'cancelled'""",
                address,
            )
            return found
        except asyncpg.PostgresError:
            return None
        finally:
            await conn.close()


@pytest.mark.timeout(SOAK_SECONDS + 2 * SETTLE_S + 300)
async def test_a_chaos_soak_loses_nothing_and_counts_exactly(
    figures: Callable[[str], None],
) -> None:
    root = Path(tempfile.mkdtemp(prefix="stolive-soak-", dir="/var/tmp"))
    postgres = EmbeddedPostgres(root / "postgres")
    smtp_port = free_port()
    sink, controller = start_smtp_sink(smtp_port)
    stack: Stack | None = None
    try:
        database_url = with_database(await asyncio.to_thread(postgres.start), "stolive")
        await ensure_database(database_url)
        config = stack_config(
            root / "stack", database_url, smtp_port,
            extra_env={"SIGNUP_RATE_PER_MINUTE": "0", "LOG_LEVEL": "INFO"},
        )  # fmt: skip
        stack = Stack(config)
        await stack.start()
        base = config.public_base_url
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as gateway,
            httpx.AsyncClient(
                base_url=f"{base}/events",
                headers={"Authorization": f"Bearer {stack.organiser_token}"},
                timeout=30,
            ) as organiser,
        ):
            platform = Platform(stack, sink, gateway, organiser)
            soak = Soak(platform, database_url, postgres)
            meetings = [
                await published_meeting(platform, "Soak Drenthe", capacity=30),
                await published_meeting(platform, "Soak Twente", capacity=30, region="twente"),
            ]
            webinar = await live_webinar(platform)
            events = [*meetings, webinar]
            tokens = {e: await form_token(gateway, "/registrations", e) for e in events}

            send_at = datetime.now(UTC) + timedelta(seconds=SOAK_SECONDS / 3)
            mailing_id = await mailing_to_registrants(platform, meetings[0], send_at)
            lanes = [
                *(asyncio.create_task(soak.sign_ups(lane, events, tokens)) for lane in range(4)),
                asyncio.create_task(soak.cancellations()),
                asyncio.create_task(soak.event_changes(meetings)),
                asyncio.create_task(soak.beacons(webinar)),
                asyncio.create_task(soak.chaos()),
            ]
            await asyncio.sleep(SOAK_SECONDS)
            soak.stop.set()
            await asyncio.gather(*lanes)

            outcome = await settled(platform, soak, database_url, events, webinar, mailing_id)
        figures(
            f"chaos soak ({SOAK_SECONDS:.0f} s, a kill every {KILL_EVERY_S:.0f} s): "
            f"{len(soak.accepted)} sign-ups accepted, {len(soak.cancelled)} cancelled, "
            f"{soak.changes} event changes, {len(soak.viewers)} viewers; killed "
            f"{dict(soak.kills)}; answers {dict(soak.answers)}; {outcome}"
        )
    finally:
        if stack is not None:
            await stack.stop()
        controller.stop()
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(root, ignore_errors=True)


async def live_webinar(platform: Platform) -> str:
    return await broadcast(
        platform, "STO LIVE soak", ("publish", "go-live"), starts_in=timedelta(hours=1),
        stream_url="https://live.sterktechniekonderwijs.example/soak.m3u8",
    )  # fmt: skip


async def mailing_to_registrants(platform: Platform, event_id: str, send_at: datetime) -> str:
    """A mailing to the event's registrants, scheduled (before the chaos) for ``send_at``."""
    headers = {"Authorization": f"Bearer {platform.stack.organiser_token}"}
    answer = await platform.gateway.post(
        "/notifications/api/mailings", headers=headers,
        json={"subject": "Soak-nieuwsbrief", "body": "Nieuws uit de regio.",
              "audience": {"kind": "registrants", "event_id": event_id}},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    mailing_id = str(answer.json()["id"])
    answer = await platform.gateway.post(
        f"/notifications/api/mailings/{mailing_id}/schedule",
        headers=headers,
        json={"send_at": send_at.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    return mailing_id


async def settled(
    platform: Platform,
    soak: Soak,
    database_url: str,
    events: list[str],
    webinar: str,
    mailing_id: str,
) -> str:
    """Wait until PostgreSQL, the mailbox and analytics agree, and check they do."""
    conn = await eventually(
        lambda: _connect(database_url), timeout_s=60, what="PostgreSQL after the soak"
    )
    try:
        stored = {
            r["email"]: r["id"]
            for r in await conn.fetch("SELECT id, email FROM registrations.registrations")
        }
        lost = set(soak.accepted) - set(stored)
        assert not lost, f"{len(lost)} accepted sign-ups lost"

        async def all_sent() -> bool:
            unsent = await conn.fetchval(
                "SELECT count(*) FROM notifications.emails WHERE status IN ('queued', 'sending')"
            )
            rows = await conn.fetchval(
                """SELECT count(*) FROM notifications.emails
                   WHERE kind = ANY($1::text[]) AND registration_id = ANY($2::uuid[])""",
                list(FIRST_NOTICES),
                list(stored.values()),
            )
            open_mailing = await conn.fetchval(
                """SELECT count(*) FROM notifications.mailing_recipients
                   WHERE mailing_id = $1 AND status IN ('queued', 'sending')""",
                uuid.UUID(mailing_id),
            )
            finished = await conn.fetchval(
                "SELECT status FROM notifications.mailings WHERE id = $1", uuid.UUID(mailing_id)
            )
            return bool(
                unsent == 0 and rows == len(stored) and open_mailing == 0 and finished == "sent"
            )

        await eventually(all_sent, timeout_s=SETTLE_S, what="every e-mail sent")

        sent = await conn.fetch(
            "SELECT id, kind, recipient FROM notifications.emails WHERE status = 'sent'"
        )
        arrived = Counter(str(m.message["Message-ID"]) for m in platform.smtp.received)
        by_row = Counter(
            str(m.message["X-STO-Email-Id"])
            for m in platform.smtp.received
            if m.message["X-STO-Email-Id"]
        )
        missing = [r for r in sent if by_row[str(r["id"])] == 0]
        twice = {mid: n for mid, n in arrived.items() if n > 1}
        first_notices = Counter(r["recipient"] for r in sent if r["kind"] in FIRST_NOTICES)
        assert not missing, (
            f"{len(missing)} of {len(sent)} e-mails marked sent never arrived "
            f"({len(platform.smtp.received)} arrived), e.g. {missing[:2]}, {list(by_row)[:2]}"
        )
        assert set(first_notices.values()) == {1}
        assert set(first_notices) == set(stored), "a registration without its first e-mail"

        recipients = await conn.fetch(
            "SELECT email, status FROM notifications.mailing_recipients WHERE mailing_id = $1",
            uuid.UUID(mailing_id),
        )
        newsletters = Counter(
            address
            for m in platform.smtp.received
            if m.message["Subject"] == "Soak-nieuwsbrief"
            for address in m.recipients
        )
        delivered = [r for r in recipients if r["status"] == "sent"]
        assert all(newsletters[r["email"]] >= 1 for r in delivered)
        newsletter_twice = sum(1 for n in newsletters.values() if n > 1)
        # A sender killed between the SMTP server's "250" and its own commit sends those again
        # (same Message-ID): at most the e-mails in flight, one per SMTP connection.
        notification_kills = sum(n for name, n in soak.kills.items() if "notifications" in name)
        bound = notification_kills * NotificationsSettings().smtp_connections
        assert len(twice) <= bound, f"delivered twice: {twice}, more than {bound}"

        async def counts_agree() -> bool:
            for event_id in events:
                rows = await conn.fetch(
                    """SELECT status, count(*) AS n FROM registrations.registrations
                       WHERE event_id = $1 GROUP BY status""",
                    uuid.UUID(event_id),
                )
                truth = {r["status"]: r["n"] for r in rows}
                answer = await platform.gateway.get(
                    f"/analytics/api/events/{event_id}/registrations"
                )
                if answer.status_code != 200:
                    return False
                counted = answer.json()
                if any(
                    counted[s] != truth.get(s, 0) for s in ("confirmed", "waitlisted", "cancelled")
                ):
                    return False
            figures = await platform.gateway.get(
                f"/analytics/api/events/{webinar}/figures",
                headers={"Authorization": f"Bearer {platform.stack.organiser_token}"},
            )
            return figures.status_code == 200 and figures.json()["unique_viewers"] == len(
                soak.viewers
            )

        await eventually(
            counts_agree, timeout_s=SETTLE_S, what="analytics to agree with PostgreSQL"
        )
        return (
            f"{len(stored)} registrations, {len(sent)} e-mails sent, each once; newsletter to "
            f"{len(delivered)}, {newsletter_twice} twice; {len(twice)} e-mails twice in all "
            f"(bound {bound}); analytics agrees"
        )
    finally:
        await conn.close()


async def _connect(database_url: str) -> asyncpg.Connection | None:
    try:
        conn: asyncpg.Connection = await asyncpg.connect(database_url, timeout=5)
        return conn
    except (OSError, asyncpg.PostgresError):
        return None
