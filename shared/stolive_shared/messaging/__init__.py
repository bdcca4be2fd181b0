"""Kafka plumbing: producer and admin factories, the outbox writer and relay, the consumer loop,
and the dead letters operators work with (``dead_letters``).

What operators did with dead letters lives in PostgreSQL, in a schema of its own that every
service may read (``operations``), applied like the organisers' and privacy's schemas.
"""

from __future__ import annotations

from pathlib import Path

SCHEMA = "operations"
MIGRATIONS = Path(__file__).parent / "migrations"
