"""A rush through the one address: many browsers at once on one event, none refused.

Each browser has its own cookies and comes from its own loopback address (127.0.0.0/8), as
teachers come from many schools, so the per-address sign-up limit stays on. Each opens the
sign-up form (its form token and cookie) and sends it, all at the same moment, through the
gateway. Every browser gets its form and its answer, the seats hold, and each person gets
exactly one e-mail. (``python -m bench rush`` runs the full-size rush and prints its figures.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bench.rush import loopback_addresses, rush, seats
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually

BROWSERS = 200
ADDRESSES = 50
SEATS = 50


async def test_a_rush_on_one_event_is_queued_not_refused(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, capacity=SEATS, title="STO LIVE: de drukte")
    base = platform.stack.config.public_base_url

    started = asyncio.get_running_loop().time()
    visits = await rush(base, event_id, BROWSERS, loopback_addresses(ADDRESSES))
    cleared = asyncio.get_running_loop().time() - started

    refused = [f"{v.email}: {v.error}" for v in visits if not v.ok]
    assert refused == []
    held = await seats(platform.stack.database_url, event_id)
    assert held == {"confirmed": SEATS, "waitlisted": BROWSERS - SEATS, "overbooked": 0}
    await eventually(
        lambda: all(platform.smtp.to(v.email) for v in visits),
        timeout_s=120,
        what=f"an e-mail for each of the {BROWSERS} people",
    )
    await asyncio.sleep(2.0)  # a second e-mail, if any, would arrive by now
    assert [v.email for v in visits if len(platform.smtp.to(v.email)) != 1] == []
    slowest = max(v.answer_s for v in visits)
    figures(
        f"rush through the gateway: {BROWSERS} browsers from {ADDRESSES} addresses on "
        f"{SEATS} seats: 0 refused, cleared in {cleared:.1f}s (slowest answer {slowest:.1f}s), "
        f"{held['confirmed']} confirmed, {held['waitlisted']} waitlisted, 0 overbooked, "
        "1 e-mail each"
    )
