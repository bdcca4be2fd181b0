"""The whole platform as real processes, started by the launcher's own ``Stack``.

A fresh database, the embedded broker on a free port (supervised, so a test may kill it),
every service process, the gateway, and a real SMTP server (aiosmtpd) the test reads.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stolive.broker import free_port
from stolive.stack import SERVICES, Stack, StackConfig
from stolive_shared.db import create_pool
from stolive_shared.organisers.store import OrganiserStore
from stolive_shared.settings import KafkaSettings
from tests.support import (
    SmtpSink,
    eventually,
    form_token,
    organiser_login,
    organiser_token,
    start_smtp_sink,
)

log = logging.getLogger(__name__)


@dataclass
class Platform:
    stack: Stack
    smtp: SmtpSink
    gateway: httpx.AsyncClient
    organiser: httpx.AsyncClient
    reports: list[str] = field(default_factory=list)

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.stack.bootstrap_servers)

    async def log_in(self, page: Any) -> None:
        """Log ``page``'s browser in as the organiser, through the login page."""
        base = self.stack.config.public_base_url
        await page.goto(f"{base}/events/organiser/inloggen")
        await page.get_by_label("Organisatorsleutel").fill(self.stack.organiser_token)
        await page.get_by_role("button", name="Inloggen", exact=True).click()
        await page.wait_for_url(f"{base}/events/organiser/")

    async def organiser_json(self, path: str) -> Any:
        """GET ``path`` through the gateway with the organiser's token: its JSON (a 200)."""
        answer = await self.gateway.get(
            path, headers={"Authorization": f"Bearer {self.stack.organiser_token}"}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    @contextlib.asynccontextmanager
    async def organiser_browser(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client with cookies of its own, logged in as an organiser through the login
        page: what an organiser's browser gets (pages want the session, not a token)."""
        base = self.stack.config.public_base_url
        async with httpx.AsyncClient(base_url=base, timeout=15) as browser:
            answer = await organiser_login(browser, self.stack.organiser_token)
            assert answer.status_code == 303, answer.text
            yield browser

    async def account_token(
        self,
        name: str,
        role: str,
        *,
        regions: tuple[str, ...] = (),
        events: tuple[Any, ...] = (),
    ) -> str:
        """An API token of the organiser account ``name@sto.example`` with ``role`` (made or
        brought up to date in the platform's database, as ``python -m sto_events.tokens``
        does): what a programme team gives a colleague."""
        pool = await create_pool(self.stack.database_url, "events", max_size=1)
        try:
            store = OrganiserStore(
                pool, "unused: no session is made", idle=timedelta(0), lifetime=timedelta(0)
            )
            return await organiser_token(store, name, role, regions=regions, events=events)
        finally:
            await pool.close()

    @contextlib.asynccontextmanager
    async def browser_as(self, token: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client with cookies of its own, logged in through the login page with ``token``."""
        base = self.stack.config.public_base_url
        async with httpx.AsyncClient(base_url=base, timeout=15) as browser:
            answer = await organiser_login(browser, token)
            assert answer.status_code == 303, answer.text
            yield browser

    async def manage_link(self, address: str) -> str:
        """The personal manage link in the e-mail ``address`` received (waits for one)."""

        def found() -> str | None:
            for email in reversed(self.smtp.to(address)):
                body = email.message.get_body(preferencelist=("plain",))
                text = str(body.get_content()) if body is not None else ""
                link = re.search(r"https?://\S+/registrations/r/[A-Za-z0-9._-]+", text)
                if link:
                    return link.group(0)
            return None

        link: str = await eventually(found, what=f"an e-mail with a manage link to {address}")
        return link

    @property
    def link_secret(self) -> str:
        """The key the platform signs personal links with (its data folder's own)."""
        return (self.stack.config.data_dir / "secrets" / "link-secret").read_text().strip()


@dataclass(frozen=True)
class Person:
    """A test person whose name, address and school are distinctive enough that finding any
    of them anywhere is never a coincidence."""

    name: str
    email: str
    school: str


async def known_to_registrations(platform: Platform, event_id: str) -> bool:
    """Whether the registrations service has learnt a published event from the events topic:
    its sign-ups are taken only from then on (a moment after the organiser's publish)."""
    answer = await platform.gateway.get(f"/registrations/api/events/{event_id}/counts")
    return answer.status_code == 200


async def api_sign_up(
    platform: Platform,
    event_id: str,
    person: Person,
    *,
    newsletter: bool = False,
    colleagues: tuple[Person, ...] = (),
) -> None:
    """A sign-up through the public JSON API, as an app would send it, once the registrations
    service knows the event (the app found it in the agenda)."""
    await eventually(
        lambda: known_to_registrations(platform, event_id),
        what="the registrations service to learn the event",
    )
    answer = await platform.gateway.post(
        f"/registrations/api/events/{event_id}/registrations",
        json={
            "name": person.name,
            "email": person.email,
            "organisation": person.school,
            "role": "docent",
            "region_code": "drenthe",
            "profiles": ["PIE"],
            "privacy_consent": True,
            "newsletter": newsletter,
            "colleagues": [{"name": c.name, "email": c.email} for c in colleagues],
            "form_token": await form_token(platform.gateway, "/registrations", event_id),
        },
    )
    assert answer.status_code == 202, answer.text


def stack_config(data_dir: Path, database_url: str, smtp_port: int, **options: Any) -> StackConfig:
    """The launcher's stack on free ports, sending mail to ``smtp_port``, with no demo data
    and short Kafka sessions so a killed consumer's partitions move on quickly."""
    options.setdefault("kafka_session_timeout_ms", 6000)
    # A form token serves at once here; the security suite checks its wait itself.
    options["extra_env"] = {"SIGNUP_FORM_TOKEN_MIN_AGE_S": "0", **options.get("extra_env", {})}
    return StackConfig(
        data_dir=data_dir,
        gateway_port=free_port(),
        service_ports={service: free_port() for service in SERVICES},
        broker_port=free_port(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        database_url=database_url,
        seed=False,
        **options,
    )


@pytest.fixture(scope="module")
async def platform(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """A module may set ``PLATFORM_ENV`` to give every service process extra settings."""
    smtp_port = free_port()
    sink, controller = start_smtp_sink(smtp_port)
    config = stack_config(
        tmp_path_factory.mktemp("stack"),
        database_url,
        smtp_port,
        extra_env={"LOG_LEVEL": "INFO", **getattr(request.module, "PLATFORM_ENV", {})},
    )
    reports: list[str] = []

    def report(line: str) -> None:
        reports.append(line)
        log.info(line)

    stack = Stack(config, report=report)
    try:
        await stack.start()
        base = config.public_base_url
        async with (
            httpx.AsyncClient(base_url=base, timeout=15) as gateway,
            httpx.AsyncClient(
                base_url=f"{base}/events",
                headers={"Authorization": f"Bearer {stack.organiser_token}"},
                timeout=15,
            ) as organiser,
        ):
            yield Platform(stack, sink, gateway, organiser, reports)
    finally:
        await stack.stop()
        controller.stop()
