"""Service processes the stack starts, watches and stops in order; and the one mechanism by
which none of them outlives the launcher.

Each is a plain ``python -m <package> <role>`` child with its own environment, its output
appended to a log file under the data folder. The stack restarts one that dies, with backoff.

Children run in sessions of their own, so a Ctrl-C in the terminal reaches the launcher alone
and it stops them in order. The price is that nothing else ends them when the launcher dies
without a word (SIGKILL, the OOM killer): so every child is started through
:func:`tied_to_launcher`, which runs ``python -m stolive.processes --parent PID -- COMMAND``.
That wrapper asks Linux for a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``, kept
across ``exec``), checks that the launcher did not die in the meantime, and then becomes
COMMAND: the child gets SIGTERM the moment the launcher is gone and stops as on a normal stop.
(Not a ``preexec_fn``: that runs Python between fork and exec in a threaded process.)

Linux sends the signal when the *thread* that started the child ends, so children are started
from the launcher's event-loop thread, never from a worker thread (``asyncio.to_thread``).

A server that daemonises (PostgreSQL through ``pg_ctl``) cannot carry the signal: its parent
exits at once. For it the wrapper runs without a command, as a guard (``--stop PID``) that
waits for the launcher's death and then stops that process (see :func:`guard_against_orphan`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# An orphaned daemon (PostgreSQL) is asked to stop with SIGTERM (PostgreSQL: a smart shutdown,
# waiting for the services' sessions to end as they stop) and after this long with SIGINT
# (PostgreSQL: fast shutdown, still clean).
ORPHAN_STOP_GRACE_S = 30.0


def tied_to_launcher(command: list[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM when this process dies (see the module doc)."""
    return [sys.executable, "-m", "stolive.processes", "--parent", str(os.getpid()), "--", *command]


def guard_against_orphan(pid: int, log_file: Path | None = None) -> subprocess.Popen[bytes]:
    """A small process that stops ``pid`` when this process dies; stop it with SIGTERM or
    SIGKILL while this process lives and it does nothing to ``pid``."""
    command = [sys.executable, "-m", "stolive.processes", "--parent", str(os.getpid())]
    return _spawn([*command, "--stop", str(pid)], dict(os.environ), log_file)


def _spawn(
    command: list[str], env: dict[str, str], log_file: Path | None
) -> subprocess.Popen[bytes]:
    """A child in its own session with its output appended to ``log_file`` (or discarded)."""
    if log_file is None:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def spawn_tied(
    command: list[str], env: dict[str, str], log_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, tied to this process's life."""
    return _spawn(tied_to_launcher(command), env, log_file)


# A process that ran this long before it died was healthy: its restart backoff starts over.
HEALTHY_RUN_S = 60.0


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
    _started_at: float = 0.0
    _crashes_in_a_row: int = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        self._process = spawn_tied([sys.executable, *self.args], self.env, self.log_file)
        self._started_at = time.monotonic()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def due_for_restart(self, now: float) -> bool:
        """True once the backoff after a crash has passed (1 s, doubling to 30 s). A process
        that had run for ``HEALTHY_RUN_S`` before it died starts again from 1 s: only a
        process that keeps crashing waits long (``now`` is on the monotonic clock)."""
        if self._next_start_at == 0.0:
            if now - self._started_at >= HEALTHY_RUN_S:
                self._crashes_in_a_row = 0
            self._next_start_at = now + min(30.0, 2.0 ** min(self._crashes_in_a_row, 5))
        return now >= self._next_start_at

    def restarted(self) -> None:
        self.restarts += 1
        self._crashes_in_a_row += 1
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


# -- the wrapper: ``python -m stolive.processes --parent PID [--stop PID | -- COMMAND ...]`` ----


def _die_with_parent() -> None:
    """Ask Linux for SIGTERM when the parent thread dies (kept across exec; Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _identity(pid: int) -> str | None:
    """The process's start time (``/proc/PID/stat``, field 22) while it lives and is no
    zombie: a pid and this name one process, even after the pid is reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[19] if fields and fields[0] not in ("Z", "X") else None


def _stop_orphan(pid: int, identity: str | None) -> None:
    """SIGTERM, then SIGINT after the grace period; both leave PostgreSQL's data clean."""
    for sig, wait_s in ((signal.SIGTERM, ORPHAN_STOP_GRACE_S), (signal.SIGINT, 60.0)):
        deadline = time.monotonic() + wait_s
        if identity is None or _identity(pid) != identity:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        while _identity(pid) == identity and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stolive.processes",
        description="Run COMMAND, or guard --stop PID, until the process --parent dies.",
    )
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--stop", type=int, default=None, help="stop this pid when --parent dies")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if (args.stop is None) == (not command):
        parser.error("give either --stop PID or a COMMAND")
    guarded = _identity(args.stop) if args.stop is not None else None
    # The guard waits for SIGTERM with sigwait: blocked before it can arrive.
    if args.stop is not None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _die_with_parent()
    if os.getppid() != args.parent:  # the parent died before the signal was asked for
        if args.stop is not None:
            _stop_orphan(args.stop, guarded)
        raise SystemExit(1)
    if args.stop is None:
        os.execvp(command[0], command)
    signal.sigwait({signal.SIGTERM})
    if os.getppid() != args.parent:  # the parent died (else it stopped us: nothing to do)
        _stop_orphan(args.stop, guarded)


if __name__ == "__main__":
    main()
