"""Floods from one address, tried from outside: the sign-up, newsletter and login limits hold
across API processes, an address is the one the platform's own proxy saw (a client's
``X-Forwarded-For`` claim changes nothing), and the JSON sign-up API wants its form token.

Each test comes from an address of its own on the loopback network (127.0.0.x), so the
budgets of one test do not spill into another's.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from stolive.broker import free_port
from stolive.processes import ManagedProcess
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event
from tests.support import eventually, form_token, organiser_login

BURST = 5
PLATFORM_ENV = {
    "SIGNUP_RATE_PER_MINUTE": "6",
    "SIGNUP_RATE_BURST": str(BURST),
    "SIGNUP_FORM_TOKEN_MIN_AGE_S": "2",
    "SUBSCRIBE_RATE_PER_MINUTE": "6",
    "SUBSCRIBE_RATE_BURST": "3",
    "LOGIN_RATE_PER_MINUTE": "6",
    "LOGIN_RATE_BURST": "4",
}


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.0.0.x is this machine)."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=15,
    )


def person(n: int, token: str) -> dict[str, Any]:
    return {
        "name": f"Bot {n}",
        "email": f"bot{n}-{uuid.uuid4().hex[:6]}@spam.example",
        "role": "anders",
        "privacy_consent": True,
        "form_token": token,
    }


async def usable_token(client: httpx.AsyncClient, prefix: str, event_id: str) -> str:
    """A form token, once it may be used (two seconds after it was fetched)."""
    token = await form_token(client, prefix, event_id)
    # Not a wait for something to happen: the token's own rule (a person takes that long at
    # least); a loaded machine only makes it later, never too early.
    await asyncio.sleep(2.1)
    return token


@pytest.fixture(scope="module")
async def second_api(platform: Platform, tmp_path_factory: Any) -> AsyncIterator[str]:
    """Another registrations API process on the same database: a second replica."""
    port = free_port()
    secrets = platform.stack.config.data_dir / "secrets"
    process = ManagedProcess(
        name="registrations-replica",
        args=["-m", "sto_registrations", "api"],
        env={
            **os.environ,
            **PLATFORM_ENV,
            "DATABASE_URL": platform.stack.database_url,
            "HTTP_PORT": str(port),
            "LINK_SECRET": (secrets / "link-secret").read_text(),
            "SESSION_SECRET": (secrets / "session-secret").read_text(),
            "PUBLIC_BASE_URL": platform.stack.config.public_base_url,
            "LOG_LEVEL": "WARNING",
        },
        log_file=Path(tmp_path_factory.mktemp("replica")) / "replica.log",
        health_url=f"http://127.0.0.1:{port}/readyz",
    )
    process.start()
    url = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await eventually(ready, timeout_s=60, what="the second registrations API")
        yield url
    finally:
        await process.stop()


async def test_a_flood_through_two_api_processes_draws_on_one_budget_whatever_it_claims(
    platform: Platform, second_api: str, figures: Callable[[str], None]
) -> None:
    event_id = await published_event(platform, capacity=None, title="Overspoeld")
    base = platform.stack.config.public_base_url
    statuses: list[int] = []
    async with (
        client_from("127.0.0.3", base) as via_gateway,
        client_from("127.0.0.3", second_api) as direct,
    ):
        token = await usable_token(via_gateway, "/registrations", event_id)
        for n in range(BURST + 4):
            # Every request claims another address; neither process believes it.
            claim = {"X-Forwarded-For": f"198.51.100.{n}"}
            client, prefix = (via_gateway, "/registrations") if n % 2 else (direct, "")
            answer = await client.post(
                f"{prefix}/api/events/{event_id}/registrations",
                json=person(n, token),
                headers=claim,
            )
            statuses.append(answer.status_code)
        refused = answer
        # The HTML form shares the budget: the same address is refused there too, in Dutch.
        page = await via_gateway.get(f"/registrations/events/{event_id}/aanmelden")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        form = await via_gateway.post(
            f"/registrations/events/{event_id}/aanmelden",
            data={"csrf_token": csrf.group(1), "name": "Bot", "email": "bot@spam.example",
                  "role": "docent", "consent": "ja"},
        )  # fmt: skip
    assert statuses == [202] * BURST + [429] * 4
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Te veel aanmeldingen vanaf dit adres" in refused.json()["detail"]
    assert form.status_code == 429
    assert "Te veel aanmeldingen vanaf dit adres" in form.text
    # Another address has its own budget.
    async with client_from("127.0.0.4", base) as neighbour:
        token = await usable_token(neighbour, "/registrations", event_id)
        answer = await neighbour.post(
            f"/registrations/api/events/{event_id}/registrations", json=person(99, token)
        )
    assert answer.status_code == 202
    figures(
        f"abuse: {len(statuses)} sign-ups from one address, alternating between two API "
        f"processes, each claiming another X-Forwarded-For: {statuses.count(202)} accepted "
        f"(the burst), {statuses.count(429)} refused with 429; the form refused too"
    )


async def test_the_newsletter_form_and_the_login_are_limited_per_address(
    platform: Platform,
) -> None:
    base = platform.stack.config.public_base_url
    async with client_from("127.0.0.5", base) as client:
        page = await client.get("/notifications/nieuwsbrief")
        fields = dict(re.findall(r'name="(csrf_token|started)" value="([^"]+)"', page.text))
        answers = [
            await client.post(
                "/notifications/nieuwsbrief",
                data={**fields, "email": f"lezer{n}@school.nl", "name": "Lezer"},
            )
            for n in range(5)
        ]
        assert [a.status_code for a in answers] == [200] * 3 + [429] * 2
        assert "Te veel aanmeldingen" in answers[-1].text

        login = await client.get("/events/organiser/inloggen")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        tries = [
            await client.post(
                "/events/organiser/inloggen",
                data={"csrf_token": csrf.group(1), "token": f"sto_geraden{n}"},
            )
            for n in range(4)
        ]
        assert [t.status_code for t in tries] == [403] * 4
        # Past the budget even the right key waits: guessing cannot go on at speed.
        right = await client.post(
            "/events/organiser/inloggen",
            data={"csrf_token": csrf.group(1), "token": platform.stack.organiser_token},
        )
        assert right.status_code == 429
        assert "Te veel inlogpogingen" in right.text
    async with client_from("127.0.0.6", base) as organiser:
        answer = await organiser_login(organiser, platform.stack.organiser_token)
        assert answer.status_code == 303


async def test_the_json_api_wants_a_form_token_of_its_event_fetched_a_moment_before(
    platform: Platform,
) -> None:
    event_id = await published_event(platform, capacity=None, title="Formuliersleutel")
    other_event = await published_event(platform, capacity=None, title="Een ander evenement")
    base = platform.stack.config.public_base_url
    url = f"/registrations/api/events/{event_id}/registrations"
    async with client_from("127.0.0.7", base) as client:
        without = await client.post(url, json={**person(1, ""), "form_token": None})
        assert without.status_code == 422
        fresh = await form_token(client, "/registrations", event_id)
        too_soon = await client.post(url, json=person(2, fresh))
        assert too_soon.status_code == 422
        assert too_soon.json()["detail"][0]["loc"] == ["body", "form_token"]
        assert too_soon.json()["detail"][0]["msg"].startswith("Zo snel vult niemand")
        elsewhere = await form_token(client, "/registrations", other_event)
        wrong_event = await client.post(url, json=person(3, elsewhere))
        assert wrong_event.json()["detail"][0]["msg"] == (
            "Deze formuliersleutel hoort niet bij dit evenement."
        )

        async def accepted() -> bool:
            answer = await client.post(url, json=person(4, fresh))
            return answer.status_code == 202

        await eventually(accepted, timeout_s=20, interval_s=0.5, what="the token to serve")
