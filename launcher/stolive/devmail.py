"""A development mailbox: a real SMTP server (aiosmtpd) that keeps every email in a Maildir.

The embedded default has no mail server, so the stack starts this one and the gateway lists
what arrived at ``/mail/``. docker-compose uses Mailpit instead; tests start their own aiosmtpd.
"""

from __future__ import annotations

import mailbox
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


class DevMailbox:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        directory.parent.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(Mailbox(directory), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest emails, newest first: sender, recipient, subject, date and text."""
        box = mailbox.Maildir(str(self.directory), create=True)
        found = []
        for key in box.iterkeys():
            path = (
                self.directory / ("new" if (self.directory / "new" / key).exists() else "cur") / key
            )
            if not path.exists():
                continue
            parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            text = parsed.get_body(preferencelist=("plain",))
            found.append(
                {
                    "mtime": path.stat().st_mtime,
                    "from": str(parsed.get("From", "")),
                    "to": str(parsed.get("To", "")),
                    "subject": " ".join(str(parsed.get("Subject", "")).split()),
                    "date": str(parsed.get("Date", "")),
                    "text": text.get_content() if text is not None else "",
                }
            )
        found.sort(key=lambda m: m["mtime"], reverse=True)
        return found[:limit]
