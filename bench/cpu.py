"""Where a benchmark's CPU went, per process, read from ``/proc`` (Linux).

A rush on a 2-core machine is bound by CPU: every part (the load generator, the gateway, each
service, PostgreSQL, the broker) takes its share of two cores. The CPU seconds each part spent
between two snapshots say which part to make cheaper, and their sum divided by the cores is the
least time the same work could take here, however it were scheduled.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class _Process:
    pid: int
    parent: int
    cpu_s: float
    command: str


def _read(pid: int) -> _Process | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        command = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    # The command name in parentheses may hold spaces: the fields follow its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    cpu_ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return _Process(pid, int(fields[1]), cpu_ticks / _TICKS, command.strip())


def _processes() -> list[_Process]:
    found = (_read(int(entry.name)) for entry in _PROC.iterdir() if entry.name.isdigit())
    return [process for process in found if process is not None]


def label(command: str) -> str:
    """A part's name from its command line: 'sto_registrations api,relay' -> 'registrations
    api,relay'; the launcher is the gateway (its other work is idle during a run)."""
    words = command.split()
    for n, word in enumerate(words):
        if word.startswith("sto_") and n + 1 < len(words):
            return f"{word.removeprefix('sto_')} {words[n + 1]}"
    if "stolive" in command and " up" in command:
        return "gateway (launcher)"
    if "tansu" in command:
        return "broker"
    if command.startswith("postgres"):
        return "postgresql"
    return command[:40]


def snapshot(root_pid: int, database: str) -> dict[str, float]:
    """CPU seconds so far of this process (load generator and SMTP sink), of ``root_pid`` and
    its descendants, and of PostgreSQL's backends serving ``database``, by part."""
    processes = _processes()
    children: dict[int, list[_Process]] = {}
    for process in processes:
        children.setdefault(process.parent, []).append(process)
    spent: defaultdict[str, float] = defaultdict(float)
    me = os.getpid()
    for process in processes:
        if process.pid == me:
            spent["load generator + SMTP sink"] += process.cpu_s
        elif process.command.startswith("postgres") and f" {database} " in process.command:
            spent["postgresql"] += process.cpu_s
    tree = [process for process in processes if process.pid == root_pid]
    while tree:
        process = tree.pop()
        spent[label(process.command)] += process.cpu_s
        tree.extend(children.get(process.pid, []))
    return dict(spent)


def spent_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per part between two snapshots, most first (a part that ended in between
    counts what it spent up to its last snapshot: nothing is made up)."""
    spent = {part: round(after[part] - before.get(part, 0.0), 2) for part in after}
    return dict(sorted(((p, s) for p, s in spent.items() if s > 0), key=lambda ps: -ps[1]))
