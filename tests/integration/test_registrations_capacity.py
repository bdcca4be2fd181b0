"""No event is ever overbooked, however many people press the button at the same moment.

Two service instances (two pools, two group-commit batchers: two API processes) share one
real PostgreSQL database, as they would behind the gateway.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from sto_registrations import repository
from sto_registrations.bootstrap import DEFINITION
from sto_registrations.domain import Applicant
from sto_registrations.service import RegistrationsService
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.links import PersonalLinks
from stolive_shared.privacy import keyring
from stolive_shared.urls import PublicUrls

SCHEMA = "registrations"


@pytest.fixture(scope="module")
async def services(database_url: str) -> AsyncIterator[list[RegistrationsService]]:
    await apply_migrations(database_url, SCHEMA, [DEFINITION.migrations])
    pools = [await create_pool(database_url, SCHEMA, max_size=8) for _ in range(2)]
    made = [
        RegistrationsService(
            pool=pool, schema=SCHEMA, links=PersonalLinks("test-secret", PublicUrls("http://sto"))
        )
        for pool in pools
    ]
    yield made
    for service, pool in zip(made, pools, strict=True):
        await service.close()
        await pool.close()


async def published(
    pool: asyncpg.Pool, *, capacity: int | None, waitlist: bool = True, kind: str = "webinar"
) -> uuid.UUID:
    starts = datetime.now(UTC) + timedelta(days=7)
    snapshot = EventSnapshot(
        event_id=uuid.uuid4(),
        revision=1,
        kind=kind,
        status="published",
        title="STO LIVE #30: Techniek in de klas",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        capacity=capacity,
        waitlist_enabled=waitlist,
    )
    async with pool.acquire() as conn, conn.transaction():
        await repository.store_event(conn, snapshot)
    return snapshot.event_id


def person(number: int) -> Applicant:
    return Applicant(
        name=f"Docent {number}",
        email=f"docent{number}@school.nl",
        organisation="Dollard College",
        role="docent",
        region_code="groningen",
    )


async def outbox_types(pool: asyncpg.Pool, event_id: uuid.UUID) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE key = $1 ORDER BY id", str(event_id)
        )
    return [json.loads(bytes(r["payload"])) for r in rows]


async def addresses_in(pool: asyncpg.Pool, messages: list[dict[str, Any]]) -> list[str]:
    """The addresses the messages' sealed contacts hold, opened as a consumer opens them."""
    async with pool.acquire() as conn:
        opened = [
            await keyring.open_contact(
                conn, Sealed.model_validate(message["registration"]["contact"])
            )
            for message in messages
        ]
    return [contact.email if contact else "?" for contact in opened]


async def test_500_concurrent_sign_ups_for_50_seats_then_10_cancellations_promote_in_order(
    services: list[RegistrationsService], figures: Callable[[str], None]
) -> None:
    pool = services[0].pool
    event_id = await published(pool, capacity=50)

    results = await asyncio.gather(
        *(services[n % 2].sign_up(event_id, person(n)) for n in range(500))
    )

    statuses = [r.registration.status for r in results]
    assert statuses.count("confirmed") == 50
    assert statuses.count("waitlisted") == 450
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT lower(email) AS email, status, queue_number FROM registrations"
            " WHERE event_id = $1 ORDER BY queue_number",
            event_id,
        )
        counters = await conn.fetchrow(
            "SELECT confirmed_count, waitlisted_count FROM events WHERE id = $1", event_id
        )
    duplicates = len(rows) - len({r["email"] for r in rows})
    assert len(rows) == 500
    assert duplicates == 0
    assert (counters["confirmed_count"], counters["waitlisted_count"]) == (50, 450)
    # Seats went to the earliest in the queue, the waiting list is the rest in order.
    assert {r["status"] for r in rows[:50]} == {"confirmed"}
    assert {r["status"] for r in rows[50:]} == {"waitlisted"}

    messages = await outbox_types(pool, event_id)
    assert [m["type"] for m in messages].count("registration.confirmed") == 50
    waitlisted = [m for m in messages if m["type"] == "registration.waitlisted"]
    assert sorted(m["waitlist_position"] for m in waitlisted) == list(range(1, 451))
    assert len(messages) == 500  # one message per outcome, committed with it

    confirmed = [r for r in results if r.registration.status == "confirmed"]
    next_in_line = [r["email"] for r in rows[50:60]]
    for result in confirmed[:10]:
        await services[0].cancel(result.registration.id, "cancelled_by_registrant")

    async with pool.acquire() as conn:
        promoted_rows = await conn.fetch(
            "SELECT lower(email) AS email FROM registrations"
            " WHERE event_id = $1 AND status = 'confirmed' AND queue_number > $2"
            " ORDER BY queue_number",
            event_id,
            rows[49]["queue_number"],
        )
        counts = await repository.status_counts(conn, event_id)
    assert [r["email"] for r in promoted_rows] == next_in_line
    assert counts["confirmed"] == 50
    assert counts["waitlisted"] == 440
    messages = await outbox_types(pool, event_id)
    promoted = [m for m in messages if m["type"] == "registration.promoted"]
    assert await addresses_in(pool, promoted) == next_in_line
    assert len(messages) == 500 + 10 + 10  # + cancellations + promotions
    figures(
        f"500 concurrent sign-ups for 50 seats: {statuses.count('confirmed')} confirmed, "
        f"{statuses.count('waitlisted')} waitlisted, 0 overbooked, {duplicates} duplicates, "
        f"{len(messages) - 20} outbox messages for 500 outcomes; 10 cancellations promoted "
        f"the next {len(promoted)} in order"
    )


