"""SQL for the registrations service, one module per job. Returns domain objects; opens no
transactions (the use cases in ``service`` do).

- ``events``: what this service knows of each event, and its seats (locked for a decision);
- ``sign_ups``: a batch of sign-ups read and stored in one statement;
- ``registrations``: a registration's life after that, lists, bookings, privacy;
- ``rows``: rows into domain objects;
- ``port``: what the use cases after a sign-up need of storage (``RegistrationsRepository``),
  with ``postgres`` (``PostgresRegistrations``, over the SQL above) and ``memory``
  (``InMemoryRegistrations``, the fake for unit tests).
"""

from __future__ import annotations

from sto_registrations.repository.events import (
    events_by_start,
    get_terms,
    open_events,
    seat_state,
    store_event,
)
from sto_registrations.repository.memory import InMemoryRegistrations, RegistrationsState
from sto_registrations.repository.port import RegistrationsRepository
from sto_registrations.repository.postgres import PostgresRegistrations
from sto_registrations.repository.registrations import (
    attendees,
    booked_colleagues,
    cancel_all_active,
    claim_repeat_notices,
    data_keys,
    erase_person,
    get_registration,
    mark_cancelled,
    mark_checked_in,
    person_records,
    promote_first_waitlisted,
    record_booking,
    status_counts,
    waitlist_position,
)
from sto_registrations.repository.sign_ups import (
    SeatCountsChanged,
    find_active_many,
    read_seats,
    store_batch,
)

__all__ = [
    "InMemoryRegistrations",
    "PostgresRegistrations",
    "RegistrationsRepository",
    "RegistrationsState",
    "SeatCountsChanged",
    "attendees",
    "booked_colleagues",
    "cancel_all_active",
    "claim_repeat_notices",
    "data_keys",
    "erase_person",
    "events_by_start",
    "find_active_many",
    "get_registration",
    "get_terms",
    "mark_cancelled",
    "mark_checked_in",
    "open_events",
    "person_records",
    "promote_first_waitlisted",
    "read_seats",
    "record_booking",
    "seat_state",
    "status_counts",
    "store_batch",
    "store_event",
    "waitlist_position",
]
