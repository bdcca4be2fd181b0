"""School sites: a public search (the sign-up form offers the school), and the programme
team's import from CSV, by API and on a page, like the regions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from sto_events.api.deps import ServiceDep
from sto_events.api.rendering import pages
from sto_events.schools import School, SchoolImportError, parse_schools_csv
from stolive_shared.organisers.roles import Capability, Organiser
from stolive_shared.organisers.web import PUBLIC, needs, needs_page
from stolive_shared.pages import base_path

router = APIRouter(prefix="/api/schools", tags=["schools"])
pages_router = APIRouter(prefix="/organiser/scholen", include_in_schema=False)
MAX_CSV = 2_000_000


class SchoolPublic(BaseModel):
    code: str = Field(description="BRIN number and vestigingsnummer, e.g. 12AB00")
    name: str
    place: str
    region_code: str | None
    label: str = Field(description="How forms name it: 'Name (Place)'")

    @classmethod
    def of(cls, school: School) -> SchoolPublic:
        return cls(**school.__dict__, label=school.label)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@router.get(
    "", response_model=list[SchoolPublic], summary="Find school sites", dependencies=[PUBLIC]
)
async def find_schools(
    service: ServiceDep,
    q: Annotated[str, Query(max_length=100, description="Part of the name or place")] = "",
    region: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[SchoolPublic]:
    return [SchoolPublic.of(s) for s in await service.schools(q, region, limit)]


@router.post(
    "/import",
    summary="Add or update school sites from CSV (brin;vestiging;naam;plaats;regio, or DUO's)",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {}}}},
)
async def import_schools(
    request: Request,
    service: ServiceDep,
    _who: Annotated[Organiser, needs(Capability.PROGRAMME_SETUP)],
) -> dict[str, int]:
    """The whole file or nothing: a bad line refuses the import with its line number."""
    raw = await request.body()
    if len(raw) > MAX_CSV:
        raise HTTPException(413, "Het bestand is te groot")
    return {"imported": await service.import_schools(parse_schools_csv(_text(raw)))}


Setup = Annotated[Organiser, needs_page(Capability.PROGRAMME_SETUP)]


async def _page(
    request: Request,
    service: ServiceDep,
    organiser: Organiser,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    query = (request.query_params.get("zoek") or "").strip()[:100]
    notice = None
    if "ingelezen" in request.query_params:
        notice = f"{request.query_params['ingelezen']} vestigingen ingelezen."
    return pages.render(
        request,
        "organiser/schools.html",
        status_code,
        organiser=organiser,
        schools=await service.schools(query, None, 200),
        regions={r.code: r.name for r in await service.regions()},
        query=query,
        error=error,
        notice=notice,
    )


@pages_router.get("", response_class=HTMLResponse)
async def schools_page(request: Request, service: ServiceDep, organiser: Setup) -> Response:
    return await _page(request, service, organiser)


@pages_router.post("", response_class=HTMLResponse)
async def import_schools_page(request: Request, service: ServiceDep, organiser: Setup) -> Response:
    async with request.form(max_files=1, max_fields=5, max_part_size=MAX_CSV) as form:
        token_ok = pages.csrf_ok(request, form.get("csrf_token"))
        upload = form.get("bestand")
        raw = await upload.read() if token_ok and isinstance(upload, UploadFile) else b""
    if not token_ok:
        return pages.expired_form(request)
    try:
        count = await service.import_schools(parse_schools_csv(_text(raw)))
    except SchoolImportError as refused:
        return await _page(
            request, service, organiser, error=f"Niets ingelezen: {refused}.", status_code=422
        )
    return RedirectResponse(
        f"{base_path(request)}/organiser/scholen?ingelezen={count}", status_code=303
    )
