"""A rush through the one address: many browsers at once on one event, none refused.

Each browser has its own cookies and comes from its own loopback address (127.0.0.0/8), as
teachers come from many schools, so the per-address sign-up limit stays on. Each opens the
sign-up form (its form token and cookie) and sends it, all at the same moment, through the
gateway. Every browser gets its form and its answer, the seats hold, and each person gets
exactly one e-mail. And a form sent during a rush is answered before the pages asked for
earlier. (``python -m bench rush`` runs the full-size rush and prints its figures.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx

from bench.rush import filled_in_form, loopback_addresses, rush, seats
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


PAGES_ASKED_FIRST = 300
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _ask_for_pages(host: str, port: int, path: str, count: int) -> list[asyncio.Task[bytes]]:
    """``count`` page requests, each on a connection of its own from one of the loopback
    addresses, written all at once once every connection is open; each task reads its answer
    to the end."""
    addresses = loopback_addresses(ADDRESSES)
    connections = await asyncio.gather(
        *(
            asyncio.open_connection(host, port, local_addr=(addresses[n % ADDRESSES], 0))
            for n in range(count)
        )
    )
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    for _reader, writer in connections:
        writer.write(request)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        try:
            return await reader.read(-1)
        finally:
            writer.close()

    return [asyncio.create_task(answer(reader, writer)) for reader, writer in connections]


async def test_a_form_sent_in_a_rush_is_answered_before_the_pages_asked_for_earlier(
    platform: Platform, figures: Callable[[str], None]
) -> None:
    """Who has filled in the form and pressed the button does not wait behind every page
    requested before the press: the gateway gives a sent form the next free turn."""
    event_id = await published_event(platform, capacity=SEATS, title="STO LIVE: de voorrang")
    config = platform.stack.config
    form_path = f"/registrations/events/{event_id}/aanmelden"
    async with httpx.AsyncClient(
        base_url=config.public_base_url,
        timeout=180,
        # A connection of its own for the press, as after a while on the page (a kept-alive
        # one may be closing by then).
        transport=httpx.AsyncHTTPTransport(
            local_address="127.0.9.2", limits=httpx.Limits(max_keepalive_connections=0)
        ),
    ) as teacher:
        form = await teacher.get(form_path)
        token = _CSRF.search(form.text)
        assert form.status_code == 200
        assert token is not None

        pages = await _ask_for_pages("127.0.0.1", config.gateway_port, form_path, PAGES_ASKED_FIRST)
        await asyncio.wait(pages, return_when=asyncio.FIRST_COMPLETED)  # the queue moves
        sent = await teacher.post(
            form_path, data=filled_in_form(token.group(1), "Docent Voorrang", "voorrang@school.nl")
        )
        still_waiting = sum(not page.done() for page in pages)
        answers = await asyncio.gather(*pages)

    assert sent.status_code == 303, sent.text
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    # Pages first come, first served would leave none waiting: all were asked for earlier.
    assert still_waiting >= PAGES_ASKED_FIRST // 3, still_waiting
    figures(
        f"a form sent behind {PAGES_ASKED_FIRST} page requests was answered with "
        f"{still_waiting} of them still waiting"
    )
