"""The setup job's command, run as docker-compose.yml writes it, on a fresh broker and database.

The Kubernetes Job runs the same command (``test_kubernetes.py`` checks they are equal). Here it
runs against the embedded broker and a fresh PostgreSQL database instead of Apache Kafka, with
``ENVIRONMENT=production``: so with the two secrets production demands, distinct and random.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from stolive.broker import EmbeddedBroker, free_port
from stolive.stack import SERVICES
from stolive_shared.contracts.topics import ALL_TOPICS
from stolive_shared.messaging.kafka import create_admin
from stolive_shared.settings import KafkaSettings


@pytest.fixture(scope="module")
async def fresh_broker() -> AsyncIterator[str]:
    """A broker on which no topic exists yet (the shared fixture creates them all)."""
    broker = EmbeddedBroker(free_port())
    await broker.start()
    yield broker.bootstrap_servers
    await broker.stop()


async def run_setup(
    command: list[str], cwd: Path, bootstrap: str, database_url: str, secrets_env: dict[str, str]
) -> tuple[int, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(cwd),
        "ENVIRONMENT": "production",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "LOG_JSON": "false",
        **secrets_env,
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return await process.wait(), output.decode()


async def test_in_production_it_refuses_one_secret_used_for_both_links_and_sessions(
    compose: dict[str, Any], fresh_broker: str, database_url: str, tmp_path: Path
) -> None:
    """A leaked link key must not open organiser sessions: the setup job stops, so nothing
    starts after it."""
    command = compose["services"]["stolive-setup"]["command"]
    shared = secrets.token_hex(32)
    code, output = await run_setup(
        command,
        tmp_path,
        fresh_broker,
        database_url,
        {"LINK_SECRET": shared, "SESSION_SECRET": shared},
    )
    assert code != 0
    assert "LINK_SECRET and SESSION_SECRET must differ" in output


async def test_it_creates_every_topic_with_its_partitions_and_every_schema(
    compose: dict[str, Any], fresh_broker: str, database_url: str, tmp_path: Path
) -> None:
    command = compose["services"]["stolive-setup"]["command"]
    production_secrets = {
        "LINK_SECRET": secrets.token_hex(32),
        "SESSION_SECRET": secrets.token_hex(32),
    }
    code, output = await run_setup(
        command, tmp_path, fresh_broker, database_url, production_secrets
    )
    assert code == 0, output

    admin = create_admin(KafkaSettings(bootstrap_servers=fresh_broker))
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described if t["partitions"]}
    assert partitions == {spec.name: spec.partitions for spec in ALL_TOPICS}

    conn = await asyncpg.connect(database_url)
    try:
        migrated = {
            row["table_schema"]
            for row in await conn.fetch(
                "SELECT table_schema FROM information_schema.tables"
                " WHERE table_name = 'schema_migrations'"
            )
        }
    finally:
        await conn.close()
    assert set(SERVICES) <= migrated
