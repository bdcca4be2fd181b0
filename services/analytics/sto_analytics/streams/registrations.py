"""Registrations per event: two tables keyed by event id, co-partitioned with their topic.

``registration_status`` holds each registration's latest status and ``registrant_profiles``
its viewer id, region, role, school site, sealed contact (never a name in clear: the table's
changelog is a topic too) and whether it was checked in: sets keyed by registration id, so
replays after a crash change nothing. ``registration.corrected`` replaces the categories and
contact (the status is the one held), ``registration.check_in_undone`` takes a check-in back
(the only message that clears one). A timer writes
the tallies and registrants of changed events to the PostgreSQL read model (through
``ReadModelWriter.save_registrations``, one transaction a flush), and every 30 s all local
ones, so a restarted worker refreshes what it owns; the writer opens the contacts there, in
PostgreSQL. ``person.erased`` blanks the person's name in the read model at once (counts
stay); their data keys are gone, so the sealed contacts in the tables open no more.

Only the worker that owns an event's partition writes its figures, and not while a rebalance
or table recovery is under way. A worker keeps what its agent wrote to its in-memory tables
after the partition moved on (Faust only drops recovered keys), and the read model is
last-writer-wins: measured with two workers, the old owner's 30 s refresh put the tallies of
four moved events back from 240 to 200 for seconds, until the new owner's refresh.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import faust
from aiokafka import TopicPartition

from sto_analytics.config import AnalyticsSettings
from sto_analytics.domain import Profile, RegistrationTally, tally, with_profile, with_status
from sto_analytics.service import ReadModelWriter, Registrant
from sto_analytics.streams.dead_letters import DeadLetters
from sto_analytics.streams.shared import Shared, until_written
from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.registrations import (
    PersonErased,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationCheckInUndone,
    RegistrationConfirmed,
    RegistrationCorrected,
    RegistrationPromoted,
    RegistrationsAnonymised,
    RegistrationWaitlisted,
)
from stolive_shared.contracts.sealed import Sealed
from stolive_shared.contracts.topics import REGISTRATIONS
from stolive_shared.errors import PoisonMessage

log = logging.getLogger(__name__)

# The messages that change a registration's status or profile; a repeated sign-up changes
# nothing.
RegistrationChange = (
    RegistrationConfirmed
    | RegistrationWaitlisted
    | RegistrationPromoted
    | RegistrationCancelled
    | RegistrationCheckedIn
    | RegistrationCorrected
    | RegistrationCheckInUndone
)
# Messages about a registration that leave its status as it was.
_STATUS_KEPT = (RegistrationCorrected, RegistrationCheckInUndone)


def register(
    app: faust.App, settings: AnalyticsSettings, shared: Shared, writer: ReadModelWriter
) -> None:
    source = app.topic(
        REGISTRATIONS.name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=REGISTRATIONS.partitions,
    )
    dead_letters = DeadLetters(app, REGISTRATIONS, "analytics.registrations")
    statuses = app.Table(
        "registration_status",
        default=dict,
        partitions=REGISTRATIONS.partitions,
        key_type=str,
        value_type=None,  # autodetect: plain JSON objects (dict has no from_data)
    )
    profiles = app.Table(
        "registrant_profiles",
        default=dict,
        partitions=REGISTRATIONS.partitions,
        key_type=str,
        value_type=None,  # autodetect: plain JSON objects (dict has no from_data)
    )
    shared.profiles_table = profiles
    changed: set[str] = set()
    # registrations partitions this worker owns now; event key -> partition its agent saw it on
    owned: set[int] = set()
    partition_of: dict[str, int] = {}

    def ours(key: str) -> bool:
        """Keys recovered from the changelog (partition unknown here) are dropped by Faust
        when their partition moves; keys the agent wrote stay, so they are checked."""
        partition = partition_of.get(key)
        return partition is None or partition in owned

    @app.agent(source, name="count-registrations")
    async def count_registrations(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                message = decode(event.value)
            except PoisonMessage as exc:
                await dead_letters.send(event, exc)
                continue
            if isinstance(message, PersonErased):
                await erase(message)
            elif isinstance(message, RegistrationsAnonymised):
                await anonymise(message)
            elif isinstance(message, RegistrationChange):
                count(message, event.message.partition)

    def count(message: RegistrationChange, partition: int) -> None:
        registration = message.registration
        key = str(registration.event_id)
        partition_of[key] = partition
        registration_id = str(registration.registration_id)
        known = statuses[key]
        if not isinstance(message, _STATUS_KEPT) or registration_id not in known:
            statuses[key] = with_status(known, registration_id, registration.status)
        profile = Profile(
            viewer_id=registration.viewer_id,
            region_code=registration.attendee.region_code,
            role=registration.attendee.role,
            sealed_contact=registration.contact.model_dump_json() if registration.contact else None,
            checked_in=isinstance(message, RegistrationCheckedIn),
            school_code=registration.attendee.school_code,
        )
        profiles[key] = with_profile(
            profiles[key],
            registration_id,
            profile,
            undo_check_in=isinstance(message, RegistrationCheckInUndone),
        )
        shared.profiles_changed(key)
        changed.add(key)

    async def erase(message: PersonErased) -> None:
        registration_ids = list(message.registration_ids)
        await until_written("erasure", lambda: writer.erase_names(registration_ids))

    async def anonymise(message: RegistrationsAnonymised) -> None:
        registration_ids = list(message.registration_ids)
        await until_written("anonymisation", lambda: writer.anonymise_names(registration_ids))

    async def flush(keys: set[str]) -> None:
        if not keys:
            return
        tallies: dict[uuid.UUID, RegistrationTally] = {
            uuid.UUID(key): tally(statuses[key]) for key in keys
        }
        rows: list[Registrant] = []
        for key in keys:
            status_of = statuses[key]
            for registration_id, fields in profiles[key].items():
                profile = Profile.from_list(fields)
                rows.append(
                    Registrant(
                        registration_id=uuid.UUID(registration_id),
                        event_id=uuid.UUID(key),
                        viewer_id=profile.viewer_id,
                        status=status_of.get(registration_id, "confirmed"),
                        region_code=profile.region_code,
                        role=profile.role,
                        contact=Sealed.model_validate_json(profile.sealed_contact)
                        if profile.sealed_contact
                        else None,
                        checked_in=profile.checked_in,
                        school_code=profile.school_code,
                        check_in_undone=profile.check_in_undone,
                    )
                )
        await writer.save_registrations(tallies, rows)

    @app.timer(interval=settings.flush_interval_s)
    async def flush_changed() -> None:
        if app.rebalancing:
            return  # partitions moving or tables recovering: write once settled
        keys = {key for key in changed if ours(key)}
        changed.clear()
        try:
            await flush(keys)
        except (OSError, asyncpg.PostgresError) as exc:
            changed.update(keys)
            log.warning("read model not updated, will retry: %r", exc)

    @app.timer(interval=30.0)
    async def flush_owned() -> None:
        if app.rebalancing:
            return
        keys = {str(key) for key in statuses.keys() if ours(str(key))}
        try:
            await flush(keys)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("read model refresh failed: %r", exc)

    async def on_revoked(_app: faust.App, revoked: set[TopicPartition], **_kwargs: Any) -> None:
        # ``changed`` stays: a revoked partition may come straight back (the flush filters).
        owned.difference_update(tp.partition for tp in revoked if tp.topic == REGISTRATIONS.name)

    async def on_assigned(_app: faust.App, assigned: set[TopicPartition], **_kwargs: Any) -> None:
        owned.clear()
        owned.update(tp.partition for tp in assigned if tp.topic == REGISTRATIONS.name)

    signals: Any = app
    signals.on_partitions_revoked.connect(on_revoked)
    signals.on_partitions_assigned.connect(on_assigned)
