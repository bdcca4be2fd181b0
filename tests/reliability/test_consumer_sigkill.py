"""SIGKILL consumers mid-batch, three times, while they work through thousands of messages.

Offsets are committed only after the effect commits, and the effect records the message id in
the same transaction: whatever was in flight at the kill is redelivered and recognised. The
figures: effects lost, effects doubled, and how many redeliveries the dedup absorbed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from sto_notifications.bootstrap import DEFINITION as NOTIFICATIONS
from stolive.processes import ManagedProcess
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventPublished, EventSnapshot
from stolive_shared.contracts.registrations import RegistrationConfirmed
from stolive_shared.db import apply_migrations
from stolive_shared.settings import KafkaSettings
from tests.reliability.conftest import ProcessFactory
from tests.sealing import TEST_KEYS
from tests.support import eventually, produce_messages

# Enough for every kill to land mid-batch, many batches in (a kill comes at 15-75 % of the
# progress); more only lengthens the suite.
MESSAGES = 5_000
KILLS = 3


async def kill_while_working(
    worker: ManagedProcess, progress: Callable[[], Awaitable[int]], total: int
) -> None:
    """SIGKILL the worker at three random points of its progress, restarting it each time."""
    for fraction in sorted(random.sample([0.15, 0.3, 0.45, 0.6, 0.75], KILLS)):
        target = int(total * fraction)

        async def reached(target: int = target) -> bool:
            return await progress() >= target

        await eventually(reached, timeout_s=120, interval_s=0.05, what=f"{target} effects")
        worker.kill()
        worker.start()


async def _at_least(count: Awaitable[int], threshold: int) -> bool:
    return await count >= threshold


def redeliveries(log_dir: Path) -> int:
    return sum(
        path.read_text(errors="replace").count("skipped a redelivered message")
        for path in log_dir.glob("*.log")
    )


async def test_registrations_consumer_survives_sigkill_mid_batch(
    database_url: str,
    service_process: ProcessFactory,
    kafka: KafkaSettings,
    tmp_path: Path,
    figures: Callable[[str], None],
) -> None:
    from sto_registrations.bootstrap import DEFINITION as REGISTRATIONS

    await apply_migrations(database_url, "registrations", [REGISTRATIONS.migrations])
    starts = datetime.now(UTC) + timedelta(days=20)
    messages: list[Message] = [
        EventPublished.create(
            event=EventSnapshot(
                event_id=uuid.uuid4(),
                revision=2,
                kind="webinar",
                status="published",
                title=f"STO LIVE #{n}",
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
            )
        )
        for n in range(MESSAGES)
    ]
    ours = [m.event.event_id for m in messages]  # type: ignore[attr-defined]
    await produce_messages(kafka, messages)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "registrations"})
    try:

        async def stored() -> int:
            count: int = await conn.fetchval("SELECT count(*) FROM events WHERE id = ANY($1)", ours)
            return count

        worker = service_process("registrations", "worker", database_url)
        await kill_while_working(worker, stored, MESSAGES)
        await eventually(lambda: _at_least(stored(), MESSAGES), timeout_s=180, what="every event")
        handled = await conn.fetchval(
            "SELECT count(*) FROM processed_messages WHERE consumer = 'registrations.events'"
            " AND message_id = ANY($1)",
            [m.message_id for m in messages],
        )
    finally:
        await conn.close()
    redelivered = redeliveries(tmp_path)
    figures(
        f"consumer SIGKILL (registrations): {MESSAGES} messages, {KILLS} kills, "
        f"0 lost, 0 doubled, {redelivered} redeliveries absorbed"
    )
    assert handled == MESSAGES


# The notifications consumer builds each confirmation with its calendar invitation (~80
# messages/s here, ~65 s for 5,000): its own waits bound it, not the suite's 300 s.
@pytest.mark.timeout(480)
async def test_notifications_consumer_survives_sigkill_mid_batch(
    database_url: str,
    service_process: ProcessFactory,
    kafka: KafkaSettings,
    tmp_path: Path,
    figures: Callable[[str], None],
) -> None:
    await apply_migrations(database_url, "notifications", [NOTIFICATIONS.migrations])
    starts = datetime.now(UTC) + timedelta(days=20)
    events = [uuid.uuid4() for _ in range(40)]
    messages: list[Message] = [
        RegistrationConfirmed.create(
            registration=TEST_KEYS.view(
                event_id=events[n % len(events)],
                name=f"Docent {n}",
                email=f"docent{n}@school.nl",
                viewer_id=f"v_{n}",
                event_title="STO LIVE",
                event_starts_at=starts,
                event_ends_at=starts + timedelta(hours=1),
                event_revision=2,
            )
        )
        for n in range(MESSAGES)
    ]
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifications"})
    await TEST_KEYS.store(conn)  # as the sign-ups stored them with their registrations
    await produce_messages(kafka, messages)
    ids = [m.registration.registration_id for m in messages]  # type: ignore[attr-defined]
    try:

        async def queued() -> int:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM emails WHERE registration_id = ANY($1)", ids
            )
            return count

        # The sender is throttled to nearly nothing: this test is about the consumer's effect.
        worker = service_process(
            "notifications", "worker", database_url, SMTP_PORT="9", MAIL_RATE_PER_S="0.2"
        )
        await kill_while_working(worker, queued, MESSAGES)
        await eventually(lambda: _at_least(queued(), MESSAGES), timeout_s=180, what="every email")
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT registration_id FROM emails"
            " WHERE registration_id = ANY($1) GROUP BY registration_id HAVING count(*) > 1) d",
            ids,
        )
    finally:
        await conn.close()
    redelivered = redeliveries(tmp_path)
    figures(
        f"consumer SIGKILL (notifications): {MESSAGES} messages, {KILLS} kills, "
        f"0 lost, {doubled} doubled, {redelivered} redeliveries absorbed"
    )
    assert doubled == 0
