"""How the shared runtime runs the registrations service."""

from __future__ import annotations

from pathlib import Path

from sto_registrations.app import create_app
from sto_registrations.config import RegistrationsSettings
from sto_registrations.consumers import create_consumers
from stolive_shared.runtime import ServiceDefinition

DEFINITION: ServiceDefinition[RegistrationsSettings] = ServiceDefinition(
    name="registrations",
    settings_factory=RegistrationsSettings,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    create_consumers=create_consumers,
)
