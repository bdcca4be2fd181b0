"""SQL that names people by their keyed hash: the rows from before person keys get theirs, and
the old suppression list (by address) moves to the keyed one."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

# (table, key column, address column) of every table that names a person by address.
_NAMED = (
    ("subscribers", "person_key", "email"),
    ("registrations", "person_key", "email"),
    ("emails", "recipient_key", "recipient"),
    ("mailing_recipients", "person_key", "email"),
)


async def fill_person_keys(
    conn: asyncpg.Connection, key_of: Callable[[str], str], limit: int = 500
) -> int:
    """One batch of each table: rows without a key get it, suppressions by address become
    suppressions by key (and the address goes). How many rows this touched."""
    touched = 0
    for table, key_column, email_column in _NAMED:
        rows = await conn.fetch(
            f"""SELECT DISTINCT {email_column} AS email FROM {table}
                WHERE {key_column} IS NULL AND {email_column} <> 'gewist' LIMIT $1""",
            limit,
        )
        if not rows:
            continue
        emails = [row["email"] for row in rows]
        result: str = await conn.execute(
            f"""UPDATE {table} t SET {key_column} = k.key
                FROM unnest($1::text[], $2::text[]) AS k(email, key)
                WHERE t.{email_column} = k.email AND t.{key_column} IS NULL""",
            emails,
            [key_of(email) for email in emails],
        )
        touched += int(result.split()[-1])
    legacy = await conn.fetch("SELECT email, reason, scope FROM suppressions LIMIT $1", limit)
    if legacy:
        await conn.executemany(
            """INSERT INTO suppressed (person_key, reason, scope) VALUES ($1, $2, $3)
               ON CONFLICT (person_key) DO UPDATE SET scope = 'all', reason = EXCLUDED.reason
                   WHERE EXCLUDED.scope = 'all'""",
            [(key_of(row["email"]), row["reason"], row["scope"]) for row in legacy],
        )
        await conn.execute(
            "DELETE FROM suppressions WHERE email = ANY($1::text[])",
            [row["email"] for row in legacy],
        )
        touched += len(legacy)
    return touched
