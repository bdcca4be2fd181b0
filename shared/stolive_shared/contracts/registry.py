"""Which model reads which ``(type, version)``, and how old versions are brought up to date.

An upcaster turns the JSON of version N into version N+1 by filling in what N lacked; it never
overwrites. Decoding chains them until a registered model reads the result. A rename or a
removal is a new type, not a new version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stolive_shared.contracts.analytics import (
    ANALYTICS_MESSAGES,
    upcast_attendance_recorded_v1_v2,
)
from stolive_shared.contracts.base import Message
from stolive_shared.contracts.events import (
    EVENT_MESSAGES,
    VERSIONED_EVENT_MESSAGES,
    upcast_event_v1_v2,
)
from stolive_shared.contracts.notifications import NOTIFICATION_MESSAGES
from stolive_shared.contracts.registrations import (
    REGISTRATION_MESSAGES,
    REGISTRATION_VIEW_MESSAGES,
    RegistrationSignUpRepeated,
    upcast_person_erased_v1_v2,
    upcast_registration_v1_v2,
    upcast_registration_v2_v3,
    upcast_registration_v3_v4,
)
from stolive_shared.contracts.viewer_activity import VIEWER_MESSAGES, upcast_beacon_v1_v2
from stolive_shared.errors import UnknownMessageType

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _key(model: type[Message]) -> tuple[str, int]:
    fields = model.model_fields
    return (fields["type"].default, fields["version"].default)


MESSAGE_MODELS: dict[tuple[str, int], type[Message]] = {
    _key(model): model
    for model in (
        *EVENT_MESSAGES,
        *REGISTRATION_MESSAGES,
        *NOTIFICATION_MESSAGES,
        *VIEWER_MESSAGES,
        *ANALYTICS_MESSAGES,
    )
}

# (type, from_version) -> upcaster to from_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    **{
        (model.model_fields["type"].default, 1): upcast_registration_v1_v2
        for model in REGISTRATION_VIEW_MESSAGES
    },
    **{
        (model.model_fields["type"].default, 2): upcast_registration_v2_v3
        for model in REGISTRATION_VIEW_MESSAGES
    },
    **{
        (model.model_fields["type"].default, 3): upcast_registration_v3_v4
        for model in REGISTRATION_VIEW_MESSAGES
    },
    (RegistrationSignUpRepeated.model_fields["type"].default, 1): upcast_registration_v2_v3,
    (RegistrationSignUpRepeated.model_fields["type"].default, 2): upcast_registration_v3_v4,
    ("person.erased", 1): upcast_person_erased_v1_v2,
    **{
        (model.model_fields["type"].default, 1): upcast_event_v1_v2
        for model in VERSIONED_EVENT_MESSAGES
    },
    ("viewer.beacon", 1): upcast_beacon_v1_v2,
    ("attendance.recorded", 1): upcast_attendance_recorded_v1_v2,
}


def model_for(
    message_type: str, version: int, data: dict[str, Any]
) -> tuple[type[Message], dict[str, Any]]:
    """The model that reads this message, after upcasting ``data`` as far as needed."""
    while (message_type, version) not in MESSAGE_MODELS:
        upcast = UPCASTERS.get((message_type, version))
        if upcast is None:
            raise UnknownMessageType(f"no contract for type={message_type!r} version={version}")
        data = upcast(dict(data))
        version += 1
        data["version"] = version
    return MESSAGE_MODELS[(message_type, version)], data
