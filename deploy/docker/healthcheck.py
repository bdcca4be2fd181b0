"""Container health checks for the STO Live image, which has neither curl nor ps.

    python /opt/stolive/healthcheck.py http://127.0.0.1:8101/healthz
    python /opt/stolive/healthcheck.py --process sto_registrations worker

An HTTP check passes on a 2xx answer within the timeout. A process check passes when a process
started as ``python -m <module> <roles>`` runs and is neither a zombie nor stopped. The Faust
worker serves no HTTP but its metrics (on ``METRICS_PORT``), so that is what can be seen of it
from outside; it catches a wedged or defunct child, not a stalled consumer loop (watch
``stolive_consumer_lag`` for that). Relays and Kafka consumers run the ``api`` role as well and
are checked on their ``/healthz``, which stays on the HTTP port when metrics move off it.
Exit status 0 means healthy, 1 unhealthy; one line on stderr says why.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

_NOT_RUNNING = {"Z": "a zombie", "T": "stopped", "t": "stopped", "X": "dead"}


def check_http(url: str, timeout_s: float) -> str | None:
    """None when the URL answers 2xx, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url} did not answer: {exc}"
    return None if 200 <= status < 300 else f"{url} answered HTTP {status}"


def _processes(proc: Path) -> Iterator[tuple[int, list[str], str]]:
    """(pid, argv, state) of every process this container can see."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        state = stat.rpartition(")")[2].split()[0] if ")" in stat else "?"
        yield int(entry.name), [part.decode("utf-8", "replace") for part in argv if part], state


def check_process(module: str, roles: str, proc: Path = Path("/proc")) -> str | None:
    """None when ``python -m <module> <roles>`` runs, else why not."""
    wanted = ["-m", module, roles]
    found: list[str] = []
    for pid, argv, state in _processes(proc):
        if pid == os.getpid():
            continue
        if any(argv[i : i + 3] == wanted for i in range(len(argv))):
            if state not in _NOT_RUNNING:
                return None
            found.append(f"pid {pid} is {_NOT_RUNNING[state]}")
    what = "; ".join(found) or "no such process"
    return f"python -m {module} {roles}: {what}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="healthcheck.py", description="Is this STO Live container healthy?"
    )
    parser.add_argument("--process", nargs=2, metavar=("MODULE", "ROLES"))
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds, for an HTTP check")
    parser.add_argument("url", nargs="?")
    args = parser.parse_args(argv)
    if (args.url is None) == (args.process is None):
        parser.error("give either a URL or --process MODULE ROLES")
    if args.process is not None:
        problem = check_process(*args.process)
    else:
        problem = check_http(args.url, args.timeout)
    if problem is not None:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
