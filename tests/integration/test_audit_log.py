"""The audit log as the programme team reads it: newest first, filtered, details kept as JSON
objects; and kept no longer than its stated period."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from stolive_shared.db import apply_migrations, create_pool
from stolive_shared.organisers.audit import AuditLog
from stolive_shared.organisers.roles import Organiser

LEIDER = Organiser(account_id=7, email="leider@sto.example", name="Leider", role="regional")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, "audit_test", [])
    pool = await create_pool(database_url, "audit_test", max_size=2)
    await pool.execute("DELETE FROM organisers.audit WHERE actor = $1", LEIDER.email)
    yield pool
    await pool.close()


async def test_rows_come_newest_first_filtered_and_old_ones_go_after_the_period(
    pool: asyncpg.Pool,
) -> None:
    audit = AuditLog(pool, "registrations")
    event_id = uuid.uuid4()
    await audit.record(LEIDER, "check_in", event_id=event_id, detail={"via": "qr", "n": 1})
    await audit.record(LEIDER, "access", outcome="denied", detail={"path": "/x"})
    await pool.execute(
        "UPDATE organisers.audit SET at = now() - interval '800 days'"
        " WHERE actor = $1 AND action = 'access'",
        LEIDER.email,
    )
    rows = await audit.rows(actor="leider@")
    assert [(r.action, r.outcome) for r in rows] == [("access", "denied"), ("check_in", "done")]
    assert rows[1].detail == {"via": "qr", "n": 1}
    assert rows[1].action_nl == "ingecheckt"
    via = await pool.fetchval(
        "SELECT detail->>'via' FROM organisers.audit WHERE actor = $1 AND action = 'check_in'",
        LEIDER.email,
    )
    assert via == "qr"  # an object in jsonb, not a string holding one
    assert [r.action for r in await audit.rows(event_id=event_id)] == ["check_in"]

    assert await audit.remove_older_than(730, 100) >= 1
    assert [r.action for r in await audit.rows(actor="leider@")] == ["check_in"]
