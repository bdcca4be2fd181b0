"""Last seat: 500 people press the button at once; never more confirmed than seats."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from tests.reliability.conftest import ProcessFactory, base_url, published_event, wait_ready
from tests.support import form_token

ATTEMPTS = 500


@pytest.mark.parametrize("capacity", [1, 50])
@pytest.mark.parametrize("round_number", [1, 2])
async def test_concurrent_sign_ups_never_overbook(
    registrations_db: str,
    service_process: ProcessFactory,
    figures: Callable[[str], None],
    capacity: int,
    round_number: int,
) -> None:
    api = service_process("registrations", "api,relay", registrations_db)
    await wait_ready(api)
    event_id = await published_event(registrations_db, capacity=capacity)
    url = f"{base_url(api)}/api/events/{event_id}/registrations"
    statuses: Counter[str] = Counter()

    # Every press on a connection of its own, as 500 people's browsers would have: none reuses
    # another's kept-alive connection (which a busy server may be closing at that moment).
    async with httpx.AsyncClient(
        timeout=60, limits=httpx.Limits(max_connections=ATTEMPTS, max_keepalive_connections=0)
    ) as client:
        token = await form_token(client, base_url(api), event_id)

        async def sign_up(number: int) -> None:
            answer = await client.post(
                url,
                json={"name": f"Docent {number}", "email": f"docent{number}@school.nl",
                      "role": "docent", "privacy_consent": True, "form_token": token},
            )  # fmt: skip
            statuses[str(answer.status_code)] += 1

        await asyncio.gather(*(sign_up(n) for n in range(ATTEMPTS)))

    conn = await asyncpg.connect(registrations_db, server_settings={"search_path": "registrations"})
    try:
        stored = dict(
            await conn.fetch(
                "SELECT status, count(*) FROM registrations WHERE event_id = $1 GROUP BY status",
                event_id,
            )
        )
        seats_taken = await conn.fetchval(
            "SELECT confirmed_count FROM events WHERE id = $1", event_id
        )
    finally:
        await conn.close()
    overbooked = max(0, stored.get("confirmed", 0) - capacity)
    server_errors = sum(count for status, count in statuses.items() if status.startswith("5"))
    figures(
        f"last seat (capacity {capacity}, round {round_number}): {ATTEMPTS} attempts, "
        f"{statuses['202']} accepted: {stored.get('confirmed', 0)} confirmed, "
        f"{stored.get('waitlisted', 0)} waitlisted, "
        f"{overbooked} overbooked, {server_errors} server errors"
    )
    assert statuses == Counter({"202": ATTEMPTS})
    assert stored == {"confirmed": capacity, "waitlisted": ATTEMPTS - capacity}
    assert seats_taken == capacity
