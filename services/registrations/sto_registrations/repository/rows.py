"""How rows become domain objects (one mapping for every query that reads them)."""

from __future__ import annotations

import asyncpg

from sto_registrations.domain import Applicant, EventTerms, Registration

REGISTRATION_COLUMNS = """id, event_id, status, name, email, organisation, role, region_code,
profiles, newsletter, school_code, viewer_id, queue_number, created_at, checked_in_at, group_id,
(erased_at IS NOT NULL OR anonymised_at IS NOT NULL) AS erased"""


def registration_of(row: asyncpg.Record) -> Registration:
    return Registration(
        id=row["id"],
        event_id=row["event_id"],
        status=row["status"],
        applicant=Applicant(
            name=row["name"] or "",
            email=row["email"] or "",
            organisation=row["organisation"] or "",
            role=row["role"],
            region_code=row["region_code"],
            profiles=tuple(row["profiles"]),
            newsletter=row["newsletter"],
            school_code=row["school_code"],
        ),
        viewer_id=row["viewer_id"],
        queue_number=row["queue_number"],
        created_at=row["created_at"],
        checked_in_at=row["checked_in_at"],
        group_id=row["group_id"],
        erased=row["erased"],
    )


def terms_of(row: asyncpg.Record) -> EventTerms:
    return EventTerms(
        id=row["id"],
        revision=row["revision"],
        kind=row["kind"],
        status=row["status"],
        title=row["title"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        capacity=row["capacity"],
        waitlist_enabled=row["waitlist_enabled"],
        registration_opens_at=row["registration_opens_at"],
        registration_closes_at=row["registration_closes_at"],
        region_codes=tuple(row["region_codes"]),
    )
