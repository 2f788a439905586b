"""Prod defaults: a weak admin key is refused, and the key is never printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import DEMO
from tests.support.servers import convect_env, create_database, run_cli, start_server


def test_serve_in_prod_refuses_an_admin_key_shorter_than_32_characters(
    services: dict[str, str], data_dir: Path
) -> None:
    url = asyncio.run(create_database(services["database_url"], "ops_weak_key"))
    env = convect_env(url, services["redis_url"], DEMO, data_dir / "ops_weak_key")
    env.update(CONVECT_MODE="prod", CONVECT_ADMIN_KEY="short-but-not-empty")
    refused = run_cli(env, "serve", timeout=60)
    assert refused.returncode != 0
    assert "CONVECT_ADMIN_KEY must be at least 32 characters in prod mode (it has 19)" in (
        refused.stderr + refused.stdout
    )


def test_dev_in_prod_mode_never_prints_the_admin_key(
    services: dict[str, str], data_dir: Path
) -> None:
    url = asyncio.run(create_database(services["database_url"], "ops_quiet_key"))
    env = convect_env(url, services["redis_url"], DEMO, data_dir / "ops_quiet_key")
    key = "a-prod-admin-key-that-must-stay-secret-0123456789"
    env.update(CONVECT_MODE="prod", CONVECT_ADMIN_KEY=key)
    server = start_server(env, data_dir / "ops_quiet_key.log", role="dev")
    try:
        printed = server.log()
        assert "Convect dev: API" in printed  # it did start and say where
        assert key not in printed and "admin key:" not in printed
    finally:
        server.stop()
