"""PostgreSQL plumbing: pools with JSON codecs, per-service schemas, plain-SQL migrations.

Each service owns one schema (``settings.db_schema``); its pool's ``search_path`` points there,
so SQL names tables without a schema. Migrations are ``NNNN_name.sql`` files applied in order,
each in its own transaction, recorded in ``<schema>.schema_migrations``, under an advisory
lock so two processes starting at once do not race.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from stolive_shared.errors import ConfigurationError, DependencyUnavailable
from stolive_shared.messaging import MIGRATIONS as OPERATIONS_MIGRATIONS
from stolive_shared.messaging import SCHEMA as OPERATIONS_SCHEMA
from stolive_shared.organisers import MIGRATIONS as ORGANISERS_MIGRATIONS
from stolive_shared.organisers import SCHEMA as ORGANISERS_SCHEMA
from stolive_shared.privacy import MIGRATIONS as PRIVACY_MIGRATIONS
from stolive_shared.privacy import SCHEMA as PRIVACY_SCHEMA

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"

# What asyncpg raises when the server is away: callers answer 503 or retry.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # The server is shutting down, crashed, or not yet accepting (57P01, 57P02, 57P03).
    asyncpg.OperatorInterventionError,
    # Releasing a connection the server cut mid-transaction: asyncpg's reset finds the
    # protocol still busy with the lost operation ("cannot switch to state 15").
    asyncpg.InternalClientError,
    ConnectionError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (needs CREATEDB on the server)."""
    name = database_name(url)
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=10)
    except CONNECTION_ERRORS as exc:
        raise DependencyUnavailable(f"PostgreSQL at {_safe(url)} does not answer: {exc}") from exc
    try:
        exists = await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()


async def create_pool(
    url: str, schema: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            server_settings={"search_path": f"{schema},public", "application_name": schema},
            **kwargs,
        )
    except CONNECTION_ERRORS as exc:
        raise DependencyUnavailable(f"PostgreSQL at {_safe(url)} does not answer: {exc}") from exc
    assert pool is not None
    return pool


def migration_files(directories: Sequence[Path]) -> list[tuple[str, Path]]:
    """``(recorded name, file)`` in application order: shared first, then each directory."""
    files: list[tuple[str, Path]] = []
    for directory in directories:
        for path in sorted(directory.glob("*.sql")):
            if not path.name[:4].isdigit():
                raise ConfigurationError(f"migration {path} must be named NNNN_description.sql")
            files.append((f"{directory.parent.name}/{path.name}", path))
    return files


async def apply_migrations(url: str, schema: str, directories: Sequence[Path]) -> list[str]:
    """Create ``schema`` and apply the shared then the given migrations; return what ran.

    The schemas every service shares come first: the organisers' (tokens and sessions every
    service checks), privacy's (the data keys that seal personal data on the topics) and
    operations' (what operators did with dead letters).
    """
    conn = await asyncpg.connect(url, timeout=10)
    try:
        applied = await _apply(conn, ORGANISERS_SCHEMA, migration_files([ORGANISERS_MIGRATIONS]))
        applied += await _apply(conn, PRIVACY_SCHEMA, migration_files([PRIVACY_MIGRATIONS]))
        applied += await _apply(conn, OPERATIONS_SCHEMA, migration_files([OPERATIONS_MIGRATIONS]))
        files = migration_files([SHARED_MIGRATIONS, *directories])
        return applied + await _apply(conn, schema, files)
    finally:
        await conn.close()


async def _apply(conn: asyncpg.Connection, schema: str, files: list[tuple[str, Path]]) -> list[str]:
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrate:{schema}")
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}", public')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in files:
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrate:{schema}")
    return applied


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
