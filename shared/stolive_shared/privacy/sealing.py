"""The cipher: AES-256-GCM with a fresh 96-bit nonce per seal and the subject's id as
associated data, so a ciphertext moved to another registration does not open."""

from __future__ import annotations

import base64
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stolive_shared.contracts.sealed import Contact, Sealed

KEY_BYTES = 32
_NONCE_BYTES = 12


class Unreadable(Exception):
    """A sealed contact that does not open with the key given (tampered, or another key)."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, subject: uuid.UUID, contact: Contact) -> Sealed:
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(key).encrypt(nonce, contact.model_dump_json().encode(), subject.bytes)
    return Sealed(subject=subject, ciphertext=base64.urlsafe_b64encode(nonce + box).decode())


def open_sealed(key: bytes, sealed: Sealed) -> Contact:
    try:
        raw = base64.urlsafe_b64decode(sealed.ciphertext.encode())
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], sealed.subject.bytes)
    except (InvalidTag, ValueError) as exc:
        raise Unreadable("the sealed contact does not open with this key") from exc
    return Contact.model_validate_json(plain)
