"""Whose mailing is whose: the scope checks the mailing pages and API share, and the audit
rows they leave.

Every mailing route needs ``Capability.MAILINGS`` (the programme team and regional programme
leaders). A regional leader's mailing must stay inside their scope, checked on the audience
asked for and on the one a stored mailing already has:
- the people of one event (registrants, attendees, no-shows): an event of their regions;
- subscribers: of their own regions only, at least one; "all subscribers" is national.
A refusal is a 403 with a ``denied`` row in the audit log (``OrganiserAccess``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import Request

from sto_notifications import repository
from sto_notifications.domain import Audience
from sto_notifications.service import MailingService
from sto_notifications.service.mailings import Recorder
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import access_of, needs, needs_page

Mailer = Annotated[Organiser, needs(Capability.MAILINGS)]
MailerPage = Annotated[Organiser, needs_page(Capability.MAILINGS)]


async def check_audience(request: Request, who: Organiser, audience: Audience) -> None:
    """403 (and an audit row) unless ``who`` may mail this audience."""
    if who.everywhere:
        return
    access = access_of(request)
    if audience.event_id is not None:
        await access.check_event(request, who, audience.event_id)
    if audience.kind == "subscribers":
        await access.check_regions(request, who, audience.regions)


async def mailing_of(
    request: Request, mailings: MailingService, who: Organiser, mailing_id: uuid.UUID
) -> repository.MailingRow:
    """The mailing (404 if unknown), once its audience is in ``who``'s scope (else 403)."""
    mailing = await mailings.get(mailing_id)
    await check_audience(request, who, Audience.from_json(mailing.audience))
    return mailing


async def scope_of(request: Request, who: Organiser) -> repository.MailingScope | None:
    """The mailings ``who`` may see in lists: None for all of them."""
    if who.everywhere:
        return None
    events = await access_of(request).scope.events_in(who)
    return repository.MailingScope(events=events or frozenset(), regions=who.regions)


async def events_in(request: Request, who: Organiser) -> frozenset[uuid.UUID] | None:
    """The events ``who`` may mail about (None: every event)."""
    return await access_of(request).scope.events_in(who)


def recorder(
    request: Request, who: Organiser, action: str, audience: Audience, **detail: Any
) -> Recorder:
    """The audit row of a mailing action, written in the action's transaction. The detail
    names the audience by its filters and ids, never by an address."""

    async def record(conn: asyncpg.Connection, mailing_id: uuid.UUID) -> None:
        await access_of(request).audit.record(
            who,
            action,
            event_id=audience.event_id,
            subject=f"mailing:{mailing_id}",
            detail={"audience": audience.summary(), **detail},
            conn=conn,
        )

    return record


async def record_test(request: Request, who: Organiser, mailing: repository.MailingRow) -> None:
    """A proof went out (to an organiser's own address, which the row leaves out)."""
    audience = Audience.from_json(mailing.audience)
    await access_of(request).audit.record(
        who,
        "mailing_test",
        event_id=audience.event_id,
        subject=f"mailing:{mailing.id}",
        detail={"audience": audience.summary()},
    )


def scheduled_recorder(
    request: Request, who: Organiser, mailing: repository.MailingRow, recipients: int | None
) -> Recorder:
    detail: dict[str, Any] = {} if recipients is None else {"recipients": recipients}
    return recorder(
        request, who, "mailing_scheduled", Audience.from_json(mailing.audience), **detail
    )


async def record_unscheduled(request: Request, who: Organiser, mailing_id: uuid.UUID) -> None:
    """A scheduled mailing taken back to draft."""
    await access_of(request).audit.record(
        who, "mailing_unscheduled", subject=f"mailing:{mailing_id}"
    )
