"""The organisers' side of mailings: pages to draft, preview, test-send, schedule and follow a
mailing, and the same as a JSON API. Every route needs an organiser (the API: session cookie
or bearer token; the pages: a session, else the login page); page forms carry a
double-submit CSRF token.
"""

import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from sto_notifications import domain, repository
from sto_notifications.adapters.agenda import EventsUnavailable
from sto_notifications.adapters.mime import MESSAGE_ID_DOMAIN
from sto_notifications.adapters.smtp import SendFailure
from sto_notifications.api.deps import MailingsDep
from sto_notifications.api.public import templates
from sto_notifications.domain import Audience, MailingRefused
from sto_notifications.service import DraftInvalid, MailingDraft, MailingService
from stolive_shared.organisers.web import OrganiserDep as Organiser
from stolive_shared.organisers.web import OrganiserPageDep as Page
from stolive_shared.pages import FormPages, base_path
from stolive_shared.programme import PROFILES, ROLES
from stolive_shared.templating import PROGRAMME_TZ
from stolive_shared.web import unprocessable

pages = FormPages(templates, cookie="sto_csrf_organisator")


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


router = APIRouter()

# --- JSON API ---------------------------------------------------------------------------


@router.get("/api/mailings", tags=["mailings"], summary="All mailings, newest first")
async def list_mailings(mailings: MailingsDep, _organiser: Organiser) -> list[dict[str, Any]]:
    return [_public(m) for m in await mailings.all()]


@router.post("/api/mailings", tags=["mailings"], status_code=201, summary="Draft a mailing")
async def create(mailings: MailingsDep, body: MailingIn, organiser: Organiser) -> dict[str, Any]:
    mailing_id = await mailings.create(body.draft(), organiser)
    return _public(await mailings.get(mailing_id))


@router.put("/api/mailings/{mailing_id}", tags=["mailings"], summary="Change a draft")
async def update(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: MailingIn, _o: Organiser
) -> dict[str, Any]:
    await mailings.get(mailing_id)
    await mailings.update(mailing_id, body.draft())
    return _public(await mailings.get(mailing_id))


@router.get("/api/mailings/{mailing_id}", tags=["mailings"], summary="One mailing")
async def get(
    mailings: MailingsDep, mailing_id: uuid.UUID, _organiser: Organiser
) -> dict[str, Any]:
    return _public(await mailings.get(mailing_id))


@router.get(
    "/api/mailings/{mailing_id}/progress",
    tags=["mailings"],
    summary="Live progress: queued, sent, failed, suppressed",
)
async def progress(
    mailings: MailingsDep, mailing_id: uuid.UUID, _organiser: Organiser
) -> dict[str, Any]:
    await mailings.get(mailing_id)
    return await mailings.progress(mailing_id)


@router.get(
    "/api/mailings/{mailing_id}/preview",
    tags=["mailings"],
    response_class=HTMLResponse,
    summary="The mailing as it would go out now",
)
async def preview(
    mailings: MailingsDep, mailing_id: uuid.UUID, _organiser: Organiser
) -> HTMLResponse:
    mailing = await mailings.get(mailing_id)
    try:
        rendered = await mailings.render(mailing, personal=False)
    except EventsUnavailable as exc:
        raise HTTPException(503, "De agenda kan nu niet worden opgehaald") from exc
    return HTMLResponse(rendered.html)


@router.post("/api/mailings/{mailing_id}/test", tags=["mailings"], summary="Send one test")
async def test(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: TestIn, _organiser: Organiser
) -> dict[str, str]:
    await mailings.get(mailing_id)
    try:
        await _send_test(mailings, mailing_id, body.address)
    except DraftInvalid as exc:
        raise unprocessable({"address": _first(exc)}) from exc
    return {"status": "sent", "address": body.address}


@router.post("/api/mailings/{mailing_id}/schedule", tags=["mailings"], summary="Schedule")
async def schedule(
    mailings: MailingsDep, mailing_id: uuid.UUID, body: ScheduleIn, _organiser: Organiser
) -> dict[str, Any]:
    await mailings.get(mailing_id)
    await mailings.schedule(mailing_id, body.send_at)
    return await mailings.progress(mailing_id)


