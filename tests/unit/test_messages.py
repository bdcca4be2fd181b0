"""Message contracts and the codec: what a consumer can and cannot read."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from stolive_shared import links
from stolive_shared.contracts.codec import decode, encode, header
from stolive_shared.contracts.events import EventPublished, EventSnapshot
from stolive_shared.contracts.registry import UPCASTERS, model_for
from stolive_shared.errors import UndecodableMessage, UnknownMessageType


def snapshot() -> EventSnapshot:
    return EventSnapshot(
        event_id=uuid.uuid4(),
        revision=2,
        kind="webinar",
        status="published",
        title="STO LIVE #26",
        starts_at=datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
        ends_at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
    )


def test_a_message_survives_the_round_trip_with_its_headers() -> None:
    message = EventPublished.create(event=snapshot())
    value, headers = encode(message)
    assert decode(value) == message
    assert header(headers, "type") == "event.published"
    assert header(headers, "version") == "2"
    assert header(headers, "message_id") == str(message.message_id)


def test_parsing_keeps_the_message_id() -> None:
    message = EventPublished.create(event=snapshot())
    assert decode(encode(message)[0]).message_id == message.message_id


def test_a_message_id_is_required() -> None:
    data = json.loads(encode(EventPublished.create(event=snapshot()))[0])
    del data["message_id"]
    with pytest.raises(UndecodableMessage, match="message_id"):
        decode(json.dumps(data).encode())


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "event.published"}', "lacks"),
        (b"x" * 1_000_001, "exceeds"),
    ],
)
def test_unreadable_values_are_poison(value: bytes, error: str) -> None:
    with pytest.raises(UndecodableMessage, match=error):
        decode(value)


def test_an_unknown_type_or_version_is_poison() -> None:
    with pytest.raises(UnknownMessageType):
        decode(b'{"type": "event.exploded", "version": 1}')
    with pytest.raises(UnknownMessageType):
        decode(b'{"type": "event.published", "version": 99}')


def test_upcasters_fill_in_what_an_old_version_lacked(monkeypatch: pytest.MonkeyPatch) -> None:
    def v0_to_v1(data: dict[str, object]) -> dict[str, object]:
        data.setdefault("event", {})
        return data

    monkeypatch.setitem(UPCASTERS, ("event.published", 0), v0_to_v1)
    model, data = model_for("event.published", 0, {"type": "event.published", "version": 0})
    assert model is EventPublished
    assert data["version"] == 2
    assert data["event"] == {"captions_url": None}


def test_occurred_at_must_carry_a_timezone() -> None:
    data = json.loads(encode(EventPublished.create(event=snapshot()))[0])
    data["occurred_at"] = "2026-11-23T09:00:00"
    with pytest.raises(UndecodableMessage):
        decode(json.dumps(data).encode())


class TestPersonalLinks:
    def test_a_signed_link_names_its_subject(self) -> None:
        subject = uuid.uuid4()
        assert links.verify("s3cret", "manage", links.sign("s3cret", "manage", subject)) == subject

    def test_an_altered_or_repurposed_link_is_refused(self) -> None:
        token = links.sign("s3cret", "manage", uuid.uuid4())
        assert links.verify("s3cret", "unsubscribe", token) is None
        assert links.verify("other", "manage", token) is None
        assert (
            links.verify("s3cret", "manage", token[:-1] + ("A" if token[-1] != "A" else "B"))
            is None
        )
        assert links.verify("s3cret", "manage", "garbage") is None
