"""Signing up: a person, or a person with colleagues, for an event.

Sign-ups go through a ``SignUpBatcher`` (group commit): the sign-ups that arrive while one
batch commits form the next batch, decided (``domain.plan_sign_ups``) and stored in ONE
statement across events, and each caller is answered only after that commit. Seats stay exact
because the statement passes only if the events' rows are as the batch decided on them;
duplicates are caught against the database and within the batch. What follows an answer
(who booked whom, a notice to an address signed up again) runs after it, on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from opentelemetry import trace

from sto_registrations import domain, repository
from sto_registrations.domain import Applicant, EventUnknown, Registration
from sto_registrations.service.batching import Flight, SignUpBatcher, SignUpRequest
from sto_registrations.service.views import join_url, registration_view
from stolive_shared.clock import Clock
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.registrations import (
    RegistrationConfirmed,
    RegistrationSignUpRepeated,
    RegistrationWaitlisted,
)
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging import outbox
from stolive_shared.privacy.sealing import KEY_BYTES
from stolive_shared.telemetry import current_trace_headers, trace_headers_of

log = logging.getLogger(__name__)

# Errors one request's data can cause (the API refuses such data first; this is the net).
_ONE_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    UnicodeError,
)
# The rows changed under a batch's decision: it is decided again, under their lock.
_DECIDE_AGAIN: tuple[type[Exception], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    repository.SeatCountsChanged,
)


@dataclass(frozen=True)
class SignUpResult:
    registration: Registration
    created: bool
    manage_token: str
    waitlist_position: int | None = None
    join_url: str | None = None
    # The address already held this registration before the sign-up: it is told again.
    repeated: bool = False


SignUpAnswer = SignUpResult | Exception


def _fresh_ids(count: int) -> Iterator[tuple[uuid.UUID, uuid.UUID, str, bytes]]:
    """(registration id, message id, viewer id, data key) for ``count`` new registrations,
    from one read of the operating system's randomness: one system call per batch instead of
    four per sign-up (they showed up as a tenth of the sign-up CPU). Same source as
    ``secrets``."""
    size = 44 + KEY_BYTES
    raw = os.urandom(size * count)
    for offset in range(0, size * count, size):
        chunk = raw[offset : offset + size]
        yield (
            uuid.UUID(bytes=chunk[:16], version=4),
            uuid.UUID(bytes=chunk[16:32], version=4),
            "v_" + chunk[32:44].hex(),
            chunk[44:],
        )


def normalised(applicant: Applicant) -> Applicant:
    return Applicant(
        name=applicant.name.strip(),
        email=domain.normalise_email(applicant.email),
        organisation=applicant.organisation.strip(),
        role=applicant.role,
        region_code=applicant.region_code or None,
        profiles=tuple(dict.fromkeys(applicant.profiles)),
        newsletter=applicant.newsletter,
        school_code=applicant.school_code or None,
    )


def _trace_headers(causes: list[trace.SpanContext]) -> list[dict[str, str]]:
    """Each message carries the trace of the request that caused it, so one trace runs from
    a person's sign-up through Kafka to their e-mail; the batch span only links to them."""
    batch_headers = current_trace_headers()
    by_cause: dict[tuple[int, int], dict[str, str]] = {}
    headers = []
    for cause in causes:
        if not cause.is_valid:
            headers.append(batch_headers)
            continue
        key = (cause.trace_id, cause.span_id)
        if key not in by_cause:
            by_cause[key] = trace_headers_of(cause)
        headers.append(by_cause[key])
    return headers


