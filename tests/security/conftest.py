"""The security suite runs against the whole platform through its one address (the gateway),
with real browsers where a session, a cookie or a personal link is involved."""

from __future__ import annotations

from tests.e2e.conftest import platform  # noqa: F401
