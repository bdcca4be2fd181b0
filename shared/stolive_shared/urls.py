"""Where people reach each service's pages: one place for every address the platform writes
into a page, a calendar or an e-mail.

The one address (the gateway, nginx, the Ingress) serves each service under its prefix
(``/events``, ``/registrations``, ``/notifications``, ``/analytics``); ``PUBLIC_BASE_URL`` is
that address. A service links to another's page only through ``PublicUrls``; personal links
(signed) are made by ``stolive_shared.links.PersonalLinks`` on top of these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class PublicUrls:
    base: str  # PUBLIC_BASE_URL, e.g. https://live.sterktechniekonderwijs.nl

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    # events
    def watch_page(self, event_id: uuid.UUID | str) -> str:
        return f"{self.base}/events/watch/{event_id}"

    def agenda(self) -> str:
        return f"{self.base}/events/agenda"

    def privacy_statement(self) -> str:
        return f"{self.base}/events/privacyverklaring"

    def accessibility_statement(self) -> str:
        return f"{self.base}/events/toegankelijkheidsverklaring"

    def organiser_sign_in(self, secret: str) -> str:
        """The e-mailed one-time sign-in link of an organiser account."""
        return f"{self.base}/events/organiser/inloggen/link/{secret}"

    # registrations
    def sign_up_form(self, event_id: uuid.UUID | str) -> str:
        return f"{self.base}/registrations/events/{event_id}/aanmelden"

    def manage_page(self, token: str) -> str:
        return f"{self.base}/registrations/r/{token}"

    def data_export_page(self, token: str) -> str:
        return f"{self.base}/registrations/gegevens/{token}"

    def check_in_page(self, token: str) -> str:
        return f"{self.base}/registrations/organisator/inchecken/{token}"

    # notifications
    def unsubscribe_page(self, token: str) -> str:
        return f"{self.base}/notifications/afmelden/{token}"

    def newsletter_form(self) -> str:
        return f"{self.base}/notifications/nieuwsbrief"

    def newsletter_confirmation_page(self, token: str) -> str:
        return f"{self.base}/notifications/nieuwsbrief/bevestigen/{token}"

    def mailing_online(self, mailing_id: uuid.UUID) -> str:
        return f"{self.base}/notifications/mailings/{mailing_id}/online"

    # analytics
    def certificate_page(self, token: str) -> str:
        return f"{self.base}/analytics/certificaat/{token}"


@dataclass(frozen=True)
class ConsoleUrls:
    """The organiser console's pages, across the four services: what the console's navigation
    and the event hub link to (``_console.html``)."""

    base: str  # PUBLIC_BASE_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def events(self) -> str:
        return f"{self.base}/events/organiser/"

    def event(self, event_id: uuid.UUID | str) -> str:
        return f"{self.base}/events/organiser/evenementen/{event_id}"

    def hub(self, event_id: uuid.UUID | str) -> str:
        return f"{self.base}/events/organiser/evenementen/{event_id}/overzicht"

    def accounts(self) -> str:
        return f"{self.base}/events/organiser/accounts"

    def audit(self) -> str:
        return f"{self.base}/events/organiser/logboek"

    def dead_letters(self) -> str:
        return f"{self.base}/events/organiser/dead-letters"

    def regions(self) -> str:
        return f"{self.base}/events/organiser/regios"

    def schools(self) -> str:
        return f"{self.base}/events/organiser/scholen"

    def log_out(self) -> str:
        return f"{self.base}/events/organiser/uitloggen"

    def registrations(self) -> str:
        return f"{self.base}/registrations/organisator/"

    def attendees(self, event_id: uuid.UUID | str) -> str:
        return f"{self.base}/registrations/organisator/evenementen/{event_id}"

    def privacy_requests(self) -> str:
        return f"{self.base}/registrations/organisator/privacy"

    def mailings(self) -> str:
        return f"{self.base}/notifications/organisator/mailings"

    def new_mailing(self, event_id: uuid.UUID | str | None = None, group: str = "") -> str:
        """A new mailing; for an event, its audience chosen already (``group``: registered,
        attended or no-shows)."""
        query = f"?evenement={event_id}&groep={group}" if event_id else ""
        return f"{self.base}/notifications/organisator/mailings/nieuw{query}"

    def dashboard(self, event_id: uuid.UUID | str | None = None) -> str:
        return f"{self.base}/analytics/dashboard" + (f"/{event_id}" if event_id else "")
