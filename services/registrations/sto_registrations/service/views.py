"""What a registration looks like in this service's messages (``RegistrationView``, its
contact sealed): one mapping for every message the use cases write; and the personal watch
link the sign-up answer shows."""

from __future__ import annotations

from sto_registrations.domain import WEBINAR, EventTerms, Registration
from stolive_shared.contracts.registrations import Attendee, RegistrationStatus, RegistrationView
from stolive_shared.contracts.sealed import Contact
from stolive_shared.links import PersonalLinks
from stolive_shared.privacy.sealing import seal


def join_url(links: PersonalLinks, registration: Registration, terms: EventTerms) -> str | None:
    """The personal watch link of a webinar: its signed viewer id ties watching to the
    sign-up."""
    if terms.kind != WEBINAR:
        return None
    return links.watch(registration.event_id, registration.viewer_id)


def registration_view(
    registration: Registration,
    terms: EventTerms,
    key: bytes | None,
    status: RegistrationStatus | None = None,
) -> RegistrationView:
    """The registration as a message tells it (``status`` when it is about to change): the
    contact sealed with the registration's data ``key`` (None: erased, nothing to seal), no
    personal link (the services that mail them make them from the ids)."""
    applicant = registration.applicant
    contact = None
    if key is not None and not registration.erased:
        contact = seal(
            key,
            registration.id,
            Contact(
                name=applicant.name, email=applicant.email, organisation=applicant.organisation
            ),
        )
    return RegistrationView(
        registration_id=registration.id,
        event_id=registration.event_id,
        status=status or registration.status,
        attendee=Attendee(
            role=applicant.role,
            region_code=applicant.region_code,
            profiles=applicant.profiles,
            school_code=applicant.school_code,
        ),
        contact=contact,
        viewer_id=registration.viewer_id,
        webinar=terms.kind == WEBINAR,
        event_title=terms.title,
        event_starts_at=terms.starts_at,
        event_ends_at=terms.ends_at,
        event_revision=terms.revision,
        newsletter_opt_in=applicant.newsletter,
    )
