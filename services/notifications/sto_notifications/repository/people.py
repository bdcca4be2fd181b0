"""SQL about people as people: the rows from before keyed hashes get theirs (and the old
suppression list, by address, moves to the keyed one); everything held about one person."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

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


async def person_data(
    conn: asyncpg.Connection, person_key: str, registration_ids: list[uuid.UUID]
) -> dict[str, Any]:
    """Everything this service holds about one person (AVG article 15): the newsletter
    subscription, the e-mails sent about their registrations or to their address (when, what
    about; not the bodies), the mailings they received, and whether they are suppressed."""
    subscriptions = await conn.fetch(
        """SELECT email, name, role, region_code, interests, status, source, created_at,
                  confirmed_at, unsubscribed_at, privacy_version, consented_at
           FROM subscribers WHERE person_key = $1""",
        person_key,
    )
    emails = await conn.fetch(
        """SELECT kind, subject, status, created_at, sent_at, event_id, registration_id
           FROM emails WHERE (recipient_key = $1 OR registration_id = ANY($2::uuid[]))
             AND recipient <> 'gewist'
           ORDER BY created_at""",
        person_key,
        registration_ids,
    )
    mailings = await conn.fetch(
        """SELECT m.subject, r.status, r.sent_at FROM mailing_recipients r
           JOIN mailings m ON m.id = r.mailing_id WHERE r.person_key = $1
           ORDER BY r.sent_at NULLS LAST""",
        person_key,
    )
    suppressed = await conn.fetchrow(
        "SELECT reason, scope, created_at FROM suppressed WHERE person_key = $1", person_key
    )
    return {
        "subscriptions": [dict(row) for row in subscriptions],
        "emails": [dict(row) for row in emails],
        "mailings": [dict(row) for row in mailings],
        "suppressed": dict(suppressed) if suppressed else None,
    }
