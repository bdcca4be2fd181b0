"""How the shared runtime runs the events service."""

from __future__ import annotations

from pathlib import Path

from sto_events.app import create_app
from sto_events.config import EventsSettings
from stolive_shared.runtime import ServiceDefinition

DEFINITION: ServiceDefinition[EventsSettings] = ServiceDefinition(
    name="events",
    settings_factory=EventsSettings,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
)
