"""Attach search and pagination to an engine: `ctx.vector_search` and the cursor key."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from app.db import cursor
from app.db.vector import vector_search

if TYPE_CHECKING:
    from app.engine import Engine
    from app.settings import Settings


def cursor_secret(settings: Settings) -> str:
    """The deployment's cursor secret: from the admin key, else kept in the data folder."""
    if settings.admin_key:
        return settings.admin_key
    from app.embedded import data_file

    path = data_file(settings, "cursor_key")
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def install_search(engine: Engine) -> None:
    """Make `ctx.vector_search` work and sign cursors with the deployment's key."""
    engine.services["vector_search"] = vector_search
    cursor.configure(cursor_secret(engine.settings))
