"""Organiser sessions through the one address, with real browsers: what one browser did never
opens anything to another, logout and revocation end a session in every service at once, and
the cookie is one a browser guards.

Every route that is not public is read from the four apps (``routes.py``): a route added later
is covered without editing these tests.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.organisers.store import OrganiserStore
from tests.e2e.conftest import Platform
from tests.e2e.test_walking_skeleton import published_event, sign_up
from tests.security.routes import ServiceRoute, service_routes
from tests.support import eventually, organiser_token

LOGIN = "/events/organiser/inloggen"


def organiser_routes() -> list[ServiceRoute]:
    return [route for route in service_routes() if route.access != "public"]


def refused(route: ServiceRoute, status: int, location: str) -> bool:
    """An organiser route's answer to a visitor without a session: the API says 401, a page
    sends them to the login page; an internal route is not there for anyone but the
    platform's own services (404, organiser or not)."""
    if route.access == "internal":
        return status == 404
    if route.access == "organiser page":
        return status == 303 and location.startswith(LOGIN)
    return status == 401


async def route_values(platform: Platform) -> dict[str, str]:
    """Real ids for the routes' parameters, so an answer is not a 404 for want of one."""
    event_id = await published_event(platform, title="Beveiligingstest")
    await sign_up(platform, event_id, "beveiliging@school.nl")
    auth = {"Authorization": f"Bearer {platform.stack.organiser_token}"}

    async def registration_id() -> str | None:
        listed = await platform.gateway.get(
            f"/registrations/api/organiser/events/{event_id}/attendees", headers=auth
        )
        attendees = listed.json()["attendees"]
        return str(attendees[0]["id"]) if attendees else None

    registration = await eventually(registration_id, what="the registration")
    mailing = await platform.gateway.post(
        "/notifications/api/mailings",
        headers=auth,
        json={"subject": "Beveiliging", "body": "Alleen voor organisatoren."},
    )
    return {
        "event_id": event_id,
        "registration_id": registration,
        "mailing_id": mailing.json()["id"],
        "colleague_id": str(uuid.uuid4()),
        "token": "x",
        "step": "publiceren",
        "code": "drenthe",
        "series_code": "sto-live",
    }


def test_every_route_says_who_may_use_it() -> None:
    unsaid = [route for route in service_routes() if route.access == "unsaid"]
    assert unsaid == [], "declare PUBLIC, OrganiserDep, OrganiserPageDep or INTERNAL on these"
    assert len(organiser_routes()) >= 50


async def test_an_organisers_login_opens_nothing_to_another_browser(
    platform: Platform, browser: Any, figures: Callable[[str], None]
) -> None:
    values = await route_values(platform)
    base = platform.stack.config.public_base_url
    organiser = await browser.new_context()
    stranger = await browser.new_context()
    try:
        await platform.log_in(await organiser.new_page())
        checked = 0
        for route in organiser_routes():
            url = base + route.url(values)
            answer = await stranger.request.fetch(url, method=route.method, max_redirects=0)
            location = answer.headers.get("location", "")
            assert refused(route, answer.status, location), (route, answer.status, location)
            assert "beveiliging@school.nl" not in await answer.text()
            checked += 1
            if route.method == "GET" and not route.path.endswith("/feed"):
                # The same route does open to the organiser's own browser.
                mine = await organiser.request.fetch(url, max_redirects=0)
                assert mine.status not in (401, 403), (route, mine.status)
                assert not mine.headers.get("location", "").startswith(LOGIN), route
        # A client that keeps no cookies at all, straight after the login, fares the same.
        async with httpx.AsyncClient(base_url=base) as anyone:
            for path in ("/events/api/organiser/events", "/analytics/api/series"):
                assert (await anyone.get(path)).status_code == 401
    finally:
        await organiser.close()
        await stranger.close()
    services = len({route.service for route in organiser_routes()})
    figures(
        f"sessions: {checked} organiser routes of {services} services, read from the apps, "
        "refused to a second browser while an organiser was logged in through the gateway"
    )


async def test_logout_ends_the_session_and_a_replayed_cookie_opens_nothing(
    platform: Platform, browser: Any
) -> None:
    base = platform.stack.config.public_base_url
    organiser = await browser.new_context()
    replay = await browser.new_context()
    try:
        page = await organiser.new_page()
        await platform.log_in(page)
        [session] = [c for c in await organiser.cookies() if c["name"] == "sto_session"]
        assert session["httpOnly"]
        assert session["sameSite"] == "Lax"
        assert session["path"] == "/"
        await page.get_by_role("link", name="Uitloggen").click()
        await page.get_by_role("button", name="Uitloggen").click()
        await page.wait_for_url(f"**{LOGIN}")
        assert not [c for c in await organiser.cookies() if c["name"] == "sto_session"]

        await replay.add_cookies([{"name": "sto_session", "value": session["value"], "url": base}])
        for route in organiser_routes():
            if route.method != "GET":
                continue
            answer = await replay.request.fetch(
                base + route.url({"event_id": str(uuid.uuid4())}), max_redirects=0
            )
            assert refused(route, answer.status, answer.headers.get("location", "")), route
    finally:
        await organiser.close()
        await replay.close()
    # The logs say who logged in and out, and never hold the session's id.
    logs = "".join(
        path.read_text(errors="replace")
        for path in (platform.stack.config.data_dir / "logs").glob("*.log")
    )
    assert '"organiser logged in"' in logs
    assert '"organiser logged out"' in logs
    assert session["value"] not in logs


