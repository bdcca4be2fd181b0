"""The programme team's "Onbestelbare berichten" page, from outside: a record no consumer can
read is sent to a topic the services consume, a consumer dead-letters it, the page lists it
(the error and where it came from, never its value), and discarding it on the page takes it off
the page and off `stolive dlq list`, with a row in the audit log. Other roles get the Dutch
403 page, visitors without a session the login page.

The whole platform (launcher stack, gateway, PostgreSQL, embedded broker), a real Chromium for
the page and axe-core, and `stolive dlq` run as an operator runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from stolive_shared.contracts.topics import EVENTS
from stolive_shared.messaging.kafka import create_producer
from tests.e2e.conftest import Platform
from tests.support import eventually, serious_accessibility_violations

PAGE = "/events/organiser/dead-letters"


async def send_poison(platform: Platform, value: bytes) -> tuple[int, int]:
    """A record that is not a message at all, on the topic the registrations service and the
    analytics workers consume; the (partition, offset) the broker stored it at."""
    producer = create_producer(platform.kafka)
    await producer.start()
    try:
        ack = await producer.send_and_wait(EVENTS.name, value=value, key=uuid.uuid4().bytes)
    finally:
        await producer.stop()
    return ack.partition, ack.offset


def letter_of(html: str, partition: int, offset: int) -> str | None:
    """The id of a listed dead letter of the record at ``partition``/``offset`` of sto.events."""
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL):
        if f"partitie {partition}, positie {offset}<" in row and EVENTS.name in row:
            found = re.search(r'<code id="kenmerk-[^"]+">([^<]+)</code>', row)
            if found:
                return found.group(1)
    return None


async def stolive_dlq_list(platform: Platform) -> list[dict[str, Any]]:
    """`stolive dlq list --json`, as an operator runs it against this platform."""
    env = {
        **os.environ,
        "DATABASE_URL": platform.stack.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": platform.stack.bootstrap_servers,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stolive.ops", "dlq", "list", "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, errors = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, errors.decode()
    letters: list[dict[str, Any]] = json.loads(output)
    return letters


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_a_dead_letter_is_listed_and_discarded_on_the_programme_teams_page(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    base = platform.stack.config.public_base_url
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await platform.log_in(page)
        await page.get_by_role("link", name="Onbestelbare berichten").click()
        await page.wait_for_url(f"{base}{PAGE}")
        await page.get_by_text("Er zijn geen onbestelbare berichten").wait_for()
        assert await serious_accessibility_violations(page) == [], "the empty page"

        secret = f"geheim-{uuid.uuid4().hex}"
        partition, offset = await send_poison(platform, f"{secret} is geen JSON".encode())

        async def listed() -> str | None:
            await page.goto(f"{base}{PAGE}")
            return letter_of(await page.content(), partition, offset)

        letter_id = await eventually(listed, timeout_s=120, interval_s=1, what="the dead letter")
        assert letter_id.startswith(f"{EVENTS.dlq.name}:")
        row = page.get_by_role("row").filter(has_text=letter_id)
        assert "UndecodableMessage" in await row.inner_text()
        assert secret not in await page.content(), "a letter's value never shows"
        assert await serious_accessibility_violations(page) == [], "the page with a letter"

        # Support may read events and figures, not handle dead letters: not the page, not a POST.
        token = await platform.account_token("support-dlq", "support")
        async with platform.browser_as(token) as support:
            refused = await support.get(PAGE)
            assert refused.status_code == 403
            assert "Geen toegang" in refused.text
            csrf = csrf_of((await support.get("/events/organiser/uitloggen")).text)
            posted = await support.post(
                f"{PAGE}/afhandelen", data={"csrf_token": csrf, "id": letter_id}
            )
            assert posted.status_code == 403
            assert "Geen toegang" in posted.text
        async with httpx.AsyncClient(base_url=base, timeout=15) as visitor:
            to_login = await visitor.get(PAGE)
            assert to_login.status_code == 303
            assert to_login.headers["location"].startswith("/events/organiser/inloggen")
        assert any(x["id"] == letter_id for x in await stolive_dlq_list(platform))

        await row.get_by_label("Notitie (niet verplicht)").fill("testbericht van de e2e-test")
        await row.get_by_role("button", name="Afhandelen zonder opnieuw aanbieden").click()
        notice = page.get_by_role("status")
        await notice.wait_for()
        assert letter_id in await notice.inner_text()
        assert "afgehandeld" in await notice.inner_text()
        assert letter_of(await page.content(), partition, offset) != letter_id
        await page.goto(f"{base}{PAGE}")
        assert letter_id not in await page.content()
    finally:
        await context.close()

    assert all(x["id"] != letter_id for x in await stolive_dlq_list(platform))
    async with platform.organiser_browser() as organiser:
        audit = await organiser.get(
            "/events/organiser/logboek", params={"handeling": "dead_letter_discarded"}
        )
        assert audit.status_code == 200
        assert f"dead-letter:{letter_id}" in audit.text
        again = await organiser.get(PAGE)
        assert again.status_code == 200
        # The same letter once more (a second tab, a double click): refused, nothing changes.
        twice = await organiser.post(
            f"{PAGE}/afhandelen", data={"csrf_token": csrf_of(again.text), "id": letter_id}
        )
        assert twice.status_code == 409
        assert "al afgehandeld" in twice.text
        bad = await organiser.post(
            f"{PAGE}/opnieuw-aanbieden", data={"csrf_token": csrf_of(again.text), "id": "x:1"}
        )
        assert bad.status_code == 422
        assert "geen kenmerk van een onbestelbaar bericht" in bad.text
    figures(
        f"dead letter {letter_id} of a record that is not JSON listed on the page without its "
        "value, refused to support, discarded: gone from the page and `stolive dlq list`, audited"
    )
