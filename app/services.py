"""Wire the optional subsystems (live queries, scheduler, storage, metrics) into an engine."""

from __future__ import annotations

from app.engine import Engine


def install_services(engine: Engine, *, role: str = "serve") -> None:
    """Attach every subsystem this role runs to `engine` (before `engine.start()`)."""
    from app.sync.install import install as install_sync

    install_sync(engine, live=role in ("serve", "dev") and engine.settings.live_queries)

    from app.storage import install_storage

    install_storage(engine, role=role)

    from app.scheduler import install as install_scheduler

    install_scheduler(engine, role)

    from app.db.search_install import install_search

    install_search(engine)

    from app.logconfig import install_call_log
    from app.metrics import install_metrics

    install_metrics(engine)
    install_call_log(engine)
