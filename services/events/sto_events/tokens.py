"""``python -m sto_events.tokens``: organiser accounts and their API tokens, from a shell.

    create EMAIL [--name N] [--role R] [--region CODE ...] [--event UUID ...]
        the account (made or brought up to date) and a new token for it, printed once;
    revoke EMAIL   every token of the account, and the sessions started with them.

The first programme-team account of a new installation is made here (or by ``make up``); it
then manages the others on the accounts page. Only a token's SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import timedelta

from sto_events.config import EventsSettings
from stolive_shared.db import create_pool
from stolive_shared.organisers.audit import AuditLog
from stolive_shared.organisers.roles import ROLES, Organiser
from stolive_shared.organisers.store import OrganiserStore

# Who the audit log names for what is done from the shell.
SHELL = Organiser(account_id=0, email="shell", name="shell", role="programme")


async def _run(args: argparse.Namespace) -> str:
    settings = EventsSettings()
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=1)
    try:
        store = OrganiserStore(
            pool,
            settings.session_key(),
            idle=timedelta(minutes=settings.organiser_session_idle_minutes),
            lifetime=timedelta(hours=settings.organiser_session_max_hours),
        )
        audit = AuditLog(pool, "events")
        if args.command == "create":
            account = await store.add_account(
                args.email,
                args.name or args.email.split("@")[0],
                args.role,
                regions=args.region,
                events=[uuid.UUID(e) for e in args.event],
            )
            token = await store.create_token(account.account_id, "shell")
            await audit.record(SHELL, "token_made", subject=f"account:{account.account_id}")
            return token
        account_id = await pool.fetchval(
            "SELECT id FROM organisers.accounts WHERE lower(email) = lower($1)"
            " AND removed_at IS NULL",
            args.email,
        )
        if account_id is None:
            return f"no account for {args.email}"
        revoked = await store.revoke_tokens(account_id)
        await audit.record(SHELL, "token_revoked", subject=f"account:{account_id}")
        return f"{revoked} token(s) revoked for {args.email}, their sessions ended"
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sto_events.tokens")
    parser.add_argument("command", choices=["create", "revoke"])
    parser.add_argument("email", help="the account's e-mail address")
    parser.add_argument("--name", default="")
    parser.add_argument("--role", choices=ROLES, default="programme")
    parser.add_argument("--region", action="append", default=[], help="a region code")
    parser.add_argument("--event", action="append", default=[], help="an event id (check-in)")
    sys.stdout.write(asyncio.run(_run(parser.parse_args())) + "\n")


if __name__ == "__main__":
    main()
