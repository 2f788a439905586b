"""Run the listeners (and, in dev, a worker) in one process with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator
from typing import Any

import uvicorn

from app.http.app import create_app
from app.http.site import create_site_app
from app.server.engine import Engine
from app.settings import Settings

log = logging.getLogger("convect.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(app: Any, settings: Settings, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=5.0,
        ws_ping_timeout=120.0,
        timeout_graceful_shutdown=20,
        loop="none",
    )


async def run_listeners(engine: Engine, stop: asyncio.Event | None = None) -> None:
    """Serve the API and site listeners until SIGTERM/SIGINT (or `stop`), then drain."""
    settings = engine.settings
    servers = [
        _Server(_config(create_app(engine), settings, settings.port)),
        _Server(_config(create_site_app(engine), settings, settings.site_port)),
    ]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(s.serve()) for s in servers]

    async def watch() -> None:
        await stop.wait()
        log.info("shutting down: draining in-flight calls")
        for hook in engine.services.get("drain", []):
            await hook()
        for s in servers:
            s.should_exit = True

    watcher = asyncio.create_task(watch())
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in done:
        if t.exception() is not None or not stop.is_set():
            stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    watcher.cancel()
    for s in servers:
        if not s.started:
            raise SystemExit(
                f"Could not start listening on {settings.host}:{s.config.port} "
                "(is the port in use? set CONVECT_PORT / CONVECT_SITE_PORT or --port)"
            )
