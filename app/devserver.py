"""Process roles: serve, dev (serve + worker + reload), and one-off calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import orjson

from app.auth import Principal
from app.compose import build_engine
from app.db import deploys
from app.db.deploy import SchemaRefused, push_schema
from app.devlog import describe_load_error
from app.engine import Engine
from app.engine.registry import _SKIP_DIRS, PACKAGE, Registry, load_registry
from app.scheduler import WorkerOptions, run_worker
from app.serve import run_listeners, tune_gc
from app.settings import Settings
from app.values import decode_value, encode_value

log = logging.getLogger("convect.dev")


async def run_serve(
    settings: Settings, registry: Registry, *, stop: asyncio.Event | None = None
) -> None:
    """Start an engine and serve both listeners until stopped."""
    async with build_engine(settings, registry, "serve") as engine:
        tune_gc()
        await run_listeners(engine, stop)


def _is_module(folder: Path, path: str) -> bool:
    """True for the app's module files (not caches, generated code or hidden folders)."""
    if not path.endswith(".py"):
        return False
    try:
        rel = Path(path).resolve().relative_to(folder)
    except ValueError:
        return False
    return not any(p in _SKIP_DIRS or p.startswith(".") for p in rel.parts[:-1])


def _app_modules() -> dict[str, Any]:
    return {n: m for n, m in sys.modules.items() if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _restore(saved: dict[str, Any]) -> None:
    """Put the last good version's modules back (a failed load purged them)."""
    for name in _app_modules():
        del sys.modules[name]
    sys.modules.update(saved)


def _schema_json(registry: Registry) -> Any:
    return registry.schema.to_json() if registry.schema is not None else None


async def reload_functions(engine: Engine) -> bool:
    """Load the functions folder again, push a changed schema, swap the engine over.

    On any error the last good version keeps serving and the error is logged (with
    file and line); returns whether the new version is live.
    """
    folder = engine.registry.folder
    saved = _app_modules()
    try:
        registry = load_registry(folder)
    except Exception as exc:
        _restore(saved)
        log.error(
            "reload failed; still serving the last good version:\n%s",
            describe_load_error(exc, folder),
        )
        return False
    if _schema_json(registry) != _schema_json(engine.registry):
        try:
            assert engine.settings.database_url is not None
            report = await push_schema(
                engine.settings.database_url, registry.schema, say=lambda m: log.info("  %s", m)
            )
        except SchemaRefused as exc:
            _restore(saved)
            log.error("schema push refused; still serving the last good version:\n%s", exc)
            return False
        except Exception as exc:
            _restore(saved)
            log.error("schema push failed; still serving the last good version: %s", exc)
            return False
        for line in report.lines():
            log.info("schema: %s", line)
    await engine.reload(registry)
    log.info("reloaded %d functions from %s", len(registry.functions), folder)
    await _record_reload(engine, registry)
    return True


async def _record_reload(engine: Engine, registry: Registry) -> None:
    """Add a reload that changed tables, indexes or signatures to the deploy history."""
    try:
        async with engine.connection() as conn:
            after = deploys.snapshot(registry.schema, registry.functions)
            done = await deploys.record(conn, after, "dev", always=False)
    except Exception as exc:  # the history is for people; the new code serves anyway
        log.warning("could not record the reload in the deploy history: %s", exc)
        return
    if done is not None:
        for line in deploys.lines(done["changes"]):
            log.info("deploy: %s", line)


async def _watch(engine: Engine, stop: asyncio.Event) -> None:
    """Reload functions and schema when a module of the functions folder changes."""
    from watchfiles import awatch

    folder = engine.registry.folder
    async for _changes in awatch(
        folder,
        stop_event=stop,
        debounce=200,
        recursive=True,
        watch_filter=lambda _change, path: _is_module(folder, path),
    ):
        try:
            await reload_functions(engine)
        except Exception:
            log.exception("reload failed; still serving the last good version")


async def run_dev(settings: Settings, registry: Registry, *, worker: bool = True) -> None:
    """Serve with reload on changes (and a scheduler worker when available)."""
    engine = build_engine(settings, registry, "dev")
    await engine.start()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(engine, stop))
    scheduler = asyncio.create_task(run_worker(engine, stop)) if worker else None
    try:
        await run_listeners(engine, stop)
    finally:
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        if scheduler is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await scheduler
        await engine.stop()


async def run_worker_process(
    settings: Settings, registry: Registry, options: WorkerOptions | None = None
) -> None:
    """`convect worker`: start an engine and run scheduled functions until SIGTERM/SIGINT."""
    async with build_engine(settings, registry, "worker") as engine:
        tune_gc()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_worker(engine, stop, options)


async def run_once(settings: Settings, registry: Registry, path: str, args: dict[str, Any]) -> int:
    """Call one function as admin; print the result; return the exit code."""
    async with build_engine(settings, registry, "cli") as engine:
        outcome = await engine.call(path, decode_value(args), Principal(None, True), None)
    for line in outcome.log_lines:
        print(line, file=sys.stderr)
    if outcome.error is not None:
        print(outcome.error.message, file=sys.stderr)
        if outcome.error.is_convex_error:
            print(orjson.dumps(encode_value(outcome.error.data)).decode(), file=sys.stderr)
        return 1
    print(orjson.dumps(outcome.value, option=orjson.OPT_INDENT_2).decode())
    return 0
