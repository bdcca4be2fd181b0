"""The organisers' mailing pages (Dutch): list, draft, preview, test-send, schedule and follow
a mailing. Every page needs ``Capability.MAILINGS`` (a session, else the login page) and keeps
a regional programme leader inside their scope (``mailing_access``), as the JSON API does;
forms carry a double-submit CSRF token.

The form offers its audience as choices, not ids to paste: the events known here (their
copies in ``event_schedule``) that the organiser's scope covers, and the STO regions by name
(from the events service, kept a while; a regional leader sees their own). The console's
"mail these people" links pre-fill it: ``nieuw?evenement=<id>&groep=registered``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sto_notifications import domain, repository
from sto_notifications.api.deps import MailingsDep, PartsDep
from sto_notifications.api.mailing_access import (
    MailerPage,
    check_audience,
    events_in,
    mailing_of,
    record_test,
    record_unscheduled,
    recorder,
    scheduled_recorder,
    scope_of,
)
from sto_notifications.api.organiser import first_problem, preview_of, send_test
from sto_notifications.api.public import templates
from sto_notifications.domain import Audience, MailingRefused
from sto_notifications.service import DraftInvalid, MailingDraft, MailingService
from stolive_shared.organisers.roles import Organiser
from stolive_shared.pages import FormPages, base_path
from stolive_shared.programme import PROFILES, ROLES
from stolive_shared.templating import PROGRAMME_TZ

if TYPE_CHECKING:
    from sto_notifications.bootstrap import Notifications

pages = FormPages(templates, cookie="sto_csrf_organisator")
router = APIRouter(prefix="/organisator/mailings", include_in_schema=False)


def page(
    request: Request, who: Organiser, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return pages.render(
        request,
        name,
        status_code,
        organiser=who,
        statuses=domain.MAILING_STATUSES,
        roles=ROLES,
        profiles=PROFILES,
        audience_kinds=domain.AUDIENCE_KINDS,
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def mailings_page(mailings: MailingsDep, request: Request, who: MailerPage) -> HTMLResponse:
    return page(
        request,
        who,
        "mailings.html",
        mailings=await mailings.all(await scope_of(request, who)),
        subscribers=await mailings.subscriber_counts(),
    )


@router.get("/nieuw", response_class=HTMLResponse)
async def new_page(
    mailings: MailingsDep, parts: PartsDep, request: Request, who: MailerPage
) -> HTMLResponse:
    form = _form_values(None)
    if not who.everywhere:  # a regional leader's newsletter goes to their own regions
        form["regions"] = sorted(who.regions)
    event, group = request.query_params.get("evenement"), request.query_params.get("groep")
    if event and group in domain.AUDIENCE_GROUPS:
        try:
            form["event_id"] = str(uuid.UUID(event))
            form["audience_kind"] = domain.AUDIENCE_GROUPS[group]
        except ValueError:
            pass
    return await _form_page(mailings, parts, request, who, form)


@router.get("/{mailing_id}/bewerken", response_class=HTMLResponse)
async def edit_page(
    mailings: MailingsDep, parts: PartsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> HTMLResponse:
    mailing = await mailing_of(request, mailings, who, mailing_id)
    return await _form_page(
        mailings, parts, request, who, _form_values(mailing), mailing_id=mailing_id
    )


@router.post("")
async def create_from_form(
    mailings: MailingsDep, parts: PartsDep, request: Request, who: MailerPage
) -> Response:
    return await _save(mailings, parts, request, who, None)


@router.post("/{mailing_id}")
async def update_from_form(
    mailings: MailingsDep, parts: PartsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> Response:
    await mailing_of(request, mailings, who, mailing_id)
    return await _save(mailings, parts, request, who, mailing_id)


@router.get("/{mailing_id}", response_class=HTMLResponse)
async def detail_page(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> HTMLResponse:
    await mailing_of(request, mailings, who, mailing_id)
    return await _detail(mailings, request, who, mailing_id)


@router.get("/{mailing_id}/voorbeeld", response_class=HTMLResponse)
async def preview_page(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> HTMLResponse:
    return await preview_of(mailings, await mailing_of(request, mailings, who, mailing_id))


@router.post("/{mailing_id}/proef")
async def send_proof(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> Response:
    form = await pages.form(request)
    mailing = await mailing_of(request, mailings, who, mailing_id)
    address = str(form.get("address") or "").strip()
    try:
        await send_test(mailings, mailing_id, address)
    except DraftInvalid as exc:
        return await _detail(
            mailings, request, who, mailing_id, error=first_problem(exc), status_code=422
        )
    except HTTPException as exc:
        return await _detail(
            mailings, request, who, mailing_id, error=str(exc.detail), status_code=422
        )
    await record_test(request, who, mailing)
    return await _detail(
        mailings, request, who, mailing_id, notice=f"De proef is verstuurd naar {address}."
    )


@router.post("/{mailing_id}/inplannen")
async def schedule_from_form(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> Response:
    form = await pages.form(request)
    mailing = await mailing_of(request, mailings, who, mailing_id)
    text = str(form.get("send_at") or "").strip()
    try:
        # shown and typed in Amsterdam time, stored as UTC
        at = datetime.fromisoformat(text).replace(tzinfo=PROGRAMME_TZ) if text else None
    except ValueError:
        return await _detail(
            mailings, request, who, mailing_id, error="Kies een geldig moment.", status_code=422
        )
    record = scheduled_recorder(request, who, mailing, await mailings.audience_size(mailing_id))
    change = mailings.schedule(mailing_id, at, record)
    return await _change_then_show(mailings, request, who, mailing_id, change)


@router.post("/{mailing_id}/terugzetten")
async def unschedule_from_form(
    mailings: MailingsDep, mailing_id: uuid.UUID, request: Request, who: MailerPage
) -> Response:
    await pages.form(request)  # the CSRF check
    await mailing_of(request, mailings, who, mailing_id)
    answer = await _change_then_show(
        mailings, request, who, mailing_id, mailings.unschedule(mailing_id)
    )
    if answer.status_code < 400:
        await record_unscheduled(request, who, mailing_id)
    return answer


# -- the form -----------------------------------------------------------------------------------


async def _form_page(
    mailings: MailingService,
    parts: Notifications,
    request: Request,
    who: Organiser,
    form: dict[str, Any],
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    mailing_id: uuid.UUID | None = None,
) -> HTMLResponse:
    """The form, with the events and regions this organiser may choose."""
    events = await mailings.event_choices(await events_in(request, who))
    regions = {r["code"]: r["name"] for r in await parts.regions.regions() if "code" in r}
    if not who.everywhere:
        regions = {code: regions.get(code, code) for code in sorted(who.regions)}
    for code in form["regions"]:  # a choice made before, whatever the list says now
        regions.setdefault(code, code)
    return page(
        request,
        who,
        "mailing_form.html",
        status_code,
        form=form,
        errors=errors or {},
        mailing_id=mailing_id,
        events=events,
        event_listed=any(str(e.event_id) == form["event_id"] for e in events),
        region_names=regions,
    )


async def _save(
    mailings: MailingService,
    parts: Notifications,
    request: Request,
    who: Organiser,
    mailing_id: uuid.UUID | None,
) -> Response:
    form = await pages.form(request)
    values = {
        "subject": str(form.get("subject") or ""),
        "body": str(form.get("body") or ""),
        "audience_kind": str(form.get("audience_kind") or "subscribers"),
        "event_id": str(form.get("event_id") or "").strip(),
        "regions": [
            code.strip()
            for value in form.getlist("regions")
            for code in str(value).split(",")
            if code.strip()
        ],
        "roles": [str(v) for v in form.getlist("roles")],
        "interests": [str(v) for v in form.getlist("interests")],
        "include_events": bool(form.get("include_events")),
    }
    try:
        draft = _draft_from_form(values)
        await check_audience(request, who, draft.audience)
        record = recorder(request, who, "mailing_saved", draft.audience)
        if mailing_id is None:
            mailing_id = await mailings.create(draft, who.email, record)
        else:
            await mailings.update(mailing_id, draft, record)
    except DraftInvalid as exc:
        return await _form_page(
            mailings,
            parts,
            request,
            who,
            values,
            status_code=422,
            errors=exc.problems,
            mailing_id=mailing_id,
        )
    except MailingRefused as exc:
        return await _detail(mailings, request, who, mailing_id, error=str(exc), status_code=409)
    return RedirectResponse(f"{base_path(request)}/organisator/mailings/{mailing_id}", 303)


def _draft_from_form(values: dict[str, Any]) -> MailingDraft:
    event_id: uuid.UUID | None = None
    kind = values["audience_kind"]
    if kind not in domain.AUDIENCE_KINDS:
        raise DraftInvalid({"audience": "Kies de ontvangers."})
    if values["event_id"] and kind != "subscribers":
        try:
            event_id = uuid.UUID(values["event_id"])
        except ValueError as exc:
            raise DraftInvalid({"event_id": "Kies een evenement uit de lijst."}) from exc
    audience = Audience(
        kind=kind,
        regions=tuple(values["regions"]) if kind == "subscribers" else (),
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
            "regions": [],
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
        "regions": list(audience.regions),
        "roles": list(audience.roles),
        "interests": list(audience.interests),
        "include_events": mailing.include_events,
    }


# -- one mailing --------------------------------------------------------------------------------


async def _detail(
    mailings: MailingService,
    request: Request,
    who: Organiser,
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
        who,
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


async def _change_then_show(
    mailings: MailingService,
    request: Request,
    who: Organiser,
    mailing_id: uuid.UUID,
    change: Awaitable[None],
) -> Response:
    """The mailing's page after ``change``; the page with the reason when it is refused."""
    try:
        await change
    except MailingRefused as exc:
        return await _detail(mailings, request, who, mailing_id, error=str(exc), status_code=409)
    return RedirectResponse(f"{base_path(request)}/organisator/mailings/{mailing_id}", 303)