@router.post("/api/mailings/{mailing_id}/unschedule", tags=["mailings"], summary="Back to draft")
async def unschedule(
    mailings: MailingsDep, mailing_id: uuid.UUID, _organiser: Organiser
) -> dict[str, Any]:
    await mailings.get(mailing_id)
    await mailings.unschedule(mailing_id)
    return await mailings.progress(mailing_id)


# --- pages ------------------------------------------------------------------------------


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return pages.render(
        request,
        name,
        status_code,
        statuses=domain.MAILING_STATUSES,
        roles=ROLES,
        profiles=PROFILES,
        audience_kinds=domain.AUDIENCE_KINDS,
        **context,
    )


@router.get("/organisator/mailings", response_class=HTMLResponse, include_in_schema=False)
async def mailings_page(mailings: MailingsDep, request: Request, _organiser: Page) -> HTMLResponse:
    return page(
        request,
        "mailings.html",
        mailings=await mailings.all(),
        subscribers=await mailings.subscriber_counts(),
    )


@router.get("/organisator/mailings/nieuw", response_class=HTMLResponse, include_in_schema=False)
async def new_page(request: Request, _organiser: Page) -> HTMLResponse:
    return page(request, "mailing_form.html", form=_form_values(None), errors={})


@router.get(
    "/organisator/mailings/{mailing_id}/bewerken",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def edit_page(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, _o: Page
) -> HTMLResponse:
    mailing = await mailings.get(mailing_id)
    return page(
        request,
        "mailing_form.html",
        form=_form_values(mailing),
        errors={},
        mailing_id=mailing_id,
    )


@router.post("/organisator/mailings", include_in_schema=False)
async def create_from_form(mailings: MailingsDep, request: Request, organiser: Page) -> Response:
    return await _save(mailings, request, organiser, None)


@router.post("/organisator/mailings/{mailing_id}", include_in_schema=False)
async def update_from_form(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, o: Page
) -> Response:
    await mailings.get(mailing_id)
    return await _save(mailings, request, o, mailing_id)


async def _save(
    mailings: MailingService, request: Request, organiser: str, mailing_id: uuid.UUID | None
) -> Response:
    form = await pages.form(request)
    values = {
        "subject": str(form.get("subject") or ""),
        "body": str(form.get("body") or ""),
        "audience_kind": str(form.get("audience_kind") or "subscribers"),
        "event_id": str(form.get("event_id") or "").strip(),
        "regions": str(form.get("regions") or ""),
        "roles": [str(v) for v in form.getlist("roles")],
        "interests": [str(v) for v in form.getlist("interests")],
        "include_events": bool(form.get("include_events")),
    }
    try:
        draft = _draft_from_form(values)
        if mailing_id is None:
            mailing_id = await mailings.create(draft, organiser)
        else:
            await mailings.update(mailing_id, draft)
    except DraftInvalid as exc:
        return page(
            request,
            "mailing_form.html",
            422,
            form=values,
            errors=exc.problems,
            mailing_id=mailing_id,
        )
    except MailingRefused as exc:
        return await _detail(mailings, request, mailing_id, error=str(exc), status_code=409)
    return RedirectResponse(f"{base_path(request)}/organisator/mailings/{mailing_id}", 303)


async def _detail(
    mailings: MailingService,
    request: Request,
    mailing_id: uuid.UUID | None,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert mailing_id is not None
    mailing = await mailings.get(mailing_id)
    progress = await mailings.progress(mailing_id)
    editable = mailing.status in domain.EDITABLE
    return page(
        request,
        "mailing.html",
        status_code,
        mailing=mailing,
        progress=progress,
        editable=editable,
        audience_size=await mailings.audience_size(mailing_id) if editable else 0,
        send_at=mailing.scheduled_at.astimezone(PROGRAMME_TZ).strftime("%Y-%m-%dT%H:%M")
        if mailing.scheduled_at
        else "",
        notice=notice,
        error=error,
    )


@router.get(
    "/organisator/mailings/{mailing_id}", response_class=HTMLResponse, include_in_schema=False
)
async def detail_page(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, _o: Page
) -> HTMLResponse:
    return await _detail(mailings, request, mailing_id)


@router.get(
    "/organisator/mailings/{mailing_id}/voorbeeld",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def preview_page(
    mailings: MailingsDep, mailing_id: uuid.UUID, _organiser: Page
) -> HTMLResponse:
    return await preview(mailings, mailing_id, _organiser)


@router.post("/organisator/mailings/{mailing_id}/proef", include_in_schema=False)
async def send_proof(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, _o: Page
) -> Response:
    form = await pages.form(request)
    await mailings.get(mailing_id)
    address = str(form.get("address") or "").strip()
    try:
        await _send_test(mailings, mailing_id, address)
    except DraftInvalid as exc:
        return await _detail(mailings, request, mailing_id, error=_first(exc), status_code=422)
    except HTTPException as exc:
        return await _detail(mailings, request, mailing_id, error=str(exc.detail), status_code=422)
    return await _detail(
        mailings, request, mailing_id, notice=f"De proef is verstuurd naar {address}."
    )


@router.post("/organisator/mailings/{mailing_id}/inplannen", include_in_schema=False)
async def schedule_from_form(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, _o: Page
) -> Response:
    form = await pages.form(request)
    await mailings.get(mailing_id)
    text = str(form.get("send_at") or "").strip()
    try:
        # shown and typed in Amsterdam time, stored as UTC
        at = datetime.fromisoformat(text).replace(tzinfo=PROGRAMME_TZ) if text else None
    except ValueError:
        return await _detail(
            mailings, request, mailing_id, error="Kies een geldig moment.", status_code=422
        )
    return await _change_then_show(mailings, request, mailing_id, mailings.schedule(mailing_id, at))


@router.post("/organisator/mailings/{mailing_id}/terugzetten", include_in_schema=False)
async def unschedule_from_form(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, _o: Page
) -> Response:
    await pages.form(request)  # the CSRF check
    await mailings.get(mailing_id)
    return await _change_then_show(mailings, request, mailing_id, mailings.unschedule(mailing_id))


async def _change_then_show(
    mailings: MailingService, request: Request, mailing_id: uuid.UUID, change: Awaitable[None]
) -> Response:
    """The mailing's page after ``change``; the page with the reason when it is refused."""
    try:
        await change
    except MailingRefused as exc:
        return await _detail(mailings, request, mailing_id, error=str(exc), status_code=409)
    return RedirectResponse(f"{base_path(request)}/organisator/mailings/{mailing_id}", 303)


def _first(exc: DraftInvalid) -> str:
    return next(iter(exc.problems.values()))


async def _send_test(mailings: MailingService, mailing_id: uuid.UUID, address: str) -> None:
    """Send one proof; ``DraftInvalid`` for an address we will not send to."""
    try:
        await mailings.send_test(mailing_id, address)
    except EventsUnavailable as exc:
        raise HTTPException(503, "De agenda kan nu niet worden opgehaald") from exc
    except SendFailure as exc:
        raise HTTPException(502, f"De mailserver weigerde de proef: {exc}") from exc


def _draft_from_form(values: dict[str, Any]) -> MailingDraft:
    event_id: uuid.UUID | None = None
    kind = values["audience_kind"]
    if kind not in domain.AUDIENCE_KINDS:
        raise DraftInvalid({"audience": "Kies de ontvangers."})
    if values["event_id"] and kind != "subscribers":
        try:
            event_id = uuid.UUID(values["event_id"])
        except ValueError as exc:
            raise DraftInvalid({"event_id": "Dit is geen geldig evenement-id."}) from exc
    audience = Audience(
        kind=kind,
        regions=tuple(r.strip().upper() for r in values["regions"].split(",") if r.strip()),
        roles=tuple(r for r in values["roles"] if r in ROLES),
        interests=tuple(i for i in values["interests"] if i in PROFILES),
        event_id=event_id,
    )
    return MailingDraft(values["subject"], values["body"], audience, values["include_events"])


def _form_values(mailing: repository.MailingRow | None) -> dict[str, Any]:
    if mailing is None:
        return {
            "subject": "",
            "body": "",
            "audience_kind": "subscribers",
            "event_id": "",
            "regions": "",
            "roles": [],
            "interests": [],
            "include_events": True,
        }
    audience = Audience.from_json(mailing.audience)
    return {
        "subject": mailing.subject,
        "body": mailing.body,
        "audience_kind": audience.kind,
        "event_id": str(audience.event_id or ""),
        "regions": ", ".join(audience.regions),
        "roles": list(audience.roles),
        "interests": list(audience.interests),
        "include_events": mailing.include_events,
    }


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
