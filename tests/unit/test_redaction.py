"""No e-mail address is written where it does not belong: logs, stored errors, dead letters."""

from __future__ import annotations

import io
import json
import logging

import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.errors import PoisonMessage
from stolive_shared.logging import JsonFormatter, RedactingFormatter
from stolive_shared.privacy.redaction import redact


def test_an_smtp_reply_keeps_its_meaning_without_the_address() -> None:
    reply = "550 5.1.1 <anna.de-vries+sto@school.nl>: Recipient address rejected"
    assert redact(reply) == "550 5.1.1 <<adres>>: Recipient address rejected"


@pytest.mark.parametrize("formatter", [JsonFormatter("test"), RedactingFormatter("%(message)s")])
def test_a_log_line_never_holds_an_address_whoever_wrote_it(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        log.warning("could not mail %s", "anna@school.nl", extra={"ctx_to": "bram@school.nl"})
        try:
            raise ValueError("bounced: chris@school.nl")
        except ValueError:
            log.exception("send failed")
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "@school.nl" not in written
    assert "<adres>" in written
    if isinstance(formatter, JsonFormatter):
        first = json.loads(written.splitlines()[0])
        assert first["msg"] == "could not mail <adres>"


def test_a_message_that_does_not_validate_is_described_without_its_values() -> None:
    spoiled = json.dumps(
        {
            "message_id": "00000000-0000-0000-0000-000000000001",
            "type": "person.erased",
            "version": 2,
            "occurred_at": "2026-12-01T14:30:00Z",
            "person_key": {"email": "anna@school.nl"},
            "registration_ids": [],
            "erased_at": "2026-12-01T14:30:00Z",
        }
    ).encode()
    with pytest.raises(PoisonMessage) as caught:
        decode(spoiled)
    assert "person_key" in str(caught.value)
    assert "anna" not in str(caught.value)
