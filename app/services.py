"""Wire the optional subsystems (live queries, scheduler, storage, metrics) into an engine."""

from __future__ import annotations

from app.server.engine import Engine


def install_services(engine: Engine, *, role: str = "serve") -> None:
    """Attach every subsystem this role runs to `engine` (before `engine.start()`)."""
    from app.sync.install import install as install_sync

    install_sync(engine, live=role in ("serve", "dev"))
