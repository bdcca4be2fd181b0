"""``/static/…``: the events service's own static files (the watch page's player and the
vendored hls.js), served from ``sto_events/static``.

A page links to a file with ``static_url``, which adds the file's content fingerprint
(``?v=…``). A request carrying the current fingerprint may be cached for a year, unchanged
(``immutable``): a new file gets a new address. Any other request is answered ``no-cache``,
so an old or bare address never pins a stale file. Scripts go out as ``text/javascript``,
which ``nosniff`` (on every answer) requires.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from stolive_shared.organisers.web import PUBLIC
from stolive_shared.pages import base_path

STATIC_DIR = (Path(__file__).parent.parent / "static").resolve()
FOREVER = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE
}

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])


def _file(name: str) -> Path | None:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        return None
    return path if path.suffix in MEDIA_TYPES else None


@cache
def fingerprint(name: str) -> str:
    """The first 12 hex digits of the file's sha256 (files do not change while we run)."""
    path = _file(name)
    if path is None:
        raise FileNotFoundError(name)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(request: Request, name: str) -> str:
    return f"{base_path(request)}/static/{name}?v={fingerprint(name)}"


@router.get("/static/{name:path}")
async def static_file(name: str, v: str = "") -> Response:
    path = _file(name)
    if path is None:
        return Response("Niet gevonden", status_code=404, media_type="text/plain")
    current = v == fingerprint(name)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": FOREVER if current else "no-cache"},
    )
