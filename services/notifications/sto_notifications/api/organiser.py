"""The organisers' mailings as a JSON API: draft, preview, test-send, schedule and follow a
mailing (the pages are ``organiser_pages``). Every route needs ``Capability.MAILINGS``, by
session cookie or bearer token, and a regional programme leader's mailings stay inside their
scope (``mailing_access``). Audiences name events and regions by id and code.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime, BaseModel, Field

from sto_notifications import repository
from sto_notifications.adapters.agenda import EventsUnavailable
from sto_notifications.adapters.mime import MESSAGE_ID_DOMAIN
from sto_notifications.adapters.smtp import SendFailure
from sto_notifications.api.deps import MailingsDep
from sto_notifications.api.mailing_access import (
    Mailer,
    check_audience,
    mailing_of,
    record_test,
    record_unscheduled,
    recorder,
    scheduled_recorder,
    scope_of,
)
from sto_notifications.domain import Audience
from sto_notifications.service import DraftInvalid, MailingDraft, MailingService
from stolive_shared.web import unprocessable


class AudienceIn(BaseModel):
    kind: Literal["subscribers", "registrants", "attendees", "no_shows"] = "subscribers"
    regions: list[str] = Field(default_factory=list, max_length=50)
    roles: list[str] = Field(default_factory=list, max_length=20)
    interests: list[str] = Field(default_factory=list, max_length=20)
    event_id: uuid.UUID | None = None

    def domain(self) -> Audience:
        return Audience(
            kind=self.kind,
            regions=tuple(self.regions),
            roles=tuple(self.roles),
            interests=tuple(self.interests),
            event_id=self.event_id,
        )


class MailingIn(BaseModel):
    subject: str = Field(max_length=200)
    body: str = Field(max_length=50_000)
    audience: AudienceIn = Field(default_factory=AudienceIn)
    include_events: bool = False

    def draft(self) -> MailingDraft:
        return MailingDraft(self.subject, self.body, self.audience.domain(), self.include_events)


class TestIn(BaseModel):
    address: str = Field(max_length=254)


class ScheduleIn(BaseModel):
    send_at: AwareDatetime | None = None


router = APIRouter(prefix="/api/mailings", tags=["mailings"])


@router.get("", summary="The mailings in the organiser's scope, newest first")
async def list_mailings(
    mailings: MailingsDep, request: Request, who: Mailer
) -> list[dict[str, Any]]:
    return [_public(m) for m in await mailings.all(await scope_of(request, who))]


@router.post("", status_code=201, summary="Draft a mailing")
async def create(
    mailings: MailingsDep, body: MailingIn, request: Request, who: Mailer
) -> dict[str, Any]:
    draft = body.draft()
    await check_audience(request, who, draft.audience)
    mailing_id = await mailings.create(
        draft, who.email, recorder(request, who, "mailing_saved", draft.audience)
    )
    return _public(await mailings.get(mailing_id))


@router.put("/{mailing_id}", summary="Change a draft")
async def update(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: MailingIn, request: Request, who: Mailer
) -> dict[str, Any]:
    await mailing_of(request, mailings, who, mailing_id)
    draft = body.draft()
    await check_audience(request, who, draft.audience)
    await mailings.update(
        mailing_id, draft, recorder(request, who, "mailing_saved", draft.audience)
    )
    return _public(await mailings.get(mailing_id))


@router.get("/{mailing_id}", summary="One mailing")
async def get(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: Mailer
) -> dict[str, Any]:
    return _public(await mailing_of(request, mailings, who, mailing_id))


@router.get("/{mailing_id}/progress", summary="Live progress: queued, sent, failed, suppressed")
async def progress(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: Mailer
) -> dict[str, Any]:
    await mailing_of(request, mailings, who, mailing_id)
    return await mailings.progress(mailing_id)


@router.get(
    "/{mailing_id}/preview",
    response_class=HTMLResponse,
    summary="The mailing as it would go out now",
)
async def preview(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: Mailer
) -> HTMLResponse:
    return await preview_of(mailings, await mailing_of(request, mailings, who, mailing_id))


@router.post("/{mailing_id}/test", summary="Send one test")
async def test(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: TestIn, request: Request, who: Mailer
) -> dict[str, str]:
    mailing = await mailing_of(request, mailings, who, mailing_id)
    try:
        await send_test(mailings, mailing_id, body.address)
    except DraftInvalid as exc:
        raise unprocessable({"address": first_problem(exc)}) from exc
    await record_test(request, who, mailing)
    return {"status": "sent", "address": body.address}


@router.post("/{mailing_id}/schedule", summary="Schedule (no time: now)")
async def schedule(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: ScheduleIn, request: Request, who: Mailer
) -> dict[str, Any]:
    mailing = await mailing_of(request, mailings, who, mailing_id)
    recipients = await mailings.audience_size(mailing_id)
    await mailings.schedule(
        mailing_id, body.send_at, scheduled_recorder(request, who, mailing, recipients)
    )
    return await mailings.progress(mailing_id)


@router.post("/{mailing_id}/unschedule", summary="Back to draft")
async def unschedule(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: Mailer
) -> dict[str, Any]:
    await mailing_of(request, mailings, who, mailing_id)
    await mailings.unschedule(mailing_id)
    await record_unscheduled(request, who, mailing_id)
    return await mailings.progress(mailing_id)


# -- shared with the pages ----------------------------------------------------------------------


async def preview_of(mailings: MailingService, mailing: repository.MailingRow) -> HTMLResponse:
    try:
        rendered = await mailings.render(mailing, personal=False)
    except EventsUnavailable as exc:
        raise HTTPException(503, "De agenda kan nu niet worden opgehaald") from exc
    return HTMLResponse(rendered.html)


def first_problem(exc: DraftInvalid) -> str:
    return next(iter(exc.problems.values()))


async def send_test(mailings: MailingService, mailing_id: uuid.UUID, address: str) -> None:
    """Send one proof; ``DraftInvalid`` for an address we will not send to."""
    try:
        await mailings.send_test(mailing_id, address)
    except EventsUnavailable as exc:
        raise HTTPException(503, "De agenda kan nu niet worden opgehaald") from exc
    except SendFailure as exc:
        raise HTTPException(502, f"De mailserver weigerde de proef: {exc}") from exc


def _public(mailing: repository.MailingRow) -> dict[str, Any]:
    return {
        "id": str(mailing.id),
        "subject": mailing.subject,
        "body": mailing.body,
        "audience": mailing.audience,
        "include_events": mailing.include_events,
        "status": mailing.status,
        "scheduled_at": mailing.scheduled_at.isoformat() if mailing.scheduled_at else None,
        "started_at": mailing.started_at.isoformat() if mailing.started_at else None,
        "finished_at": mailing.finished_at.isoformat() if mailing.finished_at else None,
        "created_by": mailing.created_by,
        "list_id": f"newsletter.{MESSAGE_ID_DOMAIN}",
    }
