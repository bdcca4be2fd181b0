"""The programme team's page for dead letters ("Onbestelbare berichten").

What ``stolive dlq`` does in a shell, on a page: the open letters per topic with their error
and where they came from, and per letter a replay to its original topic or a discard, each
audited. The letter's value is never shown: it may hold sealed personal data. The plumbing is
the shared ``DeadLetters`` (``stolive_shared.messaging.dead_letters``), built once in ``app.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sto_events.api.rendering import pages
from stolive_shared.db import CONNECTION_ERRORS
from stolive_shared.messaging.dead_letters import (
    DEAD_LETTER_TOPICS,
    DeadLetter,
    DeadLetterError,
    DeadLetters,
    parse_id,
)
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs_page

log = logging.getLogger(__name__)
router = APIRouter(prefix="/organiser", include_in_schema=False)

# The programme team only: what a replay sets off may touch every service's data.
Operator = Annotated[Organiser, needs_page(Capability.OPERATIONS)]
NOTE_MAX = 500
UNREADABLE = (KafkaError, TimeoutError, *CONNECTION_ERRORS)
BROKER_AWAY = (
    "De onbestelbare berichten konden nu niet worden gelezen: de berichtenserver of de database "
    "antwoordt niet. Probeer het over een paar minuten opnieuw."
)


def dead_letters_of(request: Request) -> DeadLetters:
    letters: DeadLetters = request.app.state.dead_letters
    return letters


def _row(letter: DeadLetter) -> dict[str, Any]:
    """What the page shows of a letter: ids and the error, never the value."""
    return {
        "id": letter.id,
        "at": datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC),
        "error_type": letter.error_type,
        "error": letter.error,
        "source_topic": letter.source_topic,
        "source_partition": letter.header("dlq.source_partition") or "",
        "source_offset": letter.header("dlq.source_offset") or "",
        "consumer": letter.header("dlq.consumer") or "",
        "replayable": letter.value is not None,
    }


async def _page(
    request: Request,
    who: Organiser,
    *,
    status_code: int = 200,
    notice: str = "",
    errors: Mapping[str, str] | None = None,
    letters: list[DeadLetter] | None = None,
) -> HTMLResponse:
    unreadable = ""
    if letters is None:
        try:
            letters = await dead_letters_of(request).open()
        except UNREADABLE as exc:
            log.warning("dead letters not read for the page: %r", exc)
            letters, unreadable, status_code = [], BROKER_AWAY, 503
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for letter in letters:
        by_topic.setdefault(letter.source_topic, []).append(_row(letter))
    return pages.render(
        request,
        "organiser/dead_letters.html",
        status_code,
        organiser=who,
        by_topic=by_topic,
        total=len(letters),
        notice=notice,
        errors=errors or {},
        unreadable=unreadable,
        note_max=NOTE_MAX,
    )


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(request: Request, who: Operator) -> Response:
    return await _page(request, who)


def _problems(letter_id: str, note: str) -> dict[str, str]:
    """Dutch field messages for a form that cannot be what the page sent."""
    problems: dict[str, str] = {}
    try:
        topic, _partition, _offset = parse_id(letter_id)
    except DeadLetterError:
        topic = ""
    if topic not in DEAD_LETTER_TOPICS:
        problems["id"] = "Dit is geen kenmerk van een onbestelbaar bericht."
    if len(note) > NOTE_MAX:
        problems["note"] = f"Een notitie is hoogstens {NOTE_MAX} tekens lang."
    return problems


async def _act(request: Request, who: Organiser, action: str) -> Response:
    """Replay or discard the letter the form names, audit it, and answer with the page."""
    form = await pages.form(request)
    letter_id = str(form.get("id", "")).strip()
    note = str(form.get("notitie", "")).strip()
    if problems := _problems(letter_id, note):
        return await _page(request, who, status_code=422, errors=problems)
    letters = dead_letters_of(request)
    detail: dict[str, Any] = {"note": bool(note)}
    try:
        if action == "dead_letter_replayed":
            partition, offset = await letters.replay(letter_id, by=who.email, note=note or None)
            detail |= {"replayed_to": f"{partition}@{offset}"}
            notice = (
                f"Bericht {letter_id} is opnieuw aangeboden; de dienst die het niet kon "
                "verwerken, probeert het nu nog eens."
            )
        else:
            await letters.discard(letter_id, by=who.email, note=note or None)
            notice = f"Bericht {letter_id} is afgehandeld zonder het opnieuw aan te bieden."
    except DeadLetterError:
        return await _refused(request, who, letter_id)
    except UNREADABLE as exc:
        log.warning("dead letter %s not handled: %r", letter_id, exc)
        return await _page(request, who, status_code=503, errors={"form": BROKER_AWAY})
    await access_of(request).audit.record(
        who, action, subject=f"dead-letter:{letter_id}", detail=detail
    )
    return await _page(request, who, notice=notice)


async def _refused(request: Request, who: Organiser, letter_id: str) -> Response:
    """409: the letter was handled meanwhile (or is gone), or has no value left to replay."""
    try:
        letters = await dead_letters_of(request).open()
    except UNREADABLE:
        letters = None
    still_open = letters is not None and any(x.id == letter_id for x in letters)
    if still_open:
        error = (
            f"Bericht {letter_id} was te groot om te bewaren en kan niet opnieuw worden "
            "aangeboden. Handel het af zonder opnieuw aanbieden."
        )
    else:
        error = f"Bericht {letter_id} is al afgehandeld of bestaat niet meer."
    return await _page(request, who, status_code=409, errors={"form": error}, letters=letters)


@router.post("/dead-letters/opnieuw-aanbieden", response_class=HTMLResponse)
async def replay_dead_letter(request: Request, who: Operator) -> Response:
    return await _act(request, who, "dead_letter_replayed")


@router.post("/dead-letters/afhandelen", response_class=HTMLResponse)
async def discard_dead_letter(request: Request, who: Operator) -> Response:
    return await _act(request, who, "dead_letter_discarded")
