"""The shape every service keeps (docs/ARCHITECTURE.md), checked on the source itself: a
newcomer finds the same file doing the same job in every service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
PACKAGES = [next(s.glob("sto_*/__init__.py")).parent for s in SERVICES]
SOURCES = sorted(
    path
    for folder in [ROOT / "shared" / "stolive_shared", *PACKAGES]
    for path in folder.rglob("*.py")
)
MAX_LINES = 500


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_there_are_four_services() -> None:
    assert [p.name for p in PACKAGES] == [
        "sto_analytics",
        "sto_events",
        "sto_notifications",
        "sto_registrations",
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_service_has_the_same_parts(package: Path) -> None:
    def present(name: str) -> bool:
        return (package / f"{name}.py").exists() or (package / name / "__init__.py").exists()

    for part in ("__main__", "bootstrap", "app", "config", "domain", "service", "repository"):
        assert present(part), f"{package.name} has no {part}"
    assert (package / "api" / "__init__.py").exists()
    assert (package / "migrations").is_dir()
    assert present("consumers") or present("streams") or package.name == "sto_events"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_the_domain_is_pure(package: Path) -> None:
    outside = {"asyncpg", "aiokafka", "fastapi", "httpx", "faust", "aiosmtplib", "starlette"}
    imports = {name.split(".")[0] for name in imported_modules(package / "domain.py")}
    assert not imports & outside


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_service_imports_another(package: Path) -> None:
    others = {p.name for p in PACKAGES} - {package.name}
    for path in package.rglob("*.py"):
        imports = {name.split(".")[0] for name in imported_modules(path)}
        assert not imports & others, path.relative_to(ROOT)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_routes_open_no_transaction_and_reach_no_pool(package: Path) -> None:
    """HTTP goes through the use cases: the only place that opens a transaction."""
    for path in (package / "api").rglob("*.py"):
        text = path.read_text()
        assert ".transaction(" not in text, path.relative_to(ROOT)
        assert "pool.acquire(" not in text, path.relative_to(ROOT)
        assert "state.pool" not in text, path.relative_to(ROOT)
