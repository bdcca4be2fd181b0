"""What the benchmarks share: a real database and broker, servers and the load generator as
separate processes, and the ceilings measured in the same run.

Ceilings (see the programme's notes for the figures measured here):
- ``bare``: a FastAPI POST endpoint doing nothing, one uvicorn worker (uvloop, httptools,
  access log off);
- ``insert``: the same endpoint doing one single-row asyncpg INSERT per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from stolive_shared.db import with_database

LOCAL_POSTGRES = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new database on the local PostgreSQL (or embedded one), dropped afterwards."""
    admin_url = LOCAL_POSTGRES
    embedded = None
    try:
        conn = await asyncpg.connect(admin_url, timeout=3)
    except (OSError, asyncpg.PostgresError):
        from stolive.embedded_postgres import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path("/var/tmp/stolive-bench/postgres"))
        admin_url = await asyncio.to_thread(embedded.start)
        conn = await asyncpg.connect(admin_url)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield with_database(admin_url, name)
    finally:
        conn = await asyncpg.connect(admin_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def server_process(
    args: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A server as its own process (``python -m ...``), stopped afterwards."""
    process = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured_load(server: Server, url: str, **options: Any) -> dict[str, Any]:
    """``load``, with the server process's CPU time per successful request added
    (``server_cpu_us``): on a shared machine a steadier figure than the rate."""
    before = cpu_seconds(server.process.pid)
    result = await load(url, **options)
    used = cpu_seconds(server.process.pid) - before
    result["server_cpu_us"] = round(used / max(1, result["ok"]) * 1e6)
    return result


async def wait_http(url: str, timeout_s: float = 30.0) -> None:
    import httpx

    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(timeout=1.0) as client:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url)
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f}s")


async def load(
    url: str,
    *,
    seconds: float,
    connections: int = 50,
    body: str = "",
    method: str = "POST",
    rate: float = 0.0,
    keys: int = 1,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """Run the load generator as a separate process and return its figures."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--url", url, "--method", method,
        "--body", body, "--connections", str(connections), "--seconds", str(seconds),
        "--rate", str(rate), "--keys", str(keys), "--content-type", content_type,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out)
    return result


def uvicorn_args(app: str, port: int) -> list[str]:
    return [
        "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


async def ceiling(
    kind: str, seconds: float, connections: int, database_url: str | None = None
) -> dict[str, Any]:
    """Requests/s of the bare (``bare``) or one-INSERT (``insert``) FastAPI endpoint."""
    port = free_port()
    env = {"BENCH_DATABASE_URL": database_url or ""}
    with server_process(uvicorn_args(f"bench.ceilings:{kind}_app", port), port, env) as server:
        await wait_http(f"{server.url}/ready")
        return await measured_load(
            server, f"{server.url}/post", seconds=seconds, connections=connections,
            body='{"name": "Anna", "email": "anna{n}@school.nl"}',
        )  # fmt: skip
