"""The rush benchmark's CPU account: which part a process is, and what each part spent."""

from __future__ import annotations

import subprocess
import sys
import time

from bench import cpu

BURN = "import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"


def test_each_process_is_named_by_the_part_it_plays() -> None:
    assert cpu.label("/v/bin/python -m sto_registrations api,relay") == "registrations api,relay"
    wrapped = "/v/python -m stolive.processes --parent 9 -- /v/python -m sto_analytics worker"
    assert cpu.label(wrapped) == "analytics worker"
    assert cpu.label("/v/bin/python -m stolive up --data-dir /tmp/x") == "gateway (launcher)"
    assert cpu.label("/x/tansu broker --listener-url tcp://127.0.0.1:1") == "broker"


def test_a_child_that_burns_cpu_is_counted_under_its_own_part() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BURN + "sys.stdin.read()"], stdin=subprocess.PIPE
    )
    part = cpu.label(f"{sys.executable} -c {BURN} sys.stdin.read()")
    try:
        before = {part: 0.0}
        deadline = time.monotonic() + 60
        while cpu.snapshot(child.pid, "no_such_database").get(part, 0.0) < 0.3:
            assert time.monotonic() < deadline, "the child never spent its 0.3 s"
            time.sleep(0.05)
        spent = cpu.spent_between(before, cpu.snapshot(child.pid, "no_such_database"))
    finally:
        child.communicate(b"")
    assert spent[part] >= 0.3
    assert spent["load generator + SMTP sink"] > 0  # this process, the one taking snapshots
