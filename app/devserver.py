"""Process roles: serve, dev (serve + worker + reload), and one-off calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import orjson

from app.serve import run_listeners
from app.server.engine import Engine
from app.server.registry import Registry, RegistryError, load_registry
from app.services import install_services
from app.settings import Settings

log = logging.getLogger("convect.dev")


async def run_serve(settings: Settings, registry: Registry, *, stop: asyncio.Event | None = None) -> None:
    """Start an engine and serve both listeners until stopped."""
    engine = Engine(settings, registry)
    install_services(engine, role="serve")
    await engine.start()
    try:
        await run_listeners(engine, stop)
    finally:
        await engine.stop()


async def _watch(engine: Engine, stop: asyncio.Event) -> None:
    """Reload functions and schema when the functions folder changes."""
    from watchfiles import awatch

    from app.db.deploy import SchemaRefused, push_schema

    folder = engine.registry.folder
    async for changes in awatch(folder, stop_event=stop, debounce=200, recursive=True):
        if not any(str(path).endswith(".py") for _, path in changes):
            continue
        try:
            registry = load_registry(folder)
        except RegistryError as exc:
            log.error("reload failed; still serving the last good version:\n%s", exc)
            continue
        try:
            assert engine.settings.database_url is not None
            report = await push_schema(engine.settings.database_url, registry.schema)
            for line in report.lines():
                log.info("schema: %s", line)
        except SchemaRefused as exc:
            log.error("schema push refused; still serving the last good version:\n%s", exc)
            continue
        await engine.reload(registry)
        log.info("reloaded %d functions from %s", len(registry.functions), folder)


async def run_dev(settings: Settings, registry: Registry, *, worker: bool = True) -> None:
    """Serve with reload on changes (and a scheduler worker when available)."""
    engine = Engine(settings, registry)
    install_services(engine, role="dev" if worker else "serve")
    await engine.start()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(engine, stop))
    try:
        await run_listeners(engine, stop)
    finally:
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        await engine.stop()


async def run_once(settings: Settings, registry: Registry, path: str, args: dict[str, Any]) -> int:
    """Call one function as admin; print the result; return the exit code."""
    from app.auth import Principal
    from app.values import decode_value

    engine = Engine(settings, registry)
    install_services(engine, role="cli")
    await engine.start()
    try:
        outcome = await engine.call(path, decode_value(args), Principal(None, True), None)
    finally:
        await engine.stop()
    for line in outcome.log_lines:
        print(line, file=sys.stderr)
    if outcome.error is not None:
        print(outcome.error.message, file=sys.stderr)
        if outcome.error.is_convex_error:
            from app.values import encode_value

            print(orjson.dumps(encode_value(outcome.error.data)).decode(), file=sys.stderr)
        return 1
    print(orjson.dumps(outcome.value, option=orjson.OPT_INDENT_2).decode())
    return 0
