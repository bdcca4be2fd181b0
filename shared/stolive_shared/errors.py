"""Errors the shared plumbing raises; third-party errors are translated at the edge.

StoLiveError
├── ConfigurationError        settings that cannot work (caught by launchers, one-line message)
├── PoisonMessage             a Kafka record that can never be handled: goes to <topic>.dlq
│   ├── UndecodableMessage    not JSON, not UTF-8, missing headers, too large
│   └── UnknownMessageType    a (type, version) no contract describes
├── DependencyUnavailable     PostgreSQL, Kafka or another service (the events service's
│                             API) cannot be reached right now: retry, 503
└── DomainError               a service's rules refuse what was asked: its HTTP status and
                              Dutch message say why (``stolive_shared.web`` answers them all)
"""

from __future__ import annotations


class StoLiveError(Exception):
    """Base of every error the shared library raises on purpose."""


class ConfigurationError(StoLiveError):
    """The settings cannot work; the message says what to do."""


class PoisonMessage(StoLiveError):
    """A record that will never be handled, however often it is retried."""


class UndecodableMessage(PoisonMessage):
    """The bytes are not a message: bad UTF-8, bad JSON, or fields that do not validate."""


class UnknownMessageType(PoisonMessage):
    """No contract describes this (type, version)."""


class DependencyUnavailable(StoLiveError):
    """PostgreSQL, Kafka or another service cannot be reached; the caller retries or answers
    503 (``stolive_shared.web`` does, with ``Retry-After``)."""


class DomainError(StoLiveError):
    """A rule refused what was asked. Each service's errors subclass it with their ``status``
    (404 unknown, 409 not now, 410 gone, 422 input) and a Dutch default message; a 422 names
    the input at fault (``field``, or several in ``problems``). Answered once, for every
    service, by ``stolive_shared.web``."""

    status: int = 409
    message: str = "Dit kan nu niet."

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        status: int | None = None,
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.field = field
        self.problems = problems or {}
        if status is not None:
            self.status = status