async def test_the_same_people_pressing_twice_at_once_get_one_registration_each(
    services: list[RegistrationsService],
) -> None:
    event_id = await published(services[0].pool, capacity=10, waitlist=False)

    results = await asyncio.gather(
        *(services[n % 2].sign_up(event_id, person(n % 8)) for n in range(64))
    )

    by_email: dict[str, set[uuid.UUID]] = {}
    for result in results:
        by_email.setdefault(result.registration.applicant.email, set()).add(result.registration.id)
    assert len(by_email) == 8
    assert all(len(ids) == 1 for ids in by_email.values())
    assert sum(r.created for r in results) == 8
    for service in services:
        await service.drain_follow_ups()
    messages = await outbox_types(services[0].pool, event_id)
    assert [m["type"] for m in messages].count("registration.confirmed") == 8
    # Each address signed up again is told so, at most once in the interval.
    told = await addresses_in(
        services[0].pool, [m for m in messages if m["type"] == "registration.sign_up_repeated"]
    )
    assert len(told) == len(set(told)) <= 8


async def test_without_a_waiting_list_a_rush_fills_the_seats_and_refuses_the_rest_with_409(
    services: list[RegistrationsService],
) -> None:
    event_id = await published(services[0].pool, capacity=20, waitlist=False)

    answers = await asyncio.gather(
        *(services[n % 2].sign_up(event_id, person(1000 + n)) for n in range(60)),
        return_exceptions=True,
    )

    refused = [a for a in answers if isinstance(a, Exception)]
    assert len(refused) == 40
    assert {getattr(a, "status", None) for a in refused} == {409}
    async with services[0].pool.acquire() as conn:
        counts = await repository.status_counts(conn, event_id)
    assert counts["confirmed"] == 20
    assert counts["waitlisted"] == 0


async def test_cancellations_during_a_rush_keep_every_count_exact(
    services: list[RegistrationsService], figures: Callable[[str], None]
) -> None:
    pool = services[0].pool
    event_id = await published(pool, capacity=30)
    first = await asyncio.gather(
        *(services[0].sign_up(event_id, person(5000 + n)) for n in range(40))
    )
    leaving = [r.registration.id for r in first if r.registration.status == "confirmed"][:15]

    rush = [services[n % 2].sign_up(event_id, person(6000 + n)) for n in range(300)]
    cancellations = [
        services[n % 2].cancel(i, "cancelled_by_registrant") for n, i in enumerate(leaving)
    ]
    await asyncio.gather(*rush, *cancellations)

    async with pool.acquire() as conn:
        held = await conn.fetchrow(
            "SELECT confirmed_count, waitlisted_count FROM events WHERE id = $1", event_id
        )
        counts = await repository.status_counts(conn, event_id)
        order = await conn.fetch(
            "SELECT status FROM registrations WHERE event_id = $1 AND status <> 'cancelled'"
            " ORDER BY queue_number",
            event_id,
        )
    statuses = [r["status"] for r in order]
    assert counts["confirmed"] == 30
    assert (held["confirmed_count"], held["waitlisted_count"]) == (30, counts["waitlisted"])
    assert counts["waitlisted"] == 340 - 15 - 30
    # The confirmed are exactly the first 30 of those still registered, in queue order.
    assert statuses == ["confirmed"] * 30 + ["waitlisted"] * (len(statuses) - 30)
    kinds = [m["type"] for m in await outbox_types(pool, event_id)]
    signed_up = kinds.count("registration.confirmed") + kinds.count("registration.waitlisted")
    assert signed_up == 340
    assert kinds.count("registration.cancelled") == 15
    # Every seat is accounted for by a message: confirmed + promoted - cancelled = seated.
    seated = kinds.count("registration.confirmed") + kinds.count("registration.promoted") - 15
    assert seated == 30
    figures(
        f"340 sign-ups for 30 seats with 15 cancellations during the rush: "
        f"{counts['confirmed']} confirmed, {counts['waitlisted']} waitlisted, 0 overbooked, "
        f"counters equal to the rows"
    )


async def test_one_sign_up_the_database_refuses_does_not_sink_its_batch(
    services: list[RegistrationsService],
) -> None:
    event_id = await published(services[0].pool, capacity=10)
    poisoned = Applicant("Nul\x00Byte", "nul@school.nl", "", "docent", None)

    answers = await asyncio.gather(
        *(services[0].sign_up(event_id, person(7000 + n)) for n in range(5)),
        services[0].sign_up(event_id, poisoned),
        *(services[0].sign_up(event_id, person(7100 + n)) for n in range(5)),
        return_exceptions=True,
    )

    failed = [a for a in answers if isinstance(a, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], asyncpg.DataError | UnicodeError)
    async with services[0].pool.acquire() as conn:
        assert (await repository.status_counts(conn, event_id))["confirmed"] == 10
