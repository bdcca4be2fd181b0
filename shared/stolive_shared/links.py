"""Signed, unguessable tokens for personal links (manage, watch, certificate, unsubscribe).

A token is ``<purpose-free id>.<HMAC>``: the HMAC covers the purpose and the id, so a manage
token cannot be replayed as an unsubscribe token. Tokens carry no personal data.

A personal watch link names the registration's viewer id, signed for one event
(``watch_token``): beacons with that viewer id count toward the person's attendance only when
they carry the token, so nobody can watch (or pretend to) in someone else's name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from stolive_shared.urls import PublicUrls

# What a token is for: the HMAC covers it, so one purpose's token is worthless for another.
MANAGE = "manage-registration"
CHECK_IN = "check-in"
UNSUBSCRIBE = "unsubscribe"
NEWSLETTER_CONFIRMATION = "newsletter-confirm"
CERTIFICATE = "certificate"
# A person's export of their data: a link that works for a day (``sign_until``).
DATA_EXPORT = "data-export"
DATA_EXPORT_VALID_S = 24 * 3600
# A token longer than this is not one of ours (nor read further).
_MAX_TOKEN = 100

# A registration's viewer id: the one beacons name a person by (``v_`` and 24 hex digits).
PERSONAL_VIEWER = re.compile(r"v_[0-9a-f]{24}")


def _mac(secret: str, purpose: str, subject: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}:{subject}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign(secret: str, purpose: str, subject: uuid.UUID) -> str:
    return f"{subject.hex}.{_mac(secret, purpose, subject.hex)}"


def verify(secret: str, purpose: str, token: str) -> uuid.UUID | None:
    """The id the token was made for, or None when it is forged, altered or malformed.

    Anything but ASCII is malformed: ``compare_digest`` refuses non-ASCII text (TypeError),
    and ``uuid.UUID`` would read non-ASCII digits such as '٣' as hex.
    """
    subject, _, mac = token.partition(".")
    if not token.isascii() or len(token) > _MAX_TOKEN or len(subject) != 32 or not mac:
        return None
    try:
        parsed = uuid.UUID(hex=subject)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(secret, purpose, subject)):
        return None
    return parsed


def sign_until(secret: str, purpose: str, subject: uuid.UUID, until: float) -> str:
    """A token for ``purpose`` that stops working at ``until`` (a Unix time)."""
    signed = f"{subject.hex}-{int(until):x}"
    return f"{signed}.{_mac(secret, purpose, signed)}"


def verify_until(secret: str, purpose: str, token: str, now: float) -> uuid.UUID | None:
    """The id a ``sign_until`` token was made for, while it works; None otherwise."""
    signed, _, mac = token.partition(".")
    subject, _, until = signed.partition("-")
    if not token.isascii() or len(token) > _MAX_TOKEN or len(subject) != 32 or not mac:
        return None
    try:
        parsed, expires = uuid.UUID(hex=subject), int(until, 16)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(secret, purpose, signed)) or now >= expires:
        return None
    return parsed


def watch_token(secret: str, event_id: uuid.UUID, viewer_id: str) -> str:
    """The token of a personal watch link: the viewer id, signed for this event only."""
    return f"{viewer_id}.{_mac(secret, f'watch:{event_id}', viewer_id)}"


def watch_viewer(secret: str, event_id: uuid.UUID, token: str) -> str | None:
    """The viewer id a watch token proves for this event, or None (forged, for another event,
    altered, malformed)."""
    viewer_id, _, mac = token.partition(".")
    if len(token) > _MAX_TOKEN or not token.isascii():
        return None
    if not PERSONAL_VIEWER.fullmatch(viewer_id) or not mac:
        return None
    if not hmac.compare_digest(mac, _mac(secret, f"watch:{event_id}", viewer_id)):
        return None
    return viewer_id


def watch_url(public_base_url: str, secret: str, event_id: uuid.UUID, viewer_id: str) -> str:
    """A person's own link to a broadcast's watch page."""
    return PersonalLinks(secret, PublicUrls(public_base_url)).watch(event_id, viewer_id)


@dataclass(frozen=True)
class PersonalLinks:
    """Every personal link of the platform, made and read with ``LINK_SECRET``: the link is
    the address of a page (``PublicUrls``) with a token only its holder's mailbox got."""

    secret: str
    urls: PublicUrls

    def manage_token(self, registration_id: uuid.UUID) -> str:
        return sign(self.secret, MANAGE, registration_id)

    def manage(self, registration_id: uuid.UUID) -> str:
        return self.urls.manage_page(self.manage_token(registration_id))

    def check_in(self, registration_id: uuid.UUID) -> str:
        return self.urls.check_in_page(sign(self.secret, CHECK_IN, registration_id))

    def watch(self, event_id: uuid.UUID, viewer_id: str) -> str:
        token = watch_token(self.secret, event_id, viewer_id)
        return f"{self.urls.watch_page(event_id)}?v={token}"

    def unsubscribe(self, recipient_id: uuid.UUID) -> str:
        return self.urls.unsubscribe_page(sign(self.secret, UNSUBSCRIBE, recipient_id))

    def newsletter_confirmation(self, subscriber_id: uuid.UUID) -> str:
        token = sign(self.secret, NEWSLETTER_CONFIRMATION, subscriber_id)
        return self.urls.newsletter_confirmation_page(token)

    def certificate(self, registration_id: uuid.UUID) -> str:
        return self.urls.certificate_page(sign(self.secret, CERTIFICATE, registration_id))

    def data_export(self, registration_id: uuid.UUID, now: float) -> str:
        """The link to a person's export of their data, working for a day from ``now``."""
        token = sign_until(self.secret, DATA_EXPORT, registration_id, now + DATA_EXPORT_VALID_S)
        return self.urls.data_export_page(token)

    def data_export_subject(self, token: str, now: float) -> uuid.UUID | None:
        """Whose export a link is for, while it works."""
        return verify_until(self.secret, DATA_EXPORT, token, now)

    def subject(self, purpose: str, token: str) -> uuid.UUID | None:
        """Whom a token of ``purpose`` was made for; None for anything we did not sign."""
        return verify(self.secret, purpose, token)

    def viewer(self, event_id: uuid.UUID, token: str) -> str | None:
        """The viewer id a watch-link token proves for this broadcast, else None."""
        return watch_viewer(self.secret, event_id, token)
