"""What the deployment tests share: the repository's files, compose as docker-compose reads it,
and the Kubernetes overlays as kustomize renders them.

No container engine or cluster is needed: ``docker-compose config`` (Debian's docker-compose,
installed by ``scripts/ensure-system-packages``) resolves the compose file offline, and the
manifests are rendered by kustomize where installed, else by ``tests/deploy/kustomize.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stolive.stack import Stack, StackConfig
from stolive_shared.runtime import parse_roles
from tests.deploy.kustomize import Manifest, render_any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path for path in (K8S / "overlays").iterdir() if path.is_dir())


def docker_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: run scripts/ensure-system-packages (make test)")
    return subprocess.run(
        [
            binary,
            *("--project-directory", str(ROOT), "--file", str(COMPOSE_FILE)),
            *("--env-file", str(env_file), "config", *args),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def example_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .env made the way the guide says: a copy of .env.example."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    shutil.copy(ENV_EXAMPLE, path)
    return path


@pytest.fixture(scope="session")
def compose(example_env_file: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it (anchors merged, .env substituted)."""
    done = docker_compose(example_env_file)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="session")
def raw_compose() -> dict[str, Any]:
    """The compose file as written, before any substitution."""
    config: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return config


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Every overlay, rendered: {'production': [manifest, ...]}."""
    return {overlay.name: render_any(overlay) for overlay in OVERLAYS}


def roles_by_module(commands: list[list[str]]) -> dict[str, set[str]]:
    """{'sto_events': {'api', 'relay'}} from commands like ``python -m sto_events api,relay``."""
    roles: dict[str, set[str]] = {}
    for command in commands:
        at = command.index("-m")
        module, role_text = command[at + 1], command[at + 2]
        roles.setdefault(module, set()).update(parse_roles(role_text))
    return roles


@pytest.fixture(scope="session")
def launcher_roles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The roles `stolive up` runs for each service module (launcher/stolive/stack.py)."""
    stack = Stack(StackConfig(data_dir=tmp_path_factory.mktemp("launcher")))
    return roles_by_module([process.args for process in stack._build_processes()])
