"""Integration tests for stolive.embedded_postgres (a real embedded PostgreSQL per test)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from stolive.embedded_postgres import EmbeddedPostgres, default_data_root


@pytest.fixture
def data_root() -> Iterator[Path]:
    # Not below /root: as root the package opens up every parent directory of the data.
    root = Path(tempfile.mkdtemp(prefix="stolive-pg-test-", dir="/var/tmp"))
    try:
        yield root
    finally:
        EmbeddedPostgres(root / "postgres").stop()
        shutil.rmtree(root, ignore_errors=True)


async def _fetchval(dsn: str, query: str, database: str | None = None) -> object:
    conn = await asyncpg.connect(dsn, database=database)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def _execute(dsn: str, query: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _gone_or_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def test_start_returns_a_dsn_asyncpg_can_use(data_root: Path) -> None:
    pg = EmbeddedPostgres(data_root / "postgres")

    dsn = await asyncio.to_thread(pg.start)

    assert dsn == pg.dsn
    assert "?host=" in dsn
    assert await _fetchval(dsn, "SELECT 1") == 1
    await _execute(dsn, "CREATE DATABASE x")
    assert await _fetchval(dsn, "SELECT current_database()", database="x") == "x"


async def test_restart_after_stop_keeps_data(data_root: Path) -> None:
    pg = EmbeddedPostgres(data_root / "postgres")
    dsn = await asyncio.to_thread(pg.start)
    await _execute(dsn, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")

    await asyncio.to_thread(pg.stop)
    await asyncio.to_thread(pg.stop)  # idempotent
    assert not (data_root / "postgres" / "postmaster.pid").exists()
    with pytest.raises(RuntimeError):
        _ = pg.dsn

    dsn = await asyncio.to_thread(pg.start)
    assert await _fetchval(dsn, "SELECT v FROM kept") == 42


async def test_start_recovers_after_postmaster_sigkill(data_root: Path) -> None:
    pgdata = data_root / "postgres"
    dsn = await asyncio.to_thread(EmbeddedPostgres(pgdata).start)
    await _execute(dsn, "CREATE TABLE survivor (v text); INSERT INTO survivor VALUES ('kept')")
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    # A crashed launcher also leaves its pid in the package's handle list.
    handles = pgdata / ".handle_pids.json"
    dead = _dead_pid()
    handles.write_text(json.dumps([*json.loads(handles.read_text()), dead]))

    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if _gone_or_zombie(pid):
            break
        await asyncio.sleep(0.05)
    assert _gone_or_zombie(pid)

    # A fresh handle, as a restarted launcher would create.
    dsn = await asyncio.to_thread(EmbeddedPostgres(pgdata).start)
    assert await _fetchval(dsn, "SELECT v FROM survivor") == "kept"
    assert int((pgdata / "postmaster.pid").read_text().splitlines()[0]) != pid
    assert dead not in json.loads(handles.read_text())


def _fake_root_home(home: str) -> pwd.struct_passwd:
    return pwd.struct_passwd(("root", "x", 0, 0, "root", home, "/bin/sh"))


def test_default_data_root_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    home = "/nonexistent-root-home"
    monkeypatch.setattr(pwd, "getpwuid", lambda _uid: _fake_root_home(home))
    monkeypatch.delenv("STOLIVE_DATA_DIR", raising=False)
    inside = Path(home) / "src" / "stolive"
    outside = Path("/srv/stolive")
    digest = hashlib.sha256(str(inside).encode()).hexdigest()[:12]

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_data_root(inside) == Path("/var/lib/stolive") / digest
    assert default_data_root(outside) == outside / ".stolive"

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_data_root(inside) == inside / ".stolive"

    monkeypatch.setenv("STOLIVE_DATA_DIR", "/data/elsewhere")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_data_root(inside) == Path("/data/elsewhere")
