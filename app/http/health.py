"""Health endpoints of the API listener: `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from alembic.script import ScriptDirectory
from starlette.requests import Request
from starlette.responses import Response

from app.db.migrate import alembic_config
from app.engine import Engine
from app.engine.metrics import CONTENT_TYPE
from app.http.responses import JSONResponse


async def healthz(request: Request) -> Response:
    """Liveness: the process answers (never asks the database)."""
    return JSONResponse({"status": "ok"})


def make_readyz(engine: Engine) -> Any:
    """Readiness: 200 when every check passes, else 503; the body names each check."""

    async def readyz(request: Request) -> Response:
        checks = await engine_ready(engine)
        ok = all(passed(v) for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return readyz


def make_metrics(engine: Engine) -> Any:
    """The engine's Prometheus metrics (app/metrics.py)."""

    async def metrics(request: Request) -> Response:
        return Response(await engine.metrics.scrape(), media_type=CONTENT_TYPE)

    return metrics


READY_TIMEOUT_S = 2.0  # each check; kubelet's readiness probe times out after 3 s


def passed(detail: str) -> bool:
    """A readiness check's detail passes when it is `ok` or starts with `ok:`."""
    return detail == "ok" or detail.startswith("ok:")


async def engine_ready(engine: Engine) -> dict[str, str]:
    """Readiness: not draining, database reachable, migrations current (or ahead), Redis, others."""
    if engine.draining:
        return {"process": "draining for shutdown"}
    checks: dict[str, str] = {"process": "ok"}
    checks["database"], checks["redis"] = await asyncio.gather(
        _database(engine, checks), _redis(engine.settings.redis_url)
    )
    return {k: checks[k] for k in ["process", "database", "migrations", "redis"] if k in checks}


async def _database(engine: Engine, checks: dict[str, str]) -> str:
    try:
        rows = await asyncio.wait_for(
            engine.pool.fetch("SELECT version_num FROM alembic_version"), READY_TIMEOUT_S
        )
    except TimeoutError:
        return "error: no answer within 2 s"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    checks["migrations"] = migration_state([r["version_num"] for r in rows])
    return "ok"


def migration_state(versions: list[str]) -> str:
    """`ok` at this code's newest migration or ahead of it (a newer release migrated first)."""
    head, known = known_revisions()
    if versions == [head]:
        return "ok"
    if not versions:
        return f"behind: no migrations applied, this release needs {head}"
    unknown = [v for v in versions if v not in known]
    if unknown:
        return f"ok: database at {', '.join(unknown)}, ahead of this release's {head}"
    return f"behind: database at {', '.join(versions)}, this release needs {head}"


@functools.cache
def known_revisions() -> tuple[str | None, frozenset[str]]:
    """This code's newest migration and every migration it knows (read once)."""
    scripts = ScriptDirectory.from_config(alembic_config("postgresql://x/y"))
    return scripts.get_current_head(), frozenset(s.revision for s in scripts.walk_revisions())


async def _redis(url: str | None) -> str:
    if not url:
        return "error: REDIS_URL is not set"
    from redis.asyncio import Redis

    client = Redis.from_url(
        url, socket_timeout=READY_TIMEOUT_S, socket_connect_timeout=READY_TIMEOUT_S
    )
    try:
        await asyncio.wait_for(client.ping(), READY_TIMEOUT_S)
        return "ok"
    except TimeoutError:
        return "error: no answer within 2 s"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await client.aclose()
