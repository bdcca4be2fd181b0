"""SIGKILL the registrations process at random moments during 1,000 sign-ups.

Every accepted sign-up must have exactly one outbox message, and every message must reach
Kafka. Clients retry when the process is gone; a retried sign-up with the same email returns
the registration that was already committed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import asyncpg
import httpx

from stolive_shared.contracts.codec import header
from stolive_shared.contracts.topics import REGISTRATIONS
from stolive_shared.settings import KafkaSettings
from tests.reliability.conftest import ProcessFactory, base_url, published_event, wait_ready
from tests.support import eventually, form_token, read_topic

# A client retrying a sign-up whose answer the kill swallowed is a repeat: that address is
# told so by e-mail (one more message), and its registration still has one seat message.
REPEATED = "registration.sign_up_repeated"

SIGN_UPS = 1000
KILLS = 3


async def test_killed_mid_sign_up_every_accepted_sign_up_has_one_message_on_kafka(
    registrations_db: str,
    service_process: ProcessFactory,
    kafka: KafkaSettings,
    figures: Callable[[str], None],
) -> None:
    api = service_process("registrations", "api,relay", registrations_db)
    await wait_ready(api)
    event_id = await published_event(registrations_db, capacity=300)
    url = f"{base_url(api)}/api/events/{event_id}/registrations"
    accepted: set[str] = set()
    retries = 0
    pending = list(range(SIGN_UPS))
    random.shuffle(pending)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in pending:
        queue.put_nowait(number)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal retries
        while not queue.empty():
            number = queue.get_nowait()
            email = f"leraar{number}@school.nl"
            while True:
                try:
                    answer = await client.post(
                        url,
                        json={"name": f"Leraar {number}", "email": email, "role": "docent",
                              "privacy_consent": True, "form_token": token},
                    )  # fmt: skip
                    if answer.status_code == 202:
                        accepted.add(email)
                        break
                except httpx.HTTPError:
                    pass
                retries += 1
                await asyncio.sleep(0.05)

    async def killer() -> None:
        for threshold in sorted(random.sample(range(150, SIGN_UPS - 150), KILLS)):

            def reached(target: int = threshold) -> bool:
                return len(accepted) >= target

            await eventually(reached, timeout_s=120, interval_s=0.01, what=f"{threshold} accepted")
            api.kill()
            api.start()

    async with httpx.AsyncClient(timeout=10) as client:
        token = await form_token(client, base_url(api), event_id)
        await asyncio.gather(killer(), *(client_loop(client) for _ in range(20)))

    conn = await asyncpg.connect(registrations_db, server_settings={"search_path": "registrations"})
    try:
        per_registration = await conn.fetch(
            """SELECT r.email, count(o.id) AS messages
               FROM registrations r LEFT JOIN outbox o
                 ON convert_from(o.payload, 'UTF8')::jsonb #>> '{registration,registration_id}'
                    = r.id::text
                AND convert_from(o.payload, 'UTF8')::jsonb ->> 'type' <> $2
               WHERE r.event_id = $1 GROUP BY r.email""",
            event_id,
            REPEATED,
        )
        await eventually(
            lambda: _none_unpublished(conn),
            timeout_s=60,
            what="every outbox row published",
        )
        message_ids = {
            str(r["message_id"])
            for r in await conn.fetch(
                "SELECT message_id FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb"
                " #>> '{registration,event_id}' = $1"
                " AND convert_from(payload, 'UTF8')::jsonb ->> 'type' <> $2",
                str(event_id),
                REPEATED,
            )
        }
    finally:
        await conn.close()
    on_kafka = {
        header(r.headers, "message_id")
        for r in await read_topic(kafka, REGISTRATIONS.name, REGISTRATIONS.partitions)
    }
    missing = message_ids - on_kafka
    figures(
        f"outbox crash: {SIGN_UPS} sign-ups, {KILLS} SIGKILLs, {retries} client retries, "
        f"{len(accepted)} accepted, {len(message_ids)} outbox messages, "
        f"{len(missing)} missing on Kafka"
    )
    assert len(accepted) == SIGN_UPS
    assert {r["email"] for r in per_registration} == accepted
    assert all(r["messages"] == 1 for r in per_registration)
    assert len(message_ids) == SIGN_UPS
    assert missing == set()


async def _none_unpublished(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))
