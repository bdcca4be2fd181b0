"""Use cases of the registrations service; the only place that opens a transaction.

A sign-up (``sign_ups``, with its group-commit engine in ``batching``), and what follows it
(``lifecycle``: a cancellation with its promotion from the waiting list, a check-in, an
erasure; ``by_hand``: what organisers do to registrations), each with every message it
causes (and an organiser's action with its audit row), commit together or not at all.
``RegistrationsService`` is what the HTTP and Kafka faces call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from sto_registrations.adapters.people import OtherServices
from sto_registrations.domain import (
    Applicant,
    CheckInRefused,
    EventTerms,
    EventUnknown,
    Registration,
    RegistrationUnknown,
)
from sto_registrations.repository import PostgresRegistrations, RegistrationsRepository
from sto_registrations.service.by_hand import ByHand, EntryInvalid
from sto_registrations.service.sign_ups import SignUpAnswer, SignUpResult, SignUps
from sto_registrations.service.views import join_url
from stolive_shared import links
from stolive_shared.clock import Clock, utc_now
from stolive_shared.links import PersonalLinks
from stolive_shared.organisers.audit import AuditLog
from stolive_shared.privacy import person_key
from stolive_shared.store import PostgresStore, Store

__all__ = [
    "CheckInRefused",
    "EntryInvalid",
    "EventUnknown",
    "RegistrationUnknown",
    "RegistrationsService",
    "SignUpAnswer",
    "SignUpResult",
]


@dataclass
class RegistrationsService(ByHand):
    """The use cases on PostgreSQL: signing up (``sign_ups``, straight on the pool: a batch
    per statement) and everything after it (``RegistrationLifecycle`` and organisers'
    ``ByHand``, on the ``store``)."""

    pool: asyncpg.Pool
    schema: str
    links: PersonalLinks
    clock: Clock = utc_now
    max_in_flight: int = 4
    # A registration is told "you were already signed up" at most once per this interval.
    repeat_notice_interval: timedelta = timedelta(minutes=10)
    # The privacy statement a sign-up agrees to (settings.privacy_statement_version).
    privacy_version: str = ""
    # What the other services hold about a person (their export); None: this service alone.
    others: OtherServices | None = None
    sign_ups: SignUps = field(init=False)
    store: Store[RegistrationsRepository] = field(init=False)

    def __post_init__(self) -> None:
        schema = self.schema
        audit = AuditLog(self.pool, "registrations")
        self.store = PostgresStore(
            self.pool, lambda conn: PostgresRegistrations(conn, schema, audit)
        )
        self.sign_ups = SignUps(
            self.pool,
            self.schema,
            self.links,
            clock=lambda: self.clock(),
            max_in_flight=self.max_in_flight,
            repeat_notice_interval=self.repeat_notice_interval,
            privacy_version=self.privacy_version,
        )

    async def close(self) -> None:
        await self.sign_ups.close()

    async def drain_follow_ups(self) -> None:
        await self.sign_ups.drain_follow_ups()

    # -- signing up (sign_ups) ---------------------------------------------------------------

    async def sign_up(self, event_id: uuid.UUID, applicant: Applicant) -> SignUpResult:
        return await self.sign_ups.sign_up(event_id, applicant)

    async def sign_up_group(
        self, event_id: uuid.UUID, applicants: list[Applicant]
    ) -> list[SignUpAnswer]:
        """The first applicant with colleagues of the same school, each their own registration."""
        return await self.sign_ups.sign_up_group(event_id, applicants)

    # -- personal links ----------------------------------------------------------------------

    def manage_token(self, registration_id: uuid.UUID) -> str:
        return self.links.manage_token(registration_id)

    def manage_url(self, registration_id: uuid.UUID) -> str:
        return self.links.manage(registration_id)

    def registration_for_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.MANAGE, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    async def by_personal_link(self, token: str) -> tuple[Registration, EventTerms]:
        """The registration a person's manage link names. An erased or anonymised one is
        gone for the link: it shows nothing and changes nothing."""
        registration, terms = await self.get(self.registration_for_token(token))
        if registration.erased:
            raise RegistrationUnknown()
        return registration, terms

    def check_in_url(self, registration_id: uuid.UUID) -> str:
        """What the QR code on the confirmation holds: an organiser opens it on a phone."""
        return self.links.check_in(registration_id)

    def registration_for_check_in_token(self, token: str) -> uuid.UUID:
        registration_id = self.links.subject(links.CHECK_IN, token)
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    def join_url(self, registration: Registration, terms: EventTerms) -> str | None:
        return join_url(self.links, registration, terms)

    # -- a person's data (AVG) ----------------------------------------------------------------

    async def full_export(self, email: str) -> dict[str, Any]:
        """Everything the platform holds about an address (AVG article 15): this service's
        registrations, and what notifications and analytics hold, as one document."""
        own = await self.person_export(email)
        ids = [record["id"] for record in own["registrations"]]
        others = {}
        if self.others is not None:
            others = await self.others.about(person_key(self.links.secret, own["email"]), ids)
        return {**own, "privacy_statement_version": self.privacy_version, **others}

    def person_reference(self, email: str) -> str:
        """How the platform names this address without it (``privacy.person_key``)."""
        return person_key(self.links.secret, email)

    def registration_for_export_token(self, token: str) -> uuid.UUID:
        """Whose export link this is, while it works (a day)."""
        registration_id = self.links.data_export_subject(token, self.clock().timestamp())
        if registration_id is None:
            raise RegistrationUnknown()
        return registration_id

    async def address_of(self, registration_id: uuid.UUID) -> str:
        """The address a registration was made with; RegistrationUnknown once erased."""
        registration, _ = await self.get(registration_id)
        if registration.erased:
            raise RegistrationUnknown()
        return registration.applicant.email

    # -- following the events topic ---------------------------------------------------------

    def repository_on(self, conn: asyncpg.Connection) -> PostgresRegistrations:
        """The repository inside a transaction someone else opened (the consumer's)."""
        return PostgresRegistrations(conn, self.schema)
