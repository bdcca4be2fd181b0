"""Personal data as it may travel in a message: sealed.

A person's contact (name, e-mail address, organisation) is encrypted with a key that exists
once, in PostgreSQL (``stolive_shared.privacy``), one key per registration. Messages carry
only the ciphertext; the services that must act on the contact (notifications sends the
e-mail, analytics names the attendee) open it with that key. Erasing the person, or the end
of the registration's retention, deletes the key: every copy of the message, on every topic,
changelog, dead-letter topic and backup, is unreadable from then on, at once.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class Contact(BaseModel):
    """Who a registration is for, in clear: only ever inside a ``Sealed``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    email: str
    organisation: str = ""


class Sealed(BaseModel):
    """A ``Contact`` encrypted (AES-256-GCM) under the key of ``subject`` (a registration id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: uuid.UUID
    ciphertext: str  # base64url: the 12-byte nonce, then the ciphertext and tag
