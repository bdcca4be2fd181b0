"""Signed, unguessable tokens for personal links (manage, join, certificate, unsubscribe).

A token is ``<purpose-free id>.<HMAC>``: the HMAC covers the purpose and the id, so a manage
token cannot be replayed as an unsubscribe token. Tokens carry no personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid


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
    if not token.isascii() or len(subject) != 32 or not mac:
        return None
    try:
        parsed = uuid.UUID(hex=subject)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(secret, purpose, subject)):
        return None
    return parsed
