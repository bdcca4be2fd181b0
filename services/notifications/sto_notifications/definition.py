"""How the shared runtime runs the notifications service."""

from __future__ import annotations

from pathlib import Path

from sto_notifications.app import create_app
from sto_notifications.config import NotificationsSettings
from sto_notifications.consumers import create_consumers, create_workers
from stolive_shared.runtime import ServiceDefinition

DEFINITION: ServiceDefinition[NotificationsSettings] = ServiceDefinition(
    name="notifications",
    settings_factory=NotificationsSettings,
    migrations=Path(__file__).parent / "migrations",
    create_app=create_app,
    create_consumers=create_consumers,
    create_workers=create_workers,
)
