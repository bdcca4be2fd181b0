"""Organiser access, the same in every service: tokens, server-side sessions, one dependency.

Tokens and sessions live in PostgreSQL, in a schema of their own (``organisers``) that every
service reads with its own pool, so a logout or a revoked token ends access everywhere at the
next request; nothing is cached. ``store`` holds the SQL, ``web`` the FastAPI side (the cookie,
the dependencies every organiser route declares, the marker every public route declares).
"""

from __future__ import annotations

from pathlib import Path

SCHEMA = "organisers"
MIGRATIONS = Path(__file__).parent / "migrations"
