"""What the platform's other services may ask of this one (never through the public address,
``stolive_shared.internal``): everything held about one person, for their export; and the
organiser's sign-in e-mail, for the events service's login page."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from sto_notifications.api.deps import PartsDep
from stolive_shared.internal import INTERNAL
from stolive_shared.organisers.web import access_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[INTERNAL])


@router.get("/people/{person_key}")
async def person(
    person_key: str,
    parts: PartsDep,
    registration_id: Annotated[list[uuid.UUID], Query(max_length=500)] = [],  # noqa: B006
) -> dict[str, Any]:
    return await parts.history.about_person(person_key, registration_id)


class SignInRequest(BaseModel):
    email: str = Field(max_length=254)


@router.post("/organiser-sign-in", status_code=202)
async def organiser_sign_in(
    body: SignInRequest, parts: PartsDep, request: Request
) -> dict[str, bool]:
    """A one-time sign-in link to the account with this address, if there is one. The
    answer has the same shape either way; the caller tells the visitor nothing about it."""
    access = access_of(request)
    link = await access.store.sign_in_link(body.email)
    if link is None:
        log.info("sign-in link asked for an address without an account")
        return {"queued": False}
    who, secret = link

    async def record(conn: asyncpg.Connection) -> None:
        await access.audit.record(who, "sign_in_link_sent", conn=conn)

    queued = await parts.sign_in.send_link(who, secret, access.store.sign_in_valid, record)
    log.info("sign-in link queued", extra={"ctx_account": who.account_id})
    return {"queued": queued}
