"""Lock order on a real PostgreSQL: every transaction that locks an event's row and some of
its registrations takes the event's row first. The consumer applying an event change does
(the event, then its registrations); a person cancelling must too, or a cancellation at the
moment the event is cancelled deadlocks, and PostgreSQL kills one of the two.

The test stands in for the consumer with a transaction of its own that takes the locks in the
consumer's order, and holds the event's row while the person cancels."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from sto_registrations.domain import Applicant
from sto_registrations.service import RegistrationsService
from tests.integration import test_registrations_lifecycle
from tests.integration.test_registrations_lifecycle import SCHEMA, apply, snapshot
from tests.support import eventually

# A real RegistrationsService on this module's database: the lifecycle tests' fixture.
service = test_registrations_lifecycle.service


async def published_event(service: RegistrationsService) -> uuid.UUID:
    return await apply(service, snapshot())


async def waiting_for_a_lock(database_url: str, application_name: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        waiting = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE wait_event_type = 'Lock' AND application_name = $1""",
            application_name,
        )
        return bool(waiting)
    finally:
        await conn.close()


async def test_a_cancellation_while_the_event_is_being_cancelled_waits_and_never_deadlocks(
    service: RegistrationsService, database_url: str
) -> None:
    event_id = await published_event(service)
    seated = await service.sign_up(
        event_id, Applicant("Anna de Vries", "anna@esdal.nl", "Esdal College", "docent", "drenthe")
    )
    registration_id = seated.registration.id
    consumer = await asyncpg.connect(database_url, server_settings={"search_path": SCHEMA})
    try:
        async with consumer.transaction():
            # The consumer's order: the event's row first ...
            await consumer.execute("SELECT 1 FROM events WHERE id = $1 FOR UPDATE", event_id)
            # ... while the person cancels (their transaction must wait for the event) ...
            async with service.pool.acquire() as probe:
                name = await probe.fetchval("SHOW application_name")
            cancelling = asyncio.create_task(service.cancel(registration_id, "cancelled"))
            await eventually(
                lambda: waiting_for_a_lock(database_url, name), what="the cancellation waits"
            )
            # ... then the event's registrations. With the person holding their registration's
            # row this would wait for them while they wait for the event: a deadlock.
            await asyncio.wait_for(
                consumer.execute(
                    """UPDATE registrations SET status = 'cancelled', cancel_reason =
                       'event_cancelled' WHERE event_id = $1 AND status <> 'cancelled'""",
                    event_id,
                ),
                timeout=30,
            )
        cancelled = await asyncio.wait_for(cancelling, timeout=30)
    finally:
        await consumer.close()
    assert cancelled.status == "cancelled"
