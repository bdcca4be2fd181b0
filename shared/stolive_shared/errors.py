"""Errors the shared plumbing raises; third-party errors are translated at the edge.

StoLiveError
├── ConfigurationError        settings that cannot work (caught by launchers, one-line message)
├── PoisonMessage             a Kafka record that can never be handled: goes to <topic>.dlq
│   ├── UndecodableMessage    not JSON, not UTF-8, missing headers, too large
│   └── UnknownMessageType    a (type, version) no contract describes
└── DependencyUnavailable     PostgreSQL, Kafka or another service (the events service, for
                              organiser tokens) cannot be reached right now: retry, 503
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
