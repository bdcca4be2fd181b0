"""Service processes the stack starts, watches and stops in order.

Each is a plain ``python -m <package> <role>`` child with its own environment, its output
appended to a log file under the data folder. The stack restarts one that dies, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    log_file: Path
    # Processes holding Kafka consumers: restarted after the embedded broker restarts.
    consumes_kafka: bool = False
    health_url: str | None = None
    restarts: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _next_start_at: float = 0.0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, *self.args],
                env=self.env,
                stdout=output,
                stderr=output,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def due_for_restart(self, now: float) -> bool:
        """True once the backoff after a crash has passed (1 s, doubling to 30 s)."""
        if self._next_start_at == 0.0:
            self._next_start_at = now + min(30.0, 2.0 ** min(self.restarts, 5))
        return now >= self._next_start_at

    def restarted(self) -> None:
        self.restarts += 1
        self._next_start_at = 0.0

    async def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)
        except TimeoutError:
            log.warning("%s did not stop in %.0fs: killing it", self.name, timeout_s)
            process.kill()
            await asyncio.to_thread(process.wait)

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
