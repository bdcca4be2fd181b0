"""The last line of defence for free text: no e-mail address in a log line, an error stored
for later, or a header of a dead letter. An SMTP server's reply usually names the address
("550 5.1.1 <anna@school.nl>: user unknown"); a validation error may quote a field."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
REDACTED = "<adres>"


def redact(text: str) -> str:
    """``text`` with every e-mail address in it replaced by ``<adres>``."""
    return _ADDRESS.sub(REDACTED, text)