@dataclass
class SignUps:
    pool: asyncpg.Pool
    schema: str
    links: PersonalLinks
    clock: Clock
    max_in_flight: int = 4
    # A registration is told "you were already signed up" at most once per this interval.
    repeat_notice_interval: timedelta = timedelta(minutes=10)
    # The privacy statement a sign-up agrees to (its version: settings.privacy_statement_version).
    privacy_version: str = ""
    batcher: SignUpBatcher[SignUpResult] = field(init=False)
    # Work after a sign-up's answer (bookings, repeat notices); awaited on close.
    _follow_ups: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    # Connections kept between sign-up batches while more keep coming: a pool release resets
    # the session, one more round trip (and four statements) per batch.
    _kept: list[asyncpg.Connection] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.batcher = SignUpBatcher(
            self._commit,
            split_on=_ONE_REQUEST_ERRORS,
            retry_on=_DECIDE_AGAIN,
            max_in_flight=self.max_in_flight,
        )

    async def close(self) -> None:
        """Answer every sign-up already taken, finish what follows them, then stop."""
        await self.batcher.close()
        await self.drain_follow_ups()
        await self._release_kept()

    async def drain_follow_ups(self) -> None:
        """Wait for the work after the sign-ups answered so far (see ``_follow_up``)."""
        while self._follow_ups:
            await asyncio.gather(*self._follow_ups, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def _batch_connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn: asyncpg.Connection | None = None
        while self._kept and conn is None:
            kept = self._kept.pop()
            if kept.is_closed():
                await self.pool.release(kept)
            else:
                conn = kept
        if conn is None:
            conn = await self.pool.acquire()
        try:
            yield conn
        except BaseException:
            await self.pool.release(conn)  # the pool resets it, or replaces a broken one
            raise
        if self.batcher.busy and not conn.is_in_transaction():
            self._kept.append(conn)
        else:
            await self.pool.release(conn)
            await self._release_kept()

    async def _release_kept(self) -> None:
        while self._kept:
            await self.pool.release(self._kept.pop())

    async def sign_up(self, event_id: uuid.UUID, applicant: Applicant) -> SignUpResult:
        cause = trace.get_current_span().get_span_context()
        [answer] = await self.batcher.submit(
            [SignUpRequest(event_id, normalised(applicant), cause=cause)]
        )
        if isinstance(answer, Exception):
            raise answer
        self._follow_up([answer], None)
        return answer

    async def sign_up_group(
        self, event_id: uuid.UUID, applicants: list[Applicant]
    ) -> list[SignUpAnswer]:
        """The first applicant with colleagues of the same school, each their own registration.

        Refused as a whole (409/410) when the first applicant is refused; colleagues after a
        full event without a waiting list get their own refusal in the answer list.
        """
        group_id = uuid.uuid4() if len(applicants) > 1 else None
        cause = trace.get_current_span().get_span_context()
        requests = [
            SignUpRequest(event_id, normalised(a), group_id, cause=cause) for a in applicants
        ]
        answers = await self.batcher.submit(requests)
        if isinstance(answers[0], Exception):
            raise answers[0]
        self._follow_up(answers, group_id)
        return answers

    def _follow_up(self, answers: list[SignUpAnswer], group_id: uuid.UUID | None) -> None:
        """After the answer, not before it: who booked the colleagues, and a notice to each
        address that was already registered. Its timing must not tell a repeat from a new
        sign-up, so it runs on its own (``close`` waits for it)."""
        results = [answer for answer in answers if isinstance(answer, SignUpResult)]
        repeated = [result.registration for result in results if result.repeated]
        booker = results[0].registration.id if group_id is not None and results else None
        if not repeated and booker is None:
            return
        task = asyncio.create_task(self._after_sign_up(repeated, group_id, booker))
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    async def _after_sign_up(
        self,
        repeated: list[Registration],
        group_id: uuid.UUID | None,
        booker: uuid.UUID | None,
    ) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if group_id is not None and booker is not None:
                    await repository.record_booking(conn, group_id, booker)
                if not repeated:
                    return
                due = await repository.claim_repeat_notices(
                    conn,
                    [registration.id for registration in repeated],
                    self.clock() - self.repeat_notice_interval,
                )
                keys = await repository.data_keys(conn, due)
                messages: list[Message] = []
                for registration in due:
                    terms = await repository.get_terms(conn, registration.event_id)
                    assert terms is not None
                    view = registration_view(registration, terms, keys.get(registration.id))
                    messages.append(RegistrationSignUpRepeated.create(registration=view))
                await outbox.enqueue_many(conn, messages, schema=self.schema)
        except Exception:
            # The sign-ups themselves stand; only the booker's list or a courtesy e-mail is
            # missing, and the person can sign up again for it.
            log.exception("after-sign-up work failed (booking %s)", group_id)

    async def _commit(
        self, requests: list[SignUpRequest], flight: Flight | None = None, locked: bool = True
    ) -> list[SignUpAnswer]:
        """Decide and store one batch in one commit; the outbox rows commit with it.

        ``locked``: in a transaction, lock the events' rows and decide on what they hold.
        Otherwise read without locking and decide on the seats the batches ahead (``flight``)
        will leave; the one statement that stores the batch (and commits it, no transaction
        needed) checks under the rows' lock that they did, and fails as a whole if not.
        """
        now = self.clock()
        wanted = [(r.event_id, r.applicant.email) for r in requests]
        pipelined = flight is not None and not locked
        async with (
            self._batch_connection() as conn,
            contextlib.nullcontext() if pipelined else conn.transaction(),
        ):
            seats, existing_keys = await repository.read_seats(conn, wanted, lock=locked)
            if flight is not None and pipelined:
                seats.update(
                    (event_id, state)
                    for event_id, state in (await flight.seats_ahead()).items()
                    if event_id in seats
                )
            existing = (
                await repository.find_active_many(conn, list(existing_keys))
                if existing_keys
                else {}
            )
            plan, changes = domain.plan_sign_ups(wanted, seats, set(existing), now)
            if flight is not None:
                flight.after = {
                    event_id: domain.SeatState(
                        state.terms,
                        state.confirmed + changes.get(event_id, domain.SeatChange()).confirmed,
                        state.waitlisted + changes.get(event_id, domain.SeatChange()).waitlisted,
                    )
                    for event_id, state in seats.items()
                }
                flight.planned.set()
            new = [
                (index, request, planned.status)
                for index, (request, planned) in enumerate(zip(requests, plan, strict=True))
                if planned.status is not None
            ]
            ids = list(_fresh_ids(len(new)))
            message_ids = {registration_id: message_id for registration_id, message_id, *_ in ids}
            keys = {registration_id: key for registration_id, _, _, key in ids}
            drafts = {
                index: Registration(
                    id=registration_id,
                    event_id=request.event_id,
                    status=status,
                    applicant=request.applicant,
                    viewer_id=viewer_id,
                    queue_number=0,
                    created_at=now,
                    group_id=request.group_id,
                )
                for (index, request, status), (registration_id, _, viewer_id, _) in zip(
                    new, ids, strict=True
                )
            }
            tokens = {d.id: self.links.manage_token(d.id) for d in drafts.values()}
            messages: list[Message] = []
            causes: list[trace.SpanContext] = []
            for index, draft in drafts.items():
                causes.append(requests[index].cause)
                view = registration_view(draft, seats[draft.event_id].terms, keys[draft.id])
                envelope = {"message_id": message_ids[draft.id], "occurred_at": now}
                if draft.status == "confirmed":
                    messages.append(RegistrationConfirmed(**envelope, registration=view))
                else:
                    messages.append(
                        RegistrationWaitlisted(
                            **envelope,
                            registration=view,
                            waitlist_position=plan[index].waitlist_position,
                        )
                    )
            queued = outbox.OutboxColumns.of(messages, _trace_headers(causes))
            if flight is not None and pipelined:
                await flight.may_store()
            try:
                stored = await repository.store_batch(
                    conn,
                    seats,
                    changes,
                    list(drafts.values()),
                    keys,
                    queued,
                    outbox.wakeup_channel(self.schema),
                    self.privacy_version,
                )
            finally:
                if flight is not None:
                    flight.stored.set()
            by_index = dict(zip(drafts, stored, strict=True))
        answers: list[SignUpAnswer] = []
        for index, planned in enumerate(plan):
            answer: SignUpAnswer
            if planned.unknown_event:
                answer = EventUnknown()
            elif planned.refused is not None:
                answer = planned.refused
            elif planned.existing:
                found = existing[wanted[index]]
                answer = SignUpResult(
                    found,
                    False,
                    self.links.manage_token(found.id),
                    join_url=join_url(self.links, found, seats[found.event_id].terms),
                    repeated=True,
                )
            elif planned.same_as is not None:
                first = answers[planned.same_as]
                answer = (
                    first
                    if isinstance(first, Exception)
                    else SignUpResult(
                        first.registration, False, first.manage_token, join_url=first.join_url
                    )
                )
            else:
                registration = by_index[index]
                position = planned.waitlist_position if planned.status == "waitlisted" else None
                answer = SignUpResult(
                    registration,
                    True,
                    tokens[registration.id],
                    position,
                    join_url(self.links, registration, seats[registration.event_id].terms),
                )
            answers.append(answer)
        return answers
