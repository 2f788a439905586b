"""Health endpoints of the API listener: `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import asyncpg
from alembic.script import ScriptDirectory
from starlette.requests import Request
from starlette.responses import Response

from app.auth import AuthenticationError
from app.db.migrate import alembic_config
from app.engine import Engine
from app.engine.metrics import CONTENT_TYPE
from app.http.responses import JSONResponse, error_response


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
    """The engine's Prometheus metrics (app/engine/metrics.py); the admin key in prod."""

    async def metrics(request: Request) -> Response:
        settings = engine.settings
        if not settings.dev and not settings.metrics_public:  # prod: function names are internal
            try:
                principal = await engine.principal(request.headers.get("authorization"))
            except AuthenticationError as exc:
                return error_response(401, exc.code, str(exc))
            if not principal.is_admin:
                return error_response(
                    401, "Unauthenticated",
                    "/metrics needs the admin key (`Authorization: Convex <admin key>`) in "
                    "prod mode, or CONVECT_METRICS_PUBLIC=true",
                )  # fmt: skip
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
    """Ask PostgreSQL on a connection of the probe's own: a pool busy with the app's calls
    says nothing about the database, and must not take every pod out of the Service."""
    url = engine.settings.database_url
    if not url:
        return "error: DATABASE_URL is not set"
    try:
        rows = await asyncio.wait_for(_versions(url), READY_TIMEOUT_S)
    except TimeoutError:
        return "error: no answer within 2 s"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    checks["migrations"] = migration_state([r["version_num"] for r in rows])
    return "ok"


async def _versions(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=READY_TIMEOUT_S, statement_cache_size=0)
    try:
        rows: list[asyncpg.Record] = await conn.fetch("SELECT version_num FROM alembic_version")
        return rows
    finally:
        await conn.close(timeout=READY_TIMEOUT_S)


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
