"""Fixtures every suite shares: the real broker, a real PostgreSQL, fresh databases.

The broker is the embedded Tansu binary on a free port, started once per session. PostgreSQL
is the one at 127.0.0.1:5432 when it answers, else an embedded server; every test module gets
a fresh database of its own and drops it afterwards. Short consumer-group timeouts: a
rebalance on this broker takes about half the session timeout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from stolive.broker import EmbeddedBroker, free_port
from stolive.embedded_postgres import EmbeddedPostgres
from stolive_shared.contracts.topics import ALL_TOPICS
from stolive_shared.db import with_database
from stolive_shared.messaging.topics_admin import ensure_topics
from stolive_shared.settings import KafkaSettings
from tests.support import CHROMIUM, CHROMIUM_ARGS, embedded_kafka

LOCAL_POSTGRES = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


_FIGURES: list[str] = []


@pytest.fixture
def figures() -> Callable[[str], None]:
    """Record a figure a test measured; every figure is printed at the end of the run."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("figures measured by the tests")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
async def kafka() -> AsyncIterator[KafkaSettings]:
    broker = EmbeddedBroker(free_port())
    await broker.start()
    settings = embedded_kafka(
        broker.bootstrap_servers, session_timeout_ms=6000, heartbeat_interval_ms=1000
    )
    await ensure_topics(settings, ALL_TOPICS)
    yield settings
    await broker.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Python playwright (no browser download, ever)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[str]:
    """A URL of the server's ``postgres`` database: local if it answers, else embedded."""
    try:
        conn = await asyncpg.connect(LOCAL_POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError):
        conn = None
    if conn is not None:
        await conn.close()
        yield LOCAL_POSTGRES
        return
    root = Path(tempfile.mkdtemp(prefix="stolive-test-pg-", dir="/var/tmp"))
    server = EmbeddedPostgres(root / "postgres")
    yield server.start()
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def database_url(postgres_server: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    module = request.module.__name__.rsplit(".", 1)[-1][:30]
    name = f"t_{module}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield with_database(postgres_server, name)
    admin = await asyncpg.connect(postgres_server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
