"""Messages to Kafka records and back.

The value is the message's JSON; headers repeat ``type``, ``version`` and ``message_id`` so
tools and dead-letter handling can see them without parsing, and carry ``traceparent``. Every
way a record can be unreadable raises a subclass of ``PoisonMessage``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from stolive_shared.contracts.base import Message
from stolive_shared.contracts.registry import model_for
from stolive_shared.errors import UndecodableMessage

Headers = list[tuple[str, bytes]]

MAX_MESSAGE_BYTES = 1_000_000


def encode(message: Message) -> tuple[bytes, Headers]:
    value = message.model_dump_json().encode()
    headers: Headers = [
        ("type", message.type.encode()),
        ("version", str(message.version).encode()),
        ("message_id", str(message.message_id).encode()),
        ("content-type", b"application/json"),
    ]
    return value, headers


def decode(value: bytes | None) -> Message:
    """Parse a record's value into its contract model, upcasting old versions."""
    if value is None:
        raise UndecodableMessage("record has no value")
    if len(value) > MAX_MESSAGE_BYTES:
        raise UndecodableMessage(f"record value of {len(value)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data: Any = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UndecodableMessage(f"value is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UndecodableMessage(f"value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UndecodableMessage("value is not a JSON object")
    message_type, version = data.get("type"), data.get("version")
    if not isinstance(message_type, str) or not isinstance(version, int):
        raise UndecodableMessage("value lacks a string 'type' and an integer 'version'")
    model, data = model_for(message_type, version, data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Where and why, never the values: a dead letter's headers must hold no personal data.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise UndecodableMessage(
            f"{message_type} v{version} does not validate: {problems}"
        ) from exc


def header(headers: Any, name: str) -> str | None:
    for key, raw in headers or ():
        if key == name and raw is not None:
            return bytes(raw).decode("utf-8", "replace")
    return None
