"""Group commit for sign-ups: the engine that makes a rush of sign-ups a few commits.

The sign-ups that arrive while batches commit form the next batch; each caller is answered
once the batch holding its sign-up has committed. A batch is decided and stored by the
``commit`` the sign-up use case gives (``sign_ups.SignUps``), so this module knows nothing of
SQL: only of batches, their order per event, and of batches in flight on the same events
(pipelined, see ``Flight``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from opentelemetry import trace

from sto_registrations import domain
from sto_registrations.domain import Applicant

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

A = TypeVar("A")  # what a committed sign-up is answered with


@dataclass(frozen=True)
class SignUpRequest:
    event_id: uuid.UUID
    applicant: Applicant  # normalised
    group_id: uuid.UUID | None = None
    # The request's span: its messages continue that trace, whichever batch carries them.
    cause: trace.SpanContext = field(default=trace.INVALID_SPAN_CONTEXT, compare=False)


@dataclass
class _Pending(Generic[A]):
    request: SignUpRequest
    answer: asyncio.Future[A | Exception]
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
class SignUpBatcher(Generic[A]):
    """Group commit for sign-ups: whatever arrives while batches commit goes in the next.

    No timer: under light load a batch is one sign-up and is committed at once; under heavy
    load batches grow by themselves, so the commits per second stay few. Up to
    ``max_in_flight`` batches commit at once, at most ``depth`` of them for the same event
    (pipelined, see ``Flight``); one person's sign-up for an event is never in two batches at
    once. Sign-ups for one event keep their arrival order.
    """

    # Decides and stores one batch; ``locked``: decide under the events' rows' lock.
    commit: Callable[[list[SignUpRequest], Flight, bool], Awaitable[list[A | Exception]]]
    # Errors of one request's data: the batch is split, so only that sign-up fails.
    split_on: tuple[type[Exception], ...] = ()
    # Errors that mean "the rows changed under the decision": decided again, locked.
    retry_on: tuple[type[Exception], ...] = ()
    max_batch: int = 256
    max_in_flight: int = 4
    depth: int = 3
    attempts: int = 4
    _queue: list[_Pending[A]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None
    _flights: dict[asyncio.Task[None], Flight] = field(default_factory=dict)
    # Kept as flights start and finish (not recounted per sign-up): batches in flight per
    # event, and the (event, person) keys they hold.
    _busy: dict[uuid.UUID, int] = field(default_factory=dict)
    _keys_in_flight: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    _closed: bool = False

    async def submit(self, requests: list[SignUpRequest]) -> list[A | Exception]:
        """The answer to each request, in order, once the batch holding it has committed."""
        if self._closed:
            raise RuntimeError("the sign-up batcher is closed")
        loop = asyncio.get_running_loop()
        pending = [_Pending[A](r, loop.create_future(), r.cause) for r in requests]
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

    def _take(self) -> tuple[list[_Pending[A]], Flight | None]:
        """The next batch, and its place behind the batches in flight on its events."""
        busy = self._busy
        keys_in_flight = self._keys_in_flight
        batch: list[_Pending[A]] = []
        rest: list[_Pending[A]] = []
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

    async def _one_by_one(self, batch: list[_Pending[A]], flight: Flight) -> list[A | Exception]:
        """Commit each sign-up alone, so one whose data the database refuses fails alone."""
        flight.planned.clear()
        flight.stored.clear()
        await flight.ahead_done()
        answers: list[A | Exception] = []
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

    async def _commit(self, batch: list[_Pending[A]], flight: Flight) -> None:
        answers: list[A | Exception] | None = None
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
                except self.split_on as exc:
                    if len(batch) == 1:
                        failure = exc
                        break
                    log.warning("sign-up batch split after %r", exc)
                    answers = await self._one_by_one(batch, flight)
                    break
                except self.retry_on as exc:
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
