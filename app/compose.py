"""Build the engine a process role runs: the one place that plugs the parts together.

| role     | live queries (hub, sockets) | notifier | scheduler | storage | index builder | call log        |
|----------|-----------------------------|----------|-----------|---------|---------------|-----------------|
| `serve`  | yes (unless disabled)       | yes      | yes       | yes     | yes           | prod: structured |
| `dev`    | yes                         | yes      | yes       | yes     | yes           | dev: one line    |
| `worker` | no                          | yes      | yes       | yes     | yes           | prod: structured |
| `cli`    | no                          | yes      | yes       | yes     | no            | prod: structured |

The index builder builds staged indexes in the background (`app.db.index_builder`); each
index is claimed with an advisory lock, so however many processes run one, it is built once.

With CONVECT_RUN_ACTIONS=worker, `serve` and `dev` also get `RemoteActions`: client-called
actions are handed to the workers (`app.scheduler.remote`).
"""

from __future__ import annotations

from app.admin import system_functions
from app.dashboard import dashboard_functions
from app.db.index_builder import IndexBuilder
from app.devlog import CallLog
from app.engine import Engine, Role
from app.engine.registry import Registry
from app.envvars import EnvVars
from app.logconfig import log_call
from app.logstream import FunctionLogs
from app.scheduler import SchedulerService
from app.scheduler.remote import RemoteActions
from app.settings import Settings
from app.storage import FileStorage
from app.sync.hub import Hub
from app.sync.notifier import Notifier


def build_engine(settings: Settings, registry: Registry, role: Role) -> Engine:
    """An engine with every part `role` runs; `async with` it to start and stop them."""
    engine = Engine(settings, registry, role)
    engine.env = EnvVars(engine)  # every role: functions see the deployment's variables
    engine.system = system_functions(engine) | dashboard_functions(engine)
    engine.storage = FileStorage(engine)
    engine.scheduler = scheduler = SchedulerService(engine)
    if role in ("serve", "dev") and settings.run_actions == "worker":
        engine.actions = RemoteActions(engine, scheduler)
    hub = Hub(engine) if role in ("serve", "dev") and settings.live_queries else None
    engine.hub = hub
    engine.notifier = Notifier(engine, hub)
    if role in ("serve", "dev", "worker"):
        engine.index_builder = IndexBuilder(
            lambda: engine.pool,
            lambda: engine.settings.database_url,
            poll_s=settings.index_build_poll,
        )
    if role == "dev":
        engine.call_log = CallLog()
    elif settings.mode == "prod":
        engine.call_log = log_call
    if role in ("serve", "dev"):
        engine.log_stream = FunctionLogs()  # `npx convex logs`, the dashboard
    return engine


__all__ = ["build_engine"]
