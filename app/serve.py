"""Run the listeners (and, in dev, a worker) in one process with graceful shutdown.

On SIGTERM (or SIGINT, or `stop`):

1. the process is *draining*: `/readyz` answers 503 and every HTTP response carries
   `Connection: close`, so keep-alive clients reconnect (through the load balancer, to
   another pod);
2. after `CONVECT_DRAIN_DELAY` seconds (0 by default: on Kubernetes the `preStop` sleep
   plays that part) both listeners stop accepting;
3. the sync sockets are closed with 1012 (Service Restart): clients reconnect elsewhere,
   resubscribe, and resend unanswered mutations, which the server deduplicates;
4. in-flight HTTP calls finish (bounded by `CONVECT_SHUTDOWN_TIMEOUT`), then the process
   exits 0. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any, TypeVar

import uvicorn

from app.engine import Engine
from app.http.app import create_app
from app.http.limits import BoundedHttpToolsProtocol
from app.http.site import create_site_app
from app.settings import Settings

log = logging.getLogger("convect.serve")
T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]  # fmt: skip


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def stop_accepting(self) -> None:
        """Close the listening sockets now (uvicorn's shutdown would, one tick later)."""
        for server in getattr(self, "servers", []):
            server.close()

    async def startup(self, sockets: Any = None) -> None:
        """uvicorn exits the process when it cannot bind; stop instead (run_listeners says why)."""
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            self.should_exit = True


class CloseWhenDraining:
    """ASGI wrapper: while the engine drains, HTTP responses say `Connection: close`."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        engine = self.engine

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and engine.draining:
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a server role's main coroutine on uvloop when it is installed (as uvicorn would)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


GC_THRESHOLDS = (2000, 10, 10)  # CPython's default is (700, 10, 10); see tune_gc


def tune_gc() -> None:
    """Keep the cyclic garbage collector off a long-running server's hot path.

    Objects alive once the server has started (modules, the registry, FastAPI) are
    frozen out of collections, and young collections run about 3x less often. With the
    defaults the collector took about a tenth of the API process's CPU under load, in
    pauses of up to 100 ms (bench/README.md). Rarer still (7000, 20, 20) let cyclic garbage
    from socket churn pile up: RSS grew 165 -> 345 MiB over 30,000 sockets opened and
    closed, against 174 -> 188 MiB with these thresholds (tests/reliability). Not for
    `dev`, whose reloads would leave frozen garbage.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class ListenerConfig(uvicorn.Config):
    """uvicorn's config plus the header timeout `BoundedHttpToolsProtocol` applies."""

    def __init__(self, app: Any, *, header_timeout: float, **options: Any) -> None:
        super().__init__(app, **options)
        self.header_timeout = header_timeout


def _config(app: Any, settings: Settings, port: int) -> uvicorn.Config:
    return ListenerConfig(
        app,
        host=settings.host,
        port=port,
        lifespan="off",
        log_config=None,  # uvicorn's records go to our handler (JSON in prod)
        log_level="warning",
        access_log=False,
        http=BoundedHttpToolsProtocol,  # a request head is bounded (app/http/limits.py)
        ws="websockets-sansio",
        ws_max_size=16 * 1024 * 1024,
        ws_ping_interval=5.0,
        ws_ping_timeout=120.0,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_timeout)),
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
        header_timeout=settings.header_timeout,
        loop="none",
    )


async def run_listeners(engine: Engine, stop: asyncio.Event | None = None) -> None:
    """Serve the API and site listeners until SIGTERM/SIGINT (or `stop`), then drain."""
    settings = engine.settings
    servers = [
        _Server(_config(CloseWhenDraining(create_app(engine), engine), settings, settings.port)),
        _Server(
            _config(
                CloseWhenDraining(create_site_app(engine), engine), settings, settings.site_port
            )
        ),
    ]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: stop waiting for in-flight work
            log.warning("second signal: exiting without waiting for in-flight calls")
            for s in servers:
                s.force_exit = True
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    watcher = asyncio.create_task(_drain_on_stop(engine, servers, stop))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t.exception() is not None or not stop.is_set():
                stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    finally:
        watcher.cancel()
    for s in servers:
        if not s.started:
            raise SystemExit(
                f"error: could not listen on {settings.host}:{s.config.port}: the port is in "
                "use (another `convect dev`?); pick free ports with --port/--site-port "
                "or CONVECT_PORT/CONVECT_SITE_PORT"
            )
    log.info("shutdown complete")


async def _drain_on_stop(engine: Engine, servers: list[_Server], stop: asyncio.Event) -> None:
    """The shutdown sequence (module docstring), once `stop` is set."""
    await stop.wait()
    engine.draining = True
    delay = engine.settings.drain_delay
    log.info("draining: /readyz now answers 503; closing the listeners in %.1f s", delay)
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_forced(servers), delay)
    for s in servers:
        s.stop_accepting()
    if engine.hub is not None:
        try:
            await engine.hub.drain()
        except Exception:
            log.exception("draining the sync sockets failed")
    log.info("listeners closed; finishing in-flight calls (at most %.0f s)",
             engine.settings.shutdown_timeout)  # fmt: skip
    for s in servers:
        s.should_exit = True


async def _forced(servers: list[_Server]) -> None:
    while not any(s.force_exit for s in servers):
        await asyncio.sleep(0.05)
