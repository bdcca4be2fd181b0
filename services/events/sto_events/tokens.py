"""``python -m sto_events.tokens create NAME | revoke NAME``: manage organiser credentials.

The token is printed once; only its SHA-256 is stored. Revoking ends the token's sessions in
every service at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from sto_events.config import EventsSettings
from stolive_shared.db import create_pool
from stolive_shared.organisers.store import OrganiserStore


async def _run(command: str, name: str) -> str:
    settings = EventsSettings()
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=1)
    try:
        store = OrganiserStore(
            pool,
            settings.session_key(),
            idle=timedelta(minutes=settings.organiser_session_idle_minutes),
            lifetime=timedelta(hours=settings.organiser_session_max_hours),
        )
        if command == "create":
            return await store.create_token(name)
        return f"{await store.revoke_tokens(name)} token(s) revoked for {name}, sessions ended"
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
