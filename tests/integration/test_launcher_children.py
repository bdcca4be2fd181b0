"""The launcher's children never outlive it.

``stolive up`` runs as a real process here, as a person starts it. When its terminal closes
(SIGHUP) it stops every child in order; when it is killed without a word (SIGKILL, as the OOM
killer does) every child notices and stops by itself, and the next ``stolive up`` on the same
ports starts cleanly. The embedded PostgreSQL is a daemon, not a child: a guard stops it
cleanly when the process that started it dies, and it starts again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from stolive.broker import free_port, port_is_free
from stolive.embedded_postgres import EmbeddedPostgres
from stolive.stack import SERVICES
from tests.support import eventually

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "Press Ctrl-C to stop."
# The broker, four APIs (with their relays), three workers: what `stolive up` starts.
CHILDREN = 8


class Launcher:
    """``stolive up`` as its own process, its output in a file the test reads."""

    def __init__(self, data_dir: Path, env: dict[str, str], name: str) -> None:
        self.output = data_dir / f"{name}.out"
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stolive", "up", "--data-dir", str(data_dir), "--no-seed"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
            )

    def said(self) -> str:
        return self.output.read_text(errors="replace")

    async def ready(self) -> None:
        def up() -> bool:
            assert self.process.poll() is None, f"the launcher exited:\n{self.said()}"
            return READY_LINE in self.said()

        await eventually(up, timeout_s=240, interval_s=0.5, what="the launcher to be ready")

    def children(self) -> set[int]:
        return {pid for pid in _all_pids() if _parent_of(pid) == self.process.pid}


@pytest.fixture
def ports() -> dict[str, int]:
    return {
        "STOLIVE_PORT": free_port(),
        "STOLIVE_BROKER_PORT": free_port(),
        "SMTP_PORT": free_port(),
        **{f"STOLIVE_{service.upper()}_PORT": free_port() for service in SERVICES},
    }


@pytest.fixture
def launch(
    tmp_path: Path, database_url: str, ports: dict[str, int]
) -> Iterator[Callable[[str], Launcher]]:
    """Start ``stolive up`` on the test's ports and database (what a failed test left running
    is stopped afterwards)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        **{name: str(port) for name, port in ports.items()},
    }
    started: list[Launcher] = []

    def start(name: str) -> Launcher:
        started.append(Launcher(tmp_path, env, name))
        return started[-1]

    yield start
    for launcher in started:
        if launcher.process.poll() is None:
            launcher.process.terminate()
            launcher.process.wait(120)


async def test_closing_the_terminal_stops_every_child_in_order(
    launch: Callable[[str], Launcher], ports: dict[str, int]
) -> None:
    launcher = launch("hangup")
    await launcher.ready()
    children = launcher.children()
    assert len(children) == CHILDREN, launcher.said()

    launcher.process.send_signal(signal.SIGHUP)

    await eventually(
        lambda: launcher.process.poll() is not None, timeout_s=120, what="the launcher to stop"
    )
    assert launcher.process.returncode == 0, launcher.said()
    assert "✓ stopped" in launcher.said()
    assert [pid for pid in children if _alive(pid)] == []
    assert [port for port in ports.values() if not port_is_free(port)] == []


async def test_a_launcher_killed_hard_takes_its_children_along_and_up_starts_again(
    launch: Callable[[str], Launcher], ports: dict[str, int], figures: Callable[[str], None]
) -> None:
    first = launch("killed")
    await first.ready()
    children = first.children()
    assert len(children) == CHILDREN, first.said()

    first.process.kill()
    first.process.wait()
    killed_at = time.monotonic()

    await eventually(
        lambda: not [pid for pid in children if _alive(pid)],
        timeout_s=90,
        what=f"the children {sorted(children)} of the killed launcher to stop by themselves",
    )
    figures(f"launcher killed hard: its {len(children)} children stopped within "
            f"{time.monotonic() - killed_at:.1f}s")  # fmt: skip
    await eventually(
        lambda: all(port_is_free(port) for port in ports.values()),
        timeout_s=30,
        what="every port of the killed launcher to be free",
    )

    second = launch("again")
    await second.ready()
    assert "already in use" not in second.said()
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(120) == 0, second.said()


async def test_the_embedded_postgresql_stops_cleanly_when_its_launcher_dies() -> None:
    """A stand-in launcher starts the guard and is killed hard: the postmaster gets a clean
    shutdown (no stale state), and starts again on the same data."""
    root = Path(tempfile.mkdtemp(prefix="stolive-guard-", dir="/var/tmp"))
    server = EmbeddedPostgres(root / "postgres")
    try:
        dsn = server.start()
        postmaster = server.pid
        assert postmaster is not None
        stand_in = _stand_in_launcher(postmaster)
        assert stand_in.stdout is not None
        assert stand_in.stdout.readline() == b"guarded\n"
        await eventually(
            lambda: any(_parent_of(pid) == stand_in.pid for pid in _all_pids()),
            what="the guard process",
        )

        stand_in.kill()
        stand_in.wait()
        stand_in.stdout.close()

        await eventually(
            lambda: not _alive(postmaster), timeout_s=90, what="the orphaned postmaster to stop"
        )
        assert not (server.data_dir / "postmaster.pid").exists()  # a clean shutdown
        dsn = server.start()
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _stand_in_launcher(postmaster: int) -> subprocess.Popen[bytes]:
    """A process that starts the guard for ``postmaster``, as the launcher does, and waits."""
    code = (
        "import time\n"
        "from stolive.processes import guard_against_orphan\n"
        f"guard_against_orphan({postmaster})\n"
        "print('guarded', flush=True)\n"
        "time.sleep(3600)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if len(fields) > 1 else None


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (an orphan's exit status waits for pid 1)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")
