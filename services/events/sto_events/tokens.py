"""``python -m sto_events.tokens create NAME | revoke NAME``: manage organiser credentials.

The token is printed once; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sto_events.config import EventsSettings
from sto_events.repository import revoke_tokens
from sto_events.service import EventsService
from stolive_shared.db import create_pool


async def _run(command: str, name: str) -> str:
    settings = EventsSettings()
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=1)
    try:
        if command == "create":
            return await EventsService(pool, settings.db_schema).create_token(name)
        async with pool.acquire() as conn:
            return f"{await revoke_tokens(conn, name)} token(s) revoked for {name}"
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sto_events.tokens")
    parser.add_argument("command", choices=["create", "revoke"])
    parser.add_argument("name", help="who the token is for, e.g. 'programmabureau'")
    args = parser.parse_args()
    sys.stdout.write(asyncio.run(_run(args.command, args.name)) + "\n")


if __name__ == "__main__":
    main()
