"""The launcher: one-line errors a person can act on, and the embedded PostgreSQL fallback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest

from stolive import stack as stack_module
from stolive.broker import free_port
from stolive.stack import Stack, StackConfig
from stolive_shared.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


def test_a_port_in_use_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "stolive", "up", "--data-dir", str(tmp_path)],
            env={**os.environ, "STOLIVE_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"stolive: port {port} for the gateway (STOLIVE_PORT) is already in use: stop what uses "
        "it (an earlier `make up`?) or choose another port"
    ]
    assert "Traceback" not in result.stdout + result.stderr


async def test_an_unreachable_database_url_says_which_setting_to_check(tmp_path: Path) -> None:
    config = StackConfig(
        data_dir=tmp_path,
        gateway_port=free_port(),
        service_ports={s: free_port() for s in stack_module.SERVICES},
        broker_port=free_port(),
        smtp_port=free_port(),
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/stolive",
    )
    with pytest.raises(ConfigurationError, match="check DATABASE_URL"):
        await Stack(config).start()


async def test_without_a_local_server_the_embedded_postgresql_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = Path(tempfile.mkdtemp(prefix="stolive-launcher-", dir="/var/tmp"))
    monkeypatch.setattr(
        stack_module, "LOCAL_POSTGRES", f"postgresql://postgres@127.0.0.1:{free_port()}/stolive"
    )
    stack = Stack(StackConfig(data_dir=data))
    try:
        url = stack.database_url = await stack._resolve_database()
        await stack._migrate()
        assert stack.postgres is not None
        assert "host=" in url  # a unix socket, no TCP port
        conn = await asyncpg.connect(url)
        schemas = {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
        await conn.close()
        assert {"events", "registrations", "notifications", "analytics"} <= schemas
    finally:
        await stack.stop_database()
        shutil.rmtree(data, ignore_errors=True)
