"""What the other services hold about one person, read over their internal APIs
(``stolive_shared.internal``) for the person's export: notifications (newsletter, e-mails
sent) and analytics (watching, attendance, certificates). An export is whole or not given:
a service that does not answer makes the export wait (``ServiceUnavailable``, a 503)."""

from __future__ import annotations

import uuid
from typing import Any

from stolive_shared.internal import InternalClient


class OtherServices:
    def __init__(self, notifications: InternalClient, analytics: InternalClient) -> None:
        self._notifications = notifications
        self._analytics = analytics

    async def about(self, person_key: str, registration_ids: list[uuid.UUID]) -> dict[str, Any]:
        ids = {"registration_id": [str(i) for i in registration_ids]}
        notifications = await self._notifications.get(f"/internal/people/{person_key}", ids)
        analytics = await self._analytics.get("/internal/people", ids)
        return {"notifications": notifications, "analytics": analytics}