def _tokens_cli(platform: Platform, *args: str) -> str:
    """``python -m sto_events.tokens ...`` as an operator runs it, on the platform's data."""
    env = {
        **os.environ,
        "DATABASE_URL": platform.stack.database_url,
        "SESSION_SECRET": (
            platform.stack.config.data_dir / "secrets" / "session-secret"
        ).read_text(),
        "LOG_JSON": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sto_events.tokens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


async def test_revoking_a_token_ends_its_sessions_in_every_service_at_once(
    platform: Platform, browser: Any
) -> None:
    base = platform.stack.config.public_base_url
    name = f"tijdelijk-{uuid.uuid4().hex[:6]}"
    token = await asyncio.to_thread(_tokens_cli, platform, "create", name)
    assert token.startswith("sto_")
    one_per_service = [
        "/events/organiser/",
        "/registrations/organisator/",
        "/notifications/organisator/mailings",
        "/analytics/dashboard",
    ]
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{base}{LOGIN}")
        await page.get_by_label("Organisatorsleutel").fill(token)
        await page.get_by_role("button", name="Inloggen").click()
        await page.wait_for_url(f"{base}/events/organiser/")
        for path in one_per_service:
            assert (await context.request.fetch(base + path, max_redirects=0)).status == 200

        said = await asyncio.to_thread(_tokens_cli, platform, "revoke", name)
        assert said.startswith("1 token(s) revoked")

        for path in one_per_service:
            answer = await context.request.fetch(base + path, max_redirects=0)
            assert answer.status == 303, path
            assert answer.headers["location"].startswith(LOGIN)
        bearer = await platform.gateway.get(
            "/analytics/api/series", headers={"Authorization": f"Bearer {token}"}
        )
        assert bearer.status_code == 403
    finally:
        await context.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, "sessions_test", [])
    pool = await create_pool(database_url, "sessions_test", max_size=2)
    yield pool
    await pool.close()


async def test_a_session_ends_after_its_idle_time_and_after_its_lifetime(
    store: asyncpg.Pool,
) -> None:
    idle = OrganiserStore(store, "k" * 32, idle=timedelta(seconds=1), lifetime=timedelta(hours=1))
    owner = await idle.token_owner(await organiser_token(idle, "slaper"))
    assert owner is not None
    session = await idle.start_session(owner.organiser, owner.token_id)
    assert await idle.session_organiser(session) == owner.organiser
    await _until(lambda: idle.session_organiser(session), None, "the idle timeout")

    short = OrganiserStore(store, "k" * 32, idle=timedelta(hours=1), lifetime=timedelta(seconds=2))
    session = await short.start_session(owner.organiser)
    # In use all the time, yet over once its lifetime has passed.
    await _until(lambda: short.session_organiser(session), None, "the absolute lifetime")
    # Forged, truncated and other-key ids open nothing, and raise nothing.
    fresh = await short.start_session(owner.organiser)
    other_key = OrganiserStore(
        store, "o" * 32, idle=timedelta(hours=1), lifetime=timedelta(hours=1)
    )
    for forged in (fresh[:-1], fresh + "x", "", "é" * 43, "x" * 5000):
        assert await short.session_organiser(forged) is None
    assert await other_key.session_organiser(fresh) is None


async def _until(probe: Callable[[], Any], expected: object, what: str) -> None:
    """Poll until ``probe`` gives ``expected``; at most 30 s, for a loaded machine."""
    for _ in range(300):
        if await probe() == expected:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


async def test_a_sign_in_link_works_once_and_expires_and_a_removed_account_is_out_at_once(
    store: asyncpg.Pool,
) -> None:
    organisers = OrganiserStore(
        store,
        "k" * 32,
        idle=timedelta(hours=1),
        lifetime=timedelta(hours=1),
        sign_in_valid=timedelta(minutes=15),
    )
    account = await organisers.add_account("Link@sto.example", "Link", "support")
    made = await organisers.sign_in_link("link@STO.example")  # the address, in any case
    assert made is not None
    assert made[0] == account
    assert await organisers.use_sign_in_link(made[1]) == account
    assert await organisers.use_sign_in_link(made[1]) is None  # once
    for forged in (made[1][:-1], made[1] + "x", "", "é" * 43, "x" * 5000):
        assert await organisers.use_sign_in_link(forged) is None
    expired_at_once = OrganiserStore(
        store, "k" * 32, idle=timedelta(hours=1), lifetime=timedelta(hours=1),
        sign_in_valid=timedelta(0),
    )  # fmt: skip
    late = await expired_at_once.sign_in_link("link@sto.example")
    assert late is not None
    assert await organisers.use_sign_in_link(late[1]) is None  # past its time
    assert await organisers.sign_in_link("nobody@sto.example") is None

    # Removing the account ends its sessions and tokens in the same moment.
    token = await organisers.create_token(account.account_id)
    session = await organisers.start_session(account)
    assert await organisers.token_owner(token) is not None
    assert await organisers.remove_account(account.account_id)
    assert await organisers.session_organiser(session) is None
    assert await organisers.token_owner(token) is None
    assert await organisers.sign_in_link("link@sto.example") is None
