"""An engine starts on a database that has no environment-variable table yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.compose import build_engine
from app.db import migrate
from app.engine.registry import load_registry
from app.envvars import EnvVars
from app.settings import Settings
from tests.admin.conftest import ADMIN_APP
from tests.support.servers import empty_database


async def test_an_engine_starts_before_the_table_is_migrated(
    services: dict[str, str], tmp_path: Path
) -> None:
    url = await empty_database(services["database_url"], "envvars_before_0006")
    await asyncio.to_thread(migrate.upgrade, url, "0005")
    settings = Settings(database_url=url, redis_url=services["redis_url"], data_dir=str(tmp_path))
    engine = build_engine(settings, load_registry(ADMIN_APP), "worker")
    async with engine:
        assert isinstance(engine.env, EnvVars) and engine.env.values == {}
        await asyncio.to_thread(migrate.upgrade, url)
        await engine.env.refresh()
        assert engine.env.values == {}
