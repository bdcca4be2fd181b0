"""What a registration looks like in this service's messages (``RegistrationView``), and the
personal links each carries: one mapping for every message the use cases write."""

from __future__ import annotations

from sto_registrations.domain import WEBINAR, EventTerms, Registration
from stolive_shared.contracts.registrations import Attendee, RegistrationStatus, RegistrationView
from stolive_shared.links import PersonalLinks


def join_url(links: PersonalLinks, registration: Registration, terms: EventTerms) -> str | None:
    """The personal watch link of a webinar: its signed viewer id ties watching to the
    sign-up."""
    if terms.kind != WEBINAR:
        return None
    return links.watch(registration.event_id, registration.viewer_id)


def registration_view(
    links: PersonalLinks,
    registration: Registration,
    terms: EventTerms,
    status: RegistrationStatus | None = None,
    manage_token: str | None = None,
) -> RegistrationView:
    """The registration as a message tells it (``status`` when it is about to change;
    ``manage_token`` when the caller made it already)."""
    applicant = registration.applicant
    token = manage_token or links.manage_token(registration.id)
    return RegistrationView(
        registration_id=registration.id,
        event_id=registration.event_id,
        status=status or registration.status,
        attendee=Attendee(
            name=applicant.name,
            email=applicant.email,
            organisation=applicant.organisation,
            role=applicant.role,
            region_code=applicant.region_code,
            profiles=applicant.profiles,
        ),
        viewer_id=registration.viewer_id,
        manage_url=links.urls.manage_page(token),
        event_title=terms.title,
        event_starts_at=terms.starts_at,
        event_ends_at=terms.ends_at,
        event_revision=terms.revision,
        join_url=join_url(links, registration, terms),
        newsletter_opt_in=applicant.newsletter,
    )
