"""Test messages as registrations writes them: the contact sealed with a data key of its own.

``TEST_KEYS.view(...)`` builds a ``RegistrationView`` whose contact is sealed with a fresh
key; ``await TEST_KEYS.store(conn)`` puts the keys made so far where the consumers look for
them (``privacy.data_keys`` of the test's database), as the sign-up's own statement would.
A test forgets a key (an erasure) with ``stolive_shared.privacy.keyring.forget``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from stolive_shared.contracts.registrations import Attendee, RegistrationStatus, RegistrationView
from stolive_shared.contracts.sealed import Contact, Sealed
from stolive_shared.privacy import keyring
from stolive_shared.privacy.sealing import new_key, seal


class TestKeys:
    def __init__(self) -> None:
        self._keys: dict[uuid.UUID, bytes] = {}
        self._unstored: set[uuid.UUID] = set()

    @property
    def unstored(self) -> bool:
        return bool(self._unstored)

    def seal(self, registration_id: uuid.UUID, contact: Contact) -> Sealed:
        if registration_id not in self._keys:
            self._keys[registration_id] = new_key()
            self._unstored.add(registration_id)
        return seal(self._keys[registration_id], registration_id, contact)

    def view(
        self,
        *,
        event_id: uuid.UUID,
        name: str,
        email: str,
        event_title: str,
        event_starts_at: datetime,
        event_ends_at: datetime,
        event_revision: int,
        registration_id: uuid.UUID | None = None,
        status: RegistrationStatus = "confirmed",
        organisation: str = "",
        role: str = "docent",
        region_code: str | None = None,
        viewer_id: str | None = None,
        webinar: bool = False,
        newsletter_opt_in: bool = False,
        school_code: str | None = None,
    ) -> RegistrationView:
        registration_id = registration_id or uuid.uuid4()
        return RegistrationView(
            registration_id=registration_id,
            event_id=event_id,
            status=status,
            attendee=Attendee(role=role, region_code=region_code, school_code=school_code),
            contact=self.seal(
                registration_id, Contact(name=name, email=email, organisation=organisation)
            ),
            viewer_id=viewer_id or f"v_{registration_id.hex[:24]}",
            webinar=webinar,
            event_title=event_title,
            event_starts_at=event_starts_at,
            event_ends_at=event_ends_at,
            event_revision=event_revision,
            newsletter_opt_in=newsletter_opt_in,
        )

    async def store(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        """The keys sealed with so far, into ``privacy.data_keys`` (kept if already there)."""
        subjects, self._unstored = list(self._unstored), set()
        if subjects:
            await conn.execute(
                keyring.insert_keys_sql(1) + " ON CONFLICT (subject) DO NOTHING",
                subjects,
                [self._keys[subject] for subject in subjects],
            )


TEST_KEYS = TestKeys()
