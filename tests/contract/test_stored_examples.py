"""Every message contract reads its stored example, forever.

``examples/<type>.v<version>.json`` holds one message of each ``(type, version)`` as it was
first sent. Files are added, never changed or removed: a consumer must always read what a
producer once wrote (through upcasters where a newer version exists).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stolive_shared.contracts.codec import decode
from stolive_shared.contracts.registry import MESSAGE_MODELS

EXAMPLES = Path(__file__).parent / "examples"
STORED = sorted(EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("example", STORED, ids=lambda path: path.stem)
def test_a_stored_example_still_decodes(example: Path) -> None:
    stored = json.loads(example.read_text())
    message = decode(example.read_bytes())
    assert message.type == stored["type"]
    assert str(message.message_id) == stored["message_id"]


@pytest.mark.parametrize(("message_type", "version"), sorted(MESSAGE_MODELS))
def test_every_contract_has_a_stored_example(message_type: str, version: int) -> None:
    assert (EXAMPLES / f"{message_type}.v{version}.json").exists(), (
        f"store one example of {message_type} v{version} in tests/contract/examples/"
    )
