"""The Dockerfile and the health-check script the image carries."""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"


def stages() -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) per stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("#"):
            continue
        if line.startswith("FROM "):
            found.append((line, []))
        elif found:
            found[-1][1].append(line)
    return found


def test_the_image_is_built_in_stages_and_runs_as_an_unprivileged_user() -> None:
    all_stages = stages()
    assert len(all_stages) >= 3  # uv, build, runtime
    runtime_from, runtime = all_stages[-1]
    assert runtime_from.endswith(" AS runtime")
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users, "the runtime stage must drop root"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    # Only the virtualenv comes from the build stage: no compiler, uv or sources at runtime.
    copies = [line for line in runtime if line.startswith("COPY --from=")]
    assert copies == ["COPY --from=build /opt/stolive/venv /opt/stolive/venv"]
    assert not any("uv " in line for line in runtime)


def test_dependencies_come_from_the_lock_file_without_dev_tools() -> None:
    _, build = next(stage for stage in stages() if stage[0].endswith(" AS build"))
    syncs = [line for line in build if "uv sync" in line]
    assert syncs
    for sync in syncs:
        assert {"--frozen", "--no-dev", "--no-editable"} <= set(sync.split())


def test_base_images_are_pinned() -> None:
    text = DOCKERFILE.read_text()
    python = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert python is not None
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", python[1])
    for line, _ in stages():
        image = line.split()[1]
        if image != "${PYTHON_IMAGE}":
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", image), line


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A process started as ``python -m http.server PORT``, serving an empty directory."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path_factory.mktemp("served"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_http_check_passes_on_a_2xx_and_fails_otherwise(served: int) -> None:
    assert healthcheck(f"http://127.0.0.1:{served}/").returncode == 0
    missing = healthcheck(f"http://127.0.0.1:{served}/healthz")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr
    away = healthcheck(f"http://127.0.0.1:{free_port()}/healthz")
    assert away.returncode == 1


def test_process_check_finds_a_python_module_running_in_its_role(served: int) -> None:
    assert healthcheck("--process", "http.server", str(served)).returncode == 0
    absent = healthcheck("--process", "sto_no_such_service", "worker")
    assert absent.returncode == 1
    assert "no such process" in absent.stderr


def test_the_process_check_can_see_the_faust_worker_command_line() -> None:
    # Faust renames its process when setproctitle is installed; the check would then miss it.
    assert importlib.util.find_spec("setproctitle") is None


def test_the_image_carries_the_health_check_the_deployments_call() -> None:
    text = DOCKERFILE.read_text()
    assert "COPY deploy/docker/healthcheck.py /opt/stolive/healthcheck.py" in text
    assert "!deploy/docker/healthcheck.py" in (ROOT / ".dockerignore").read_text()
    for path in (ROOT / "docker-compose.yml", *Path(ROOT / "deploy" / "k8s").rglob("*.yaml")):
        for mention in re.findall(r"/opt/stolive/[\w.]+", path.read_text()):
            assert mention == "/opt/stolive/healthcheck.py", path
