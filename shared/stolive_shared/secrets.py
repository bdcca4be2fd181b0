"""Development secrets: random, one per data folder, made on first use and kept there.

Production reads every secret from its environment (``ServiceSettings.check_production_ready``
refuses a missing, placeholder or short one). A process started without one outside
production gets the data folder's own random secret instead of a constant written in the
source: every process on the same folder (the launcher's, or ones started by hand) shares it,
and nobody else knows it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def folder_secret(data_dir: Path, name: str) -> str:
    """The secret ``name`` of ``data_dir``, made (32 random bytes, mode 0600) if missing."""
    folder = data_dir / "secrets"
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        draft.touch(mode=0o600)
        draft.write_text(secrets.token_urlsafe(32))
        try:
            # A hard link appears whole or not at all: of two processes starting at once,
            # one makes the secret and both read it.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty: delete it to make a new secret")
    return value
