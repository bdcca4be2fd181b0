"""SQL of a batch of sign-ups: the seats read for the decision, and the one statement that
stores the decision (seats, registrations and their messages) or nothing.

A batch adds its seats with one UPDATE that locks its events' rows in id order (so two
batches cannot deadlock) and passes only if each row is still as the batch decided on it
(same revision, same counts): the seat rule itself is the domain's (``seats_to_grant``),
decided on exactly those counts, so concurrent sign-ups can never overbook.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import asyncpg

from sto_registrations.domain import Registration, SeatChange, SeatState
from sto_registrations.repository.rows import REGISTRATION_COLUMNS, registration_of, terms_of
from stolive_shared.messaging import outbox
from stolive_shared.privacy import keyring


class SeatCountsChanged(Exception):
    """A batch's rows were not as it decided (seats taken, a person signed up meanwhile):
    nothing of it was stored; decide again."""


async def read_seats(
    conn: asyncpg.Connection, wanted: Sequence[tuple[uuid.UUID, str]], *, lock: bool
) -> tuple[dict[uuid.UUID, SeatState], set[tuple[uuid.UUID, str]]]:
    """The wanted events' seats, with the (event, email) pairs among ``wanted`` that already
    hold a registration; one round trip.

    ``lock``: lock the events' rows first, in id order (so batches cannot deadlock), and read
    the seats under the lock. Without it the read is a plain snapshot, and ``store_batch``
    refuses to write unless the seats are still what was read.
    """
    rows = await conn.fetch(
        f"""SELECT e.*, ARRAY(
                   SELECT w.email FROM unnest($2::uuid[], $3::text[]) AS w(event_id, email)
                   JOIN registrations r ON r.event_id = w.event_id AND lower(r.email) = w.email
                                       AND r.status <> 'cancelled'
                   WHERE w.event_id = e.id) AS existing
            FROM events e WHERE e.id = ANY($1::uuid[]) ORDER BY e.id
            {"FOR NO KEY UPDATE OF e" if lock else ""}""",
        sorted({event_id for event_id, _ in wanted}),
        [event_id for event_id, _ in wanted],
        [email for _, email in wanted],
    )
    seats = {
        row["id"]: SeatState(terms_of(row), row["confirmed_count"], row["waitlisted_count"])
        for row in rows
    }
    existing = {(row["id"], email) for row in rows for email in row["existing"]}
    return seats, existing


_STORE_BATCH = (
    """WITH seats AS (
        UPDATE events e SET confirmed_count = e.confirmed_count + d.confirmed,
                            waitlisted_count = e.waitlisted_count + d.waitlisted
        FROM unnest($13::uuid[], $14::int[], $15::int[], $16::int[], $17::int[],
                    $18::int[])
             AS d(id, confirmed, waitlisted, revision, confirmed_before,
                  waitlisted_before)
        WHERE e.id = d.id
        -- Checked on the row as locked (a WHERE would see the statement's snapshot,
        -- from before a batch ahead committed): was it as the batch decided?
        RETURNING e.revision = d.revision
                  AND e.confirmed_count - d.confirmed = d.confirmed_before
                  AND e.waitlisted_count - d.waitlisted = d.waitlisted_before
                  AS as_decided),
    stored AS (
        INSERT INTO registrations (id, event_id, status, name, email, organisation,
            role, region_code, profiles, newsletter, viewer_id, group_id, confirmed_at,
            privacy_version, consented_at, school_code)
        SELECT d.id, d.event_id, d.status, d.name, d.email, d.organisation, d.role,
               d.region_code,
               coalesce(string_to_array(nullif(d.profiles, ''), ','), '{}'),
               d.newsletter, d.viewer_id, d.group_id,
               CASE WHEN d.status = 'confirmed' THEN now() END, $29, now(), d.school_code
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[],
                    $11::text[], $12::uuid[], $30::text[])
             WITH ORDINALITY AS d(id, event_id, status, name, email, organisation, role,
                                  region_code, profiles, newsletter, viewer_id,
                                  group_id, school_code, n)
        ORDER BY d.n
        ON CONFLICT (event_id, lower(email)) WHERE status <> 'cancelled' DO NOTHING
        RETURNING id, queue_number, created_at),
    queued AS (
        """
    + outbox.insert_sql(19)
    + """
        RETURNING 1),
    -- The data keys that seal the registrations' contacts in those messages.
    keyed AS (
        """
    + keyring.insert_keys_sql(27)
    + """
        RETURNING 1),
    -- Delivered at commit; wakes the relay without waiting for its poll.
    woken AS (SELECT pg_notify($24, '') FROM (SELECT count(*) FROM queued) AS q)
    -- One row, whatever was stored: the whole statement fails unless all of it was.
    SELECT array_agg(id) AS ids, array_agg(queue_number) AS queue_numbers,
           array_agg(created_at) AS created_at,
           CASE WHEN count(*) <> $25 THEN sign_up_batch_refused(
                    count(*) || ' of ' || $25 || ' stored: someone signed up meanwhile')
                WHEN (SELECT count(*) FILTER (WHERE as_decided) FROM seats) <> $26
                THEN sign_up_batch_refused('seat counts changed')
                ELSE (SELECT count(*) = 1 FROM woken) END AS stored
    FROM stored"""
)


async def store_batch(
    conn: asyncpg.Connection,
    before: dict[uuid.UUID, SeatState],
    changes: dict[uuid.UUID, SeatChange],
    drafts: Sequence[Registration],
    keys: dict[uuid.UUID, bytes],
    messages: outbox.OutboxColumns,
    wakeup_channel: str,
    privacy_version: str,
) -> list[Registration]:
    """Take a batch's seats and waiting-list places, store its registrations with their data
    keys and the privacy statement they agreed to (``privacy_version``, now) and queue its
    messages (waking the relay), in one statement: outside a transaction
    it commits alone, one round trip while the events' rows are locked.

    The seat UPDATE passes only if each event's row is still as the batch decided on it
    (``before``: same revision, same counts), so the domain's decision holds. Registrations
    keep the batch's order (their queue numbers follow it). If a row was not as decided, or a
    person meanwhile got an active registration elsewhere (another process's batch, say), the
    statement fails as a whole and this raises ``SeatCountsChanged``: the caller decides
    again.
    """
    if not drafts:
        return []
    ids = sorted(changes)
    arguments = (
        [d.id for d in drafts],
        [d.event_id for d in drafts],
        [d.status for d in drafts],
        [d.applicant.name for d in drafts],
        [d.applicant.email for d in drafts],
        [d.applicant.organisation for d in drafts],
        [d.applicant.role for d in drafts],
        [d.applicant.region_code for d in drafts],
        [",".join(d.applicant.profiles) for d in drafts],
        [d.applicant.newsletter for d in drafts],
        [d.viewer_id for d in drafts],
        [d.group_id for d in drafts],
        ids,
        [changes[i].confirmed for i in ids],
        [changes[i].waitlisted for i in ids],
        [before[i].terms.revision for i in ids],
        [before[i].confirmed for i in ids],
        [before[i].waitlisted for i in ids],
        *messages.arguments(),
        wakeup_channel,
        len(drafts),
        len(ids),
        list(keys),
        list(keys.values()),
        privacy_version,
        [d.applicant.school_code for d in drafts],
    )
    try:
        row = await conn.fetchrow(_STORE_BATCH, *arguments)
    except asyncpg.SerializationError as exc:
        if "sign-up batch not stored" in str(exc):
            raise SeatCountsChanged(str(exc)) from exc
        raise
    assert row is not None
    stored = {
        registration_id: (queue_number, created_at)
        for registration_id, queue_number, created_at in zip(
            row["ids"], row["queue_numbers"], row["created_at"], strict=True
        )
    }
    return [replace(d, queue_number=stored[d.id][0], created_at=stored[d.id][1]) for d in drafts]


async def find_active_many(
    conn: asyncpg.Connection, keys: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Registration]:
    """The active registrations of these (event id, normalised email) pairs."""
    if not keys:
        return {}
    rows = await conn.fetch(
        f"""SELECT {REGISTRATION_COLUMNS} FROM registrations
            WHERE (event_id, lower(email)) IN (
                SELECT * FROM unnest($1::uuid[], $2::text[]))
              AND status <> 'cancelled'""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    found = [registration_of(r) for r in rows]
    return {(r.event_id, r.applicant.email.lower()): r for r in found}
