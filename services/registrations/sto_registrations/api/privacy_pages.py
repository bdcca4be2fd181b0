"""A person's own data (AVG), from their personal links (Dutch pages).

The manage page asks for it: the link to the data goes to the registration's own address
(``registration.export_requested``), valid for a day. That page shows everything the platform
holds about the address, from every service, offers it as one JSON file, and lets the person
have all of it erased. Both links are personal: only the mailbox they were sent to has them.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response

from sto_registrations.api.deps import ServiceDep
from sto_registrations.api.pages import (
    STATUS_LABELS,
    csrf_ok,
    expired_form,
    message_page,
    render,
)
from sto_registrations.service import RegistrationsService, RegistrationUnknown
from stolive_shared.internal import ServiceUnavailable
from stolive_shared.organisers.web import PUBLIC

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])

# The states the services record, as the person reads them.
LABELS = {
    "registration": STATUS_LABELS,
    "subscription": {
        "pending": "nog niet bevestigd",
        "confirmed": "bevestigd",
        "unsubscribed": "afgemeld",
    },
    "email": {
        "queued": "nog te versturen",
        "sending": "wordt verstuurd",
        "sent": "verstuurd",
        "failed": "niet aangekomen",
        "suppressed": "niet verstuurd",
    },
}
_GONE = "Deze link is niet (meer) geldig, of er zijn geen gegevens meer om te tonen."
_LATER = "We kunnen je gegevens nu niet allemaal ophalen. Probeer het over een paar minuten."


@router.post("/r/{token}/gegevens")
async def request_export(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        await service.request_export(service.registration_for_token(token))
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", "Deze link is niet (meer) geldig.", 404)
    return message_page(
        request,
        "Kijk in je mail",
        "We sturen een link naar je gegevens naar het e-mailadres van deze aanmelding. "
        "De link werkt een dag.",
        200,
    )


async def _export(service: RegistrationsService, token: str) -> dict[str, Any]:
    return await service.full_export(
        await service.address_of(service.registration_for_export_token(token))
    )


@router.get("/gegevens/{token}", response_class=HTMLResponse)
async def my_data(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    try:
        export = await _export(service, token)
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", _GONE, 404)
    except ServiceUnavailable:
        return message_page(request, "Even geduld", _LATER, 503)
    return render(request, "my_data.html", export=export, token=token, labels=LABELS)


@router.get("/gegevens/{token}/gegevens.json")
async def my_data_file(token: str, service: ServiceDep) -> Response:
    try:
        export = await _export(service, token)
    except RegistrationUnknown:
        return Response("Niet gevonden", status_code=404, media_type="text/plain")
    except ServiceUnavailable:
        return Response(_LATER, status_code=503, media_type="text/plain")
    return Response(
        json.dumps(jsonable_encoder(export), ensure_ascii=False, indent=2),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="mijn-gegevens-sto.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/gegevens/{token}/wissen")
async def erase_me(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return expired_form(request)
    try:
        address = await service.address_of(service.registration_for_export_token(token))
    except RegistrationUnknown:
        return message_page(request, "Niet gevonden", _GONE, 404)
    if form.get("zeker") != "ja":
        try:
            export = await service.full_export(address)
        except ServiceUnavailable:
            return message_page(request, "Even geduld", _LATER, 503)
        return render(
            request,
            "my_data.html",
            422,
            export=export,
            token=token,
            labels=LABELS,
            error="Vink aan dat je echt al je gegevens wilt laten wissen.",
        )
    await service.erase_person(address)
    return message_page(
        request,
        "Je gegevens zijn gewist",
        "We hebben je naam, e-mailadres en school verwijderd uit al onze gegevens, ook uit de "
        "nieuwsbrief en de kijkcijfers. Alleen de aantallen blijven over.",
        200,
    )
