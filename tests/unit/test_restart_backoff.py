"""The launcher restarts a process that died with a backoff that doubles while it keeps
crashing (1, 2, 4 ... 30 s), and starts over at 1 s for one that had been running well: a
chaos soak that kills each process now and then never leaves one down for long."""

from __future__ import annotations

from pathlib import Path

from stolive.processes import HEALTHY_RUN_S, ManagedProcess


def crash_at(process: ManagedProcess, now: float) -> float:
    """The process dies at ``now``; the moment the launcher starts it again."""
    process.due_for_restart(now)  # the launcher notices the death
    restart_at = process._next_start_at
    assert process.due_for_restart(restart_at)
    process.restarted()
    process._started_at = restart_at
    return restart_at


def test_a_process_that_keeps_crashing_waits_longer_each_time() -> None:
    process = ManagedProcess("worker", [], {}, Path("worker.log"))
    now, waits = 0.0, []
    for _ in range(7):
        restart_at = crash_at(process, now + 0.5)
        waits.append(restart_at - (now + 0.5))
        now = restart_at
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert process.restarts == 7


def test_a_process_that_ran_well_before_it_died_starts_again_at_once() -> None:
    process = ManagedProcess("worker", [], {}, Path("worker.log"))
    now = 0.0
    for _ in range(5):
        now = crash_at(process, now + 0.5)
    died = now + HEALTHY_RUN_S + 1
    assert crash_at(process, died) - died == 1.0
    assert process.restarts == 6
