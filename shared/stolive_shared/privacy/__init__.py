"""Personal data by design: what no topic may carry in clear, and the keys that let it go.

Pattern: crypto-shredding. Each registration has a data key, made with it and kept only in
PostgreSQL, in a schema of its own (``privacy``) that every service reads with its own pool
(as it reads organiser sessions). Messages carry the contact sealed with that key
(``contracts.sealed``); the consumers that need it open it in their own transaction. Deleting
the key (an erasure, the end of retention) makes every copy unreadable at once, wherever Kafka
or a backup keeps it: the embedded broker keeps everything in memory and compacts nothing,
production brokers keep what retention says, and neither can be asked to forget one record.

- ``sealing``: the cipher (AES-256-GCM, the subject as associated data);
- ``keyring``: the keys in PostgreSQL: made, read, forgotten;
- ``redaction``: the last line of defence for text: e-mail addresses out of logs and errors;
- ``person_key``: an address as a keyed hash, for the messages and lists that must name a
  person without the address (an erasure, the bounce list).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

SCHEMA = "privacy"
MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def person_key(secret: str, email: str) -> str:
    """The address as a keyed hash (HMAC-SHA256 with the link secret): the same for every
    service, and no dictionary of addresses reverses it without the secret."""
    digest = hmac.new(secret.encode(), b"person\0" + normalise_email(email).encode(), "sha256")
    return digest.hexdigest()


def legacy_email_sha256(email: str) -> str:
    """The unkeyed hash older erasure messages carried (version 1)."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()
