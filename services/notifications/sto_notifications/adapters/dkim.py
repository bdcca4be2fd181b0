"""DKIM signing of finished messages (dkimpy), so mailbox providers can tie our mail to our
domain: the last step before the bytes go to SMTP, after nothing else will change them.

The signature covers the headers a receiver judges us by and a one-click unsubscribe relies
on: Gmail and Yahoo honour ``List-Unsubscribe-Post`` only when the DKIM signature covers it and
``List-Unsubscribe``. ``From`` is signed twice (oversigned), so a second ``From`` added on the
way breaks the signature instead of riding on it. Relaxed/relaxed canonicalisation survives
the header refolding and trailing-space changes relays make.

dkimpy does the DKIM part (canonicalisation, header selection, the signature field) and
verifies; the RSA operation itself is OpenSSL's (``cryptography``): dkimpy's pure-Python RSA
took 30-40 ms a message here, OpenSSL 1-3 ms, which is what a mailing of thousands can afford.
``_OpenSslDkim.gen_header`` is dkimpy 1.1.8's own with only that call replaced (the version is
pinned; the test verifies every signature with dkimpy's ``verify``).

No key configured: no signer, the mail goes out unsigned (the MTA may sign it; see
``deploy/mail.md``).
"""

from __future__ import annotations

import base64
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from sto_notifications.config import NotificationsSettings

# What the signature covers (those a message lacks are signed as absent, so none can be
# added on the way); ``from`` a second time to oversign it.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"from",
)


class _OpenSslDkim(dkim.DKIM):  # type: ignore[misc]
    """dkimpy's signer with the RSA signature made by OpenSSL."""

    def __init__(self, message: bytes, key: rsa.RSAPrivateKey) -> None:
        super().__init__(message, linesep=b"\r\n")
        self._rsa = key

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: list[bytes],
        canon_policy: Any,
        header_name: bytes,
        pk: object,  # noqa: ARG002  (dkimpy's parsed key: unused, OpenSSL signs)
        standardize: bool = False,  # noqa: ARG002  (never asked for when signing)
    ) -> bytes:
        value = dkim.fold(b"; ".join(b"=".join(x) for x in fields), namelen=len(header_name))
        value = dkim.RE_BTAG.sub(b"\\1", value)
        hashed = dkim.HashThrough(self.hasher(), False)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            hashed, canon_policy, headers, include_headers, (header_name, b" " + value),
            dict(fields),
        )  # fmt: skip
        signature = self._rsa.sign(
            hashed.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
        index = next(i for i, (name, _) in enumerate(fields) if name == b"b")
        fields[index] = (b"b", base64.b64encode(signature))
        signed: bytes = dkim.fold(
            b"; ".join(b"=".join(x) for x in fields) + self.linesep,
            namelen=len(header_name),
            linesep=self.linesep,
        )
        return signed


class DkimSigner:
    """Prepends a ``DKIM-Signature`` for ``domain`` under ``selector`` to a message."""

    def __init__(self, selector: str, domain: str, private_key_pem: bytes) -> None:
        self.selector = selector
        self.domain = domain
        self._pem = private_key_pem
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("DKIM_PRIVATE_KEY_PATH must hold an RSA private key (PEM)")
        self._rsa = key
        # Fail at start-up, not at the first send, when the key cannot be used.
        self.sign(b"From: check@" + domain.encode() + b"\r\nSubject: check\r\n\r\ncheck\r\n")

    @classmethod
    def from_settings(cls, settings: NotificationsSettings) -> DkimSigner | None:
        if not settings.dkim_private_key_path:
            return None
        domain = settings.dkim_domain or parseaddr(settings.mail_from)[1].rpartition("@")[2]
        return cls(
            settings.dkim_selector, domain, Path(settings.dkim_private_key_path).read_bytes()
        )

    def sign(self, message: bytes) -> bytes:
        header: bytes = _OpenSslDkim(message, self._rsa).sign(
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return header + message
