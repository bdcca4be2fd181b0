"""Use cases of the registrations service; the only place that opens a transaction.

A sign-up, a cancellation with its promotion from the waiting list, a check-in, an erasure,
and every message they cause commit together or not at all.

Sign-ups go through a ``SignUpBatcher`` (group commit): the sign-ups that arrive while one
batch commits form the next batch, decided and stored in ONE transaction across events, and
each caller is answered only after that commit. Seats stay exact because the batch locks its
events' rows before deciding; duplicates are caught against the database and within the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
from opentelemetry import trace

from sto_registrations import domain, repository
from sto_registrations.domain import Applicant, EventTerms
from sto_registrations.repository import Registration
from stolive_shared import links
from stolive_shared.clock import Clock, utc_now
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import EventSnapshot
from stolive_shared.contracts.registrations import (
    Attendee,
    PersonErased,
    RegistrationCancelled,
    RegistrationCheckedIn,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationSignUpRepeated,
    RegistrationStatus,
    RegistrationView,
    RegistrationWaitlisted,
)
from stolive_shared.errors import DomainError
from stolive_shared.links import PersonalLinks
from stolive_shared.messaging import outbox
from stolive_shared.telemetry import current_trace_headers, trace_headers_of

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)


class EventUnknown(DomainError):
    status = 404
    message = "Evenement niet gevonden"


class RegistrationUnknown(DomainError):
    status = 404
    message = "Aanmelding niet gevonden"


# Errors one request's data can cause (the API refuses such data first; this is the net).
_ONE_REQUEST_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    UnicodeError,
)


class CheckInRefused(DomainError):
    """This registration cannot be checked in; the message says why, in Dutch."""


@dataclass(frozen=True)
class SignUpResult:
    registration: Registration
    created: bool
    manage_token: str
    waitlist_position: int | None = None
    join_url: str | None = None
    # The address already held this registration before the sign-up: it is told again.
    repeated: bool = False


@dataclass(frozen=True)
class SignUpRequest:
    event_id: uuid.UUID
    applicant: Applicant  # normalised
    group_id: uuid.UUID | None = None
    # The request's span: its messages continue that trace, whichever batch carries them.
    cause: trace.SpanContext = field(default=trace.INVALID_SPAN_CONTEXT, compare=False)


SignUpAnswer = SignUpResult | Exception


def _fresh_ids(count: int) -> Iterator[tuple[uuid.UUID, uuid.UUID, str]]:
    """(registration id, message id, viewer id) for ``count`` new registrations, from one
    read of the operating system's randomness: one system call per batch instead of three
    per sign-up (they showed up as a tenth of the sign-up CPU). Same source as ``secrets``."""
    raw = os.urandom(44 * count)
    for offset in range(0, 44 * count, 44):
        chunk = raw[offset : offset + 44]
        yield (
            uuid.UUID(bytes=chunk[:16], version=4),
            uuid.UUID(bytes=chunk[16:32], version=4),
            "v_" + chunk[32:44].hex(),
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
    )


@dataclass
class _Pending:
    request: SignUpRequest
    answer: asyncio.Future[SignUpAnswer]
    span: trace.SpanContext  # the request's span: the batch span links to it


@dataclass(eq=False)
class Flight:
    """A batch in flight, as the batches after it on the same events see it.

    A later batch for a busy event does not wait for the earlier one to commit: it decides
    on the seats the earlier one will leave (``after``), stores its rows once the earlier one
    has stored its own (so queue numbers keep arrival order), and its seat UPDATE then waits
    for the earlier commit and passes only if the seats are indeed as expected. If they are
    not (the earlier batch failed, someone cancelled), it waits for the earlier batches to
    finish and decides again under the rows' lock.
    """

    events: frozenset[uuid.UUID]
    keys: frozenset[tuple[uuid.UUID, str]]
    ahead: tuple[Flight, ...]
    after: dict[uuid.UUID, domain.SeatState] = field(default_factory=dict)
    planned: asyncio.Event = field(default_factory=asyncio.Event)
    stored: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def seats_ahead(self) -> dict[uuid.UUID, domain.SeatState]:
        """The seats the batches ahead will leave, for the events this batch shares with them."""
        seats: dict[uuid.UUID, domain.SeatState] = {}
        for earlier in self.ahead:  # in the order they started: the last one's word counts
            await earlier.planned.wait()
            seats.update((e, state) for e, state in earlier.after.items() if e in self.events)
        return seats

    async def may_store(self) -> None:
        for earlier in self.ahead:
            await earlier.stored.wait()

    async def ahead_done(self) -> None:
        for earlier in self.ahead:
            await earlier.done.wait()

    def finish(self) -> None:
        self.planned.set()
        self.stored.set()
        self.done.set()


@dataclass
class SignUpBatcher:
    """Group commit for sign-ups: whatever arrives while batches commit goes in the next.

    No timer: under light load a batch is one sign-up and is committed at once; under heavy
    load batches grow by themselves, so the commits per second stay few. Up to
    ``max_in_flight`` batches commit at once, at most ``depth`` of them for the same event
    (pipelined, see ``Flight``); one person's sign-up for an event is never in two batches at
    once. Sign-ups for one event keep their arrival order.
    """

    commit: Callable[[list[SignUpRequest], Flight, bool], Awaitable[list[SignUpAnswer]]]
    max_batch: int = 256
    max_in_flight: int = 4
    depth: int = 3
    attempts: int = 4
    _queue: list[_Pending] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None
    _flights: dict[asyncio.Task[None], Flight] = field(default_factory=dict)
    # Kept as flights start and finish (not recounted per sign-up): batches in flight per
    # event, and the (event, person) keys they hold.
    _busy: dict[uuid.UUID, int] = field(default_factory=dict)
    _keys_in_flight: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    _closed: bool = False

    async def submit(self, requests: list[SignUpRequest]) -> list[SignUpAnswer]:
        """The answer to each request, in order, once the batch holding it has committed."""
        if self._closed:
            raise RuntimeError("the sign-up batcher is closed")
        loop = asyncio.get_running_loop()
        pending = [_Pending(r, loop.create_future(), r.cause) for r in requests]
        self._queue.extend(pending)
        self._idle.clear()
        if len(self._flights) < self.max_in_flight and any(
            self._busy.get(r.event_id, 0) < self.depth for r in requests
        ):
            self._changed.set()  # else the next finished batch looks at the queue
        if self._runner is None or self._runner.done():
            # A context of its own: the runner must not carry the first request's trace.
            self._runner = asyncio.create_task(
                self._run(), name="sign-up batcher", context=contextvars.Context()
            )
        return [await p.answer for p in pending]

    @property
    def busy(self) -> bool:
        """More sign-ups wait, or other batches than the one asking are committing."""
        return bool(self._queue) or len(self._flights) > 1

    async def close(self) -> None:
        """Stop taking sign-ups; answer the ones already taken."""
        self._closed = True
        if self._queue or self._flights:
            await self._idle.wait()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    def _take(self) -> tuple[list[_Pending], Flight | None]:
        """The next batch, and its place behind the batches in flight on its events."""
        busy = self._busy
        keys_in_flight = self._keys_in_flight
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        held: set[uuid.UUID] = set()  # an event whose earlier sign-up waits keeps its order
        for pending in self._queue:
            event_id = pending.request.event_id
            key = (event_id, pending.request.applicant.email)
            if (
                len(batch) < self.max_batch
                and event_id not in held
                and busy.get(event_id, 0) < self.depth
                and key not in keys_in_flight
            ):
                batch.append(pending)
            else:
                held.add(event_id)
                rest.append(pending)
        self._queue = rest
        if not batch:
            return batch, None
        events = frozenset(p.request.event_id for p in batch)
        flight = Flight(
            events=events,
            keys=frozenset((p.request.event_id, p.request.applicant.email) for p in batch),
            ahead=tuple(f for f in self._flights.values() if f.events & events),
        )
        return batch, flight

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            while self._queue and len(self._flights) < self.max_in_flight:
                batch, flight = self._take()
                if flight is None:
                    break  # what waits is for events or people already in flight
                task = asyncio.create_task(self._commit(batch, flight))
                self._flights[task] = flight
                for event_id in flight.events:
                    self._busy[event_id] = self._busy.get(event_id, 0) + 1
                self._keys_in_flight |= flight.keys
                task.add_done_callback(self._finished)

    async def _one_by_one(self, batch: list[_Pending], flight: Flight) -> list[SignUpAnswer]:
        """Commit each sign-up alone, so one whose data the database refuses fails alone."""
        flight.planned.clear()
        flight.stored.clear()
        await flight.ahead_done()
        answers: list[SignUpAnswer] = []
        for pending in batch:
            try:
                [answer] = await self.commit([pending.request], flight, True)
            except Exception as exc:
                answer = exc
            answers.append(answer)
        return answers

    def _finished(self, task: asyncio.Task[None]) -> None:
        flight = self._flights.pop(task)
        flight.finish()
        for event_id in flight.events:
            if self._busy[event_id] == 1:
                del self._busy[event_id]
            else:
                self._busy[event_id] -= 1
        self._keys_in_flight -= flight.keys
        self._changed.set()
        if not self._queue and not self._flights:
            self._idle.set()

    async def _commit(self, batch: list[_Pending], flight: Flight) -> None:
        answers: list[SignUpAnswer] | None = None
        failure: Exception | None = None
        links = [trace.Link(p.span) for p in batch if p.span.is_valid]
        with _tracer.start_as_current_span(
            "sign-up batch", links=links[:128], attributes={"sign_ups": len(batch)}
        ):
            locked = False
            for attempt in range(1, self.attempts + 1):
                try:
                    answers = await self.commit([p.request for p in batch], flight, locked)
                    break
                except _ONE_REQUEST_ERRORS as exc:
                    if len(batch) == 1:
                        failure = exc
                        break
                    log.warning("sign-up batch split after %r", exc)
                    answers = await self._one_by_one(batch, flight)
                    break
                except (
                    asyncpg.DeadlockDetectedError,
                    asyncpg.SerializationError,
                    repository.SeatCountsChanged,
                ) as exc:
                    log.info("sign-up batch decided again (attempt %d): %r", attempt, exc)
                    failure = exc
                    # Again under the rows' lock, once the batches ahead have finished;
                    # batches behind wait for the new decision.
                    flight.planned.clear()
                    flight.stored.clear()
                    await flight.ahead_done()
                    locked = True
                except Exception as exc:
                    failure = exc
                    break
        if answers is None:
            flight.after = {}  # nothing of this batch stands: those behind read the rows
        for index, pending in enumerate(batch):
            if pending.answer.done():
                continue  # the caller went away; the registration stands
            if answers is not None:
                pending.answer.set_result(answers[index])
            else:
                assert failure is not None
                pending.answer.set_exception(failure)


@dataclass
class RegistrationsService:
    pool: asyncpg.Pool
    schema: str
    links: PersonalLinks
    clock: Clock = utc_now
    max_in_flight: int = 4
    # A registration is told "you were already signed up" at most once per this interval.
    repeat_notice_interval: timedelta = timedelta(minutes=10)
    batcher: SignUpBatcher = field(init=False)
    # Work after a sign-up's answer (bookings, repeat notices); awaited on close.
    _follow_ups: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    # Connections kept between sign-up batches while more keep coming: a pool release resets
    # the session, one more round trip (and four statements) per batch.
    _kept: list[asyncpg.Connection] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.batcher = SignUpBatcher(self._commit_sign_ups, max_in_flight=self.max_in_flight)

    async def close(self) -> None:
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

    # -- personal links --------------------------------------------------------------------

    def manage_token(self, registration_id: uuid.UUID) -> str:
        return self.links.manage_token(registration_id)

    def manage_url(self, registration_id: uuid.UUID) -> str:
        return self.links.manage(registration_id)

    def registration_for_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.MANAGE, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    def check_in_url(self, registration_id: uuid.UUID) -> str:
        """What the QR code on the confirmation holds: an organiser opens it on a phone."""
        return self.links.check_in(registration_id)

    def registration_for_check_in_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.CHECK_IN, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    def join_url(self, registration: Registration, terms: EventTerms) -> str | None:
        """The personal watch link of a webinar: its signed viewer id ties watching to the
        sign-up."""
        if terms.kind != domain.WEBINAR:
            return None
        return self.links.watch(registration.event_id, registration.viewer_id)

    # -- signing up ------------------------------------------------------------------------

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
                messages: list[Message] = []
                for registration in due:
                    terms = await repository.get_terms(conn, registration.event_id)
                    assert terms is not None
                    messages.append(
                        RegistrationSignUpRepeated.create(
                            registration=self._view(registration, terms)
                        )
                    )
                await outbox.enqueue_many(conn, messages, schema=self.schema)
        except Exception:
            # The sign-ups themselves stand; only the booker's list or a courtesy e-mail is
            # missing, and the person can sign up again for it.
            log.exception("after-sign-up work failed (booking %s)", group_id)

    async def _commit_sign_ups(
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
            message_ids = {registration_id: message_id for registration_id, message_id, _ in ids}
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
                for (index, request, status), (registration_id, _, viewer_id) in zip(
                    new, ids, strict=True
                )
            }
            tokens = {d.id: self.manage_token(d.id) for d in drafts.values()}
            messages: list[Message] = []
            causes: list[trace.SpanContext] = []
            for index, draft in drafts.items():
                causes.append(requests[index].cause)
                view = self._view(draft, seats[draft.event_id].terms, token=tokens[draft.id])
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
            queued = self._outbox_rows(messages, causes)
            if flight is not None and pipelined:
                await flight.may_store()
            try:
                stored = await repository.store_batch(
                    conn, seats, changes, list(drafts.values()), queued
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
                    self.manage_token(found.id),
                    join_url=self.join_url(found, seats[found.event_id].terms),
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
                    self.join_url(registration, seats[registration.event_id].terms),
                )
            answers.append(answer)
        return answers

    # -- cancelling and promoting ----------------------------------------------------------

    async def cancel(self, registration_id: uuid.UUID, reason: str = "") -> Registration:
        """Cancel (or leave the waiting list); a freed seat goes to the first on the waiting
        list in the same commit."""
        async with self.pool.acquire() as conn, conn.transaction():
            registration = await repository.get_registration(conn, registration_id, for_update=True)
            if registration is None:
                raise RegistrationUnknown()
            if registration.status == "cancelled":
                return registration
            terms = await repository.get_terms(conn, registration.event_id, for_update=True)
            assert terms is not None
            await repository.mark_cancelled(conn, registration, reason)
            messages: list[Message] = [
                RegistrationCancelled.create(
                    registration=self._view(registration, terms, status="cancelled"),
                    previous_status=registration.status,
                    reason=reason,
                )
            ]
            if registration.status == "confirmed":
                messages += await self._promote(conn, terms)
            await outbox.enqueue_many(conn, messages, schema=self.schema)
        return registration

    async def _promote(self, conn: asyncpg.Connection, terms: EventTerms) -> list[Message]:
        """Give free seats to the waiting list, first come first served."""
        promoted: list[Message] = []
        while True:
            candidate = await repository.first_waitlisted(conn, terms.id)
            if candidate is None or not await repository.take_seat(conn, terms.id):
                return promoted
            await repository.mark_promoted(conn, candidate)
            promoted.append(
                RegistrationPromoted.create(
                    registration=self._view(candidate, terms, status="confirmed")
                )
            )

    async def apply_event(self, conn: asyncpg.Connection, event: EventSnapshot) -> None:
        """Follow the events topic (inside the consumer's transaction).

        Cancelled: every registration is cancelled with that reason. Capacity raised: the
        waiting list moves up. Capacity lowered: nobody confirmed loses a seat; new sign-ups
        wait until enough people have cancelled.
        """
        previous = await repository.store_event(conn, event)
        if previous is None:
            return  # an older or repeated revision
        terms = await repository.get_terms(conn, event.event_id)
        assert terms is not None
        messages: list[Message] = []
        if event.status == "cancelled":
            for registration in await repository.cancel_all_active(
                conn, event.event_id, "event_cancelled"
            ):
                messages.append(
                    RegistrationCancelled.create(
                        registration=self._view(registration, terms, status="cancelled"),
                        previous_status=registration.status,
                        reason="event_cancelled",
                    )
                )
        elif event.status in ("published", "live"):
            messages += await self._promote(conn, terms)
        await outbox.enqueue_many(conn, messages, schema=self.schema)

    # -- checking in -----------------------------------------------------------------------

    async def check_in(self, registration_id: uuid.UUID, organiser: str) -> Registration:
        """Check a confirmed person in at a physical meeting; a second check-in changes nothing."""
        async with self.pool.acquire() as conn, conn.transaction():
            registration = await repository.get_registration(conn, registration_id, for_update=True)
            if registration is None:
                raise RegistrationUnknown()
            terms = await repository.get_terms(conn, registration.event_id)
            assert terms is not None
            refusal = domain.check_in_refusal(terms, registration.status)
            if refusal is not None:
                raise CheckInRefused(refusal)
            checked = await repository.mark_checked_in(conn, registration_id, organiser)
            if checked is None:
                return registration
            assert checked.checked_in_at is not None
            await outbox.enqueue(
                conn,
                RegistrationCheckedIn.create(
                    registration=self._view(checked, terms), checked_in_at=checked.checked_in_at
                ),
                schema=self.schema,
            )
        return checked

    # -- privacy ---------------------------------------------------------------------------

    async def person_export(self, email: str) -> dict[str, Any]:
        """Everything this service holds about an email address."""
        address = domain.normalise_email(email)
        async with self.pool.acquire() as conn:
            records = await repository.person_records(conn, address)
        return {"email": address, "exported_at": self.clock(), "registrations": records}

    async def erase_person(self, email: str) -> list[uuid.UUID]:
        """Remove the person's details, keep the counts, and tell every service to erase too.

        ``person.erased`` is published even when nothing is held here: another service (the
        newsletter list, say) may hold the address.
        """
        address = domain.normalise_email(email)
        async with self.pool.acquire() as conn, conn.transaction():
            erased = await repository.erase_person(conn, address)
            await outbox.enqueue(
                conn,
                PersonErased.create(
                    email_sha256=domain.email_digest(address),
                    registration_ids=tuple(erased),
                    erased_at=self.clock(),
                ),
                schema=self.schema,
            )
        return erased

    # -- reading ---------------------------------------------------------------------------

    async def get(self, registration_id: uuid.UUID) -> tuple[Registration, EventTerms]:
        async with self.pool.acquire() as conn:
            registration = await repository.get_registration(conn, registration_id)
            if registration is None:
                raise RegistrationUnknown()
            terms = await repository.get_terms(conn, registration.event_id)
        assert terms is not None
        return registration, terms

    async def booked_colleagues(self, booker_id: uuid.UUID) -> list[Registration]:
        async with self.pool.acquire() as conn:
            return await repository.booked_colleagues(conn, booker_id)

    async def cancel_colleague(self, booker_id: uuid.UUID, colleague_id: uuid.UUID) -> Registration:
        """A booker cancels a colleague they signed up (and only those)."""
        if colleague_id not in {c.id for c in await self.booked_colleagues(booker_id)}:
            raise RegistrationUnknown()
        before, _ = await self.get(colleague_id)
        reason = "left_waitlist" if before.status == "waitlisted" else "cancelled_by_booker"
        return await self.cancel(colleague_id, reason)

    async def waitlist_position(self, registration: Registration) -> int:
        async with self.pool.acquire() as conn:
            return await repository.waitlist_position(conn, registration)

    async def event_terms(self, event_id: uuid.UUID) -> EventTerms:
        async with self.pool.acquire() as conn:
            terms = await repository.get_terms(conn, event_id)
        if terms is None or terms.status == "draft":
            raise EventUnknown()
        return terms

    async def open_events(self) -> list[EventTerms]:
        async with self.pool.acquire() as conn:
            return await repository.open_events(conn, self.clock())

    async def all_events(self) -> list[EventTerms]:
        async with self.pool.acquire() as conn:
            return await repository.events_by_start(conn)

    async def counts(self, event_id: uuid.UUID) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            return await repository.status_counts(conn, event_id)

    async def attendees(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        region_code: str | None = None,
        role: str | None = None,
    ) -> list[Registration]:
        async with self.pool.acquire() as conn:
            return await repository.attendees(
                conn, event_id, status=status, region_code=region_code, role=role
            )

    def _outbox_rows(
        self, messages: list[Message], causes: list[trace.SpanContext]
    ) -> repository.OutboxRows:
        """The batch's messages as ``outbox.enqueue_many`` would write them, for the batch's
        one statement (two round trips fewer while the events' rows are locked).

        Each message carries the trace of the request that caused it (``causes``), so one
        trace runs from a person's sign-up through Kafka to their email; the batch span only
        links to them.
        """
        batch_headers = current_trace_headers()
        cause_headers: dict[tuple[int, int], dict[str, str]] = {}
        rows = repository.OutboxRows([], [], [], [], [], outbox.wakeup_channel(self.schema))
        for message, cause in zip(messages, causes, strict=True):
            if cause.is_valid:
                key = (cause.trace_id, cause.span_id)
                if key not in cause_headers:
                    cause_headers[key] = trace_headers_of(cause)
                trace_headers = cause_headers[key]
            else:
                trace_headers = batch_headers
            row = outbox.outbox_row(message, trace_headers)
            rows.message_ids.append(row.message_id)
            rows.topics.append(row.topic)
            rows.keys.append(row.key)
            rows.headers.append(json.dumps(row.headers))
            rows.payloads.append(row.payload)
        return rows

    def _view(
        self,
        registration: Registration,
        terms: EventTerms,
        status: RegistrationStatus | None = None,
        token: str | None = None,
    ) -> RegistrationView:
        applicant = registration.applicant
        return RegistrationView(
            registration_id=registration.id,
            event_id=registration.event_id,
            status=status or registration.status,
            attendee=Attendee(
                name=applicant.name,
                email=applicant.email,
                organisation=applicant.organisation,
                role=applicant.role,
                region_code=applicant.region_code,
                profiles=applicant.profiles,
            ),
            viewer_id=registration.viewer_id,
            manage_url=self.links.urls.manage_page(token or self.manage_token(registration.id)),
            event_title=terms.title,
            event_starts_at=terms.starts_at,
            event_ends_at=terms.ends_at,
            event_revision=terms.revision,
            join_url=self.join_url(registration, terms),
            newsletter_opt_in=applicant.newsletter,
        )
