"""Request dependencies: the organiser check, built once per app from its settings."""

from __future__ import annotations

from fastapi import Request


async def require_organiser(request: Request) -> str:
    """The organiser's name (session cookie or bearer token); 401 or 403 otherwise."""
    organiser: str = await request.app.state.organiser_check(request)
    return organiser
