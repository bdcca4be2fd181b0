"""Fixtures for the reliability suite: service processes we can kill, on real parts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from sto_registrations import repository as registrations_repository
from sto_registrations.bootstrap import DEFINITION as REGISTRATIONS
from stolive.broker import free_port
from stolive.processes import ManagedProcess
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.db import apply_migrations
from stolive_shared.settings import KafkaSettings
from tests.support import eventually

ProcessFactory = Callable[..., ManagedProcess]


@pytest.fixture
def service_process(
    tmp_path: Path, kafka: KafkaSettings
) -> Iterator[Callable[..., ManagedProcess]]:
    """Start ``python -m sto_<service> <roles>`` as a real process; stopped after the test."""
    started: list[ManagedProcess] = []

    def start(service: str, roles: str, database_url: str, **env: str) -> ManagedProcess:
        port = env.pop("HTTP_PORT", None) or str(free_port())
        process = ManagedProcess(
            name=f"{service}-{roles}",
            args=["-m", f"sto_{service}", roles],
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
                "HTTP_PORT": port,
                "LINK_SECRET": "reliability-test-secret",
                "SESSION_SECRET": "reliability-test-session-secret",
                "LOG_LEVEL": "INFO",
                # One test client stands for many people: no per-address sign-up limit, and
                # a form token serves at once (tests/security checks both guards).
                "SIGNUP_RATE_PER_MINUTE": "0",
                "SIGNUP_FORM_TOKEN_MIN_AGE_S": "0",
                **env,
            },
            log_file=tmp_path / f"{service}-{roles.replace(',', '+')}-{len(started)}.log",
            health_url=f"http://127.0.0.1:{port}/readyz" if "api" in roles else None,
        )
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


async def wait_ready(process: ManagedProcess, timeout_s: float = 30.0) -> None:
    assert process.health_url is not None

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                return (await client.get(process.health_url or "")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout_s=timeout_s, interval_s=0.1, what=f"{process.name} ready")


def base_url(process: ManagedProcess) -> str:
    return (process.health_url or "").removesuffix("/readyz")


@pytest.fixture(scope="module")
async def registrations_db(database_url: str) -> str:
    await apply_migrations(database_url, "registrations", [REGISTRATIONS.migrations])
    return database_url


async def published_event(
    database_url: str, *, capacity: int | None, waitlist: bool = True
) -> uuid.UUID:
    """An event the registrations service knows, as if learned from the events topic."""
    starts = datetime.now(UTC) + timedelta(days=10)
    snapshot = EventSnapshot(
        event_id=uuid.uuid4(),
        revision=2,
        kind="regional_meeting",
        status="published",
        title="Regiobijeenkomst betrouwbaarheid",
        starts_at=starts,
        ends_at=starts + timedelta(hours=3),
        region_codes=("drenthe",),
        capacity=capacity,
        waitlist_enabled=waitlist,
    )
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "registrations"})
    try:
        async with conn.transaction():
            await registrations_repository.store_event(conn, snapshot)
    finally:
        await conn.close()
    return snapshot.event_id


# The full platform of real processes, for suites that need every consumer.
from tests.e2e.conftest import platform  # noqa: E402, F401
