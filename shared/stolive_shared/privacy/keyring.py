"""The data keys in PostgreSQL (schema ``privacy``), read and written on the caller's
connection, so a key is made with its registration and forgotten with its erasure in the
same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from stolive_shared.contracts.sealed import Contact, Sealed
from stolive_shared.privacy.sealing import Unreadable, new_key, open_sealed


async def keys_of(
    conn: asyncpg.Connection, subjects: Sequence[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """The keys of those subjects that still have one."""
    rows = await conn.fetch(
        "SELECT subject, key FROM privacy.data_keys WHERE subject = ANY($1::uuid[])",
        list(subjects),
    )
    return {row["subject"]: bytes(row["key"]) for row in rows}


def insert_keys_sql(first: int) -> str:
    """The INSERT of new keys, for a statement that stores what they seal at once (the
    sign-up batch): subjects are parameter ``$first``, keys ``$first + 1``."""
    return (
        "INSERT INTO privacy.data_keys (subject, key)"
        f" SELECT * FROM unnest(${first}::uuid[], ${first + 1}::bytea[])"
    )


async def ensure_keys(
    conn: asyncpg.Connection, subjects: Sequence[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """A key for each subject: the one it has, else one made now."""
    keys = await keys_of(conn, subjects)
    missing = [subject for subject in dict.fromkeys(subjects) if subject not in keys]
    if missing:
        await conn.execute(
            insert_keys_sql(1) + " ON CONFLICT (subject) DO NOTHING",
            missing,
            [new_key() for _ in missing],
        )
        keys.update(await keys_of(conn, missing))
    return keys


async def forget(conn: asyncpg.Connection, subjects: Sequence[uuid.UUID]) -> int:
    """Delete the keys: what they sealed, wherever it is, can no longer be read."""
    deleted: str = await conn.execute(
        "DELETE FROM privacy.data_keys WHERE subject = ANY($1::uuid[])", list(subjects)
    )
    return int(deleted.split()[-1])


async def open_contact(conn: asyncpg.Connection, sealed: Sealed | None) -> Contact | None:
    """The contact, or None when it cannot be read any more (its key was forgotten, or the
    message is from before contacts were sealed)."""
    if sealed is None:
        return None
    key = (await keys_of(conn, [sealed.subject])).get(sealed.subject)
    if key is None:
        return None
    try:
        return open_sealed(key, sealed)
    except Unreadable:
        return None
