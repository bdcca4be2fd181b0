"""The embedded broker dies while sign-ups flow and comes back empty: nothing is lost.

PostgreSQL is the system of record: sign-ups keep being accepted during the outage (they only
write the outbox). The launcher restarts the broker, recreates the topics and restarts the
consumers; the relays find the broker's offsets went backwards and republish every retained
message. Each accepted sign-up must end in exactly one confirmation email and one count.
It runs beside a CPU hog of its own: CI's machine is loaded, and so is this test's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

import asyncpg
import httpx

from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import analytics_confirmed, published_event
from tests.support import cpu_hog, eventually, form_token

# One test client stands for many people here: no per-address sign-up limit.
PLATFORM_ENV = {"SIGNUP_RATE_PER_MINUTE": "0"}


async def test_a_broker_restart_loses_and_doubles_nothing(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    with cpu_hog():
        await broker_restart_loses_and_doubles_nothing(platform, figures)


async def broker_restart_loses_and_doubles_nothing(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, title="STO LIVE tijdens een storing")
    token = await form_token(platform.gateway, "/registrations", event_id)
    accepted: list[str] = []
    refused: Counter[str] = Counter()
    stop = asyncio.Event()

    async def keep_signing_up() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            email = f"deelnemer{number}@school.nl"
            try:
                answer = await platform.gateway.post(
                    f"/registrations/api/events/{event_id}/registrations",
                    json={"name": f"Deelnemer {number}", "email": email, "role": "docent",
                          "privacy_consent": True, "form_token": token},
                )  # fmt: skip
            except httpx.HTTPError as exc:
                refused[type(exc).__name__] += 1
                continue
            if answer.status_code == 202:
                accepted.append(email)
            else:
                refused[str(answer.status_code)] += 1
            await asyncio.sleep(0.01)

    signing_up = asyncio.create_task(keep_signing_up())
    try:
        await eventually(lambda: len(accepted) >= 30, what="sign-ups before the crash")
        assert platform.stack.broker is not None
        platform.stack.broker.kill()
        during = len(accepted)
        await eventually(lambda: platform.stack.broker_restarts >= 1, what="the broker restarted")
        await eventually(lambda: len(accepted) >= during + 30, what="sign-ups after the restart")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await signing_up

    try:
        await eventually(
            lambda: all(platform.smtp.to(email) for email in accepted),
            timeout_s=90,
            what=f"a confirmation for each of {len(accepted)} accepted sign-ups",
        )
    except AssertionError as exc:
        missing = [email for email in accepted if not platform.smtp.to(email)]
        raise AssertionError(f"{exc}\n{await where_they_are(platform, missing)}") from None
    await eventually(
        lambda: _equals(analytics_confirmed(platform, event_id), len(accepted)),
        timeout_s=60,
        what="analytics to count every accepted sign-up",
    )
    await asyncio.sleep(2.0)  # a duplicate, if any, would arrive by now
    doubled = [email for email in accepted if len(platform.smtp.to(email)) > 1]
    figures(
        f"broker restart: {len(accepted)} sign-ups accepted ({during} before the crash), "
        f"{sum(len(platform.smtp.to(e)) for e in accepted)} confirmation emails, "
        f"0 lost, {len(doubled)} doubled, refused during the outage: {dict(refused) or 0}"
    )
    assert doubled == []
    assert not refused


async def where_they_are(platform: Platform, missing: list[str]) -> str:
    """Where each sign-up without an email got stuck: the registrations outbox, the
    notifications queue, the launcher's reports and the services' warnings."""
    lines = [f"{len(missing)} without an email:"]
    conn = await asyncpg.connect(platform.stack.database_url)
    try:
        for email in missing[:20]:
            outbox = await conn.fetch(
                "SELECT topic, published_at IS NOT NULL AS published, publish_count"
                " FROM registrations.outbox WHERE position($1::bytea IN payload) > 0",
                f'"{email}"'.encode(),
            )
            queued = await conn.fetch(
                "SELECT kind, status, attempts, next_attempt_at, last_error"
                " FROM notifications.emails WHERE lower(recipient) = $1",
                email,
            )
            lines.append(f"  {email}: outbox {[dict(r) for r in outbox]}; "
                         f"emails {[dict(r) for r in queued]}")  # fmt: skip
        offsets = await conn.fetch("SELECT * FROM registrations.outbox_relay_offsets")
        lines.append(f"  registrations relay offsets: {sorted(tuple(r) for r in offsets)}")
    finally:
        await conn.close()
    lines += ["launcher:", *(f"  {line}" for line in platform.reports)]
    for log_file in sorted((platform.stack.config.data_dir / "logs").glob("*.log")):
        notable = [
            line[:300]
            for line in log_file.read_text(errors="replace").splitlines()
            if ('"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line)
            and '"logger": "aiokafka' not in line  # its reconnect noise during the outage
        ]
        if notable:
            lines += [f"{log_file.name} ({len(notable)} warnings/errors, last 15):"]
            lines += [f"  {line}" for line in notable[-15:]]
    return "\n".join(lines)


async def _equals(value: object, expected: int) -> bool:
    return bool(await value == expected)  # type: ignore[misc]
