"""`convect export`/`import`: environment variables only on request, table files, Convex zips."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import asyncpg
import httpx

from tests.admin.conftest import ADMIN_APP
from tests.admin.test_convex_format import convex_snapshot
from tests.support.servers import (
    ADMIN_KEY,
    ServerProcess,
    convect_env,
    create_database,
    run_cli,
)

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}


async def test_environment_variables_are_exported_only_on_request(
    admin_server: ServerProcess, services: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=admin_server.url) as client:
        changes = [{"name": "SECRET", "value": "hush"}]
        r = await client.post(
            "/api/update_environment_variables", json={"changes": changes}, headers=ADMIN
        )
        assert r.status_code == 200
        try:
            plain = await asyncio.to_thread(
                run_cli, admin_server.env, "export", str(tmp_path / "plain.zip")
            )
            full = await asyncio.to_thread(
                run_cli, admin_server.env, "export", "--include-env", str(tmp_path / "env.zip")
            )
        finally:
            changes = [{"name": "SECRET", "value": None}]
            await client.post(
                "/api/update_environment_variables", json={"changes": changes}, headers=ADMIN
            )
    assert plain.returncode == 0 and full.returncode == 0, plain.stderr + full.stderr
    assert "1 environment variable" in full.stderr
    with zipfile.ZipFile(tmp_path / "plain.zip") as zf:
        assert not any("environment" in n for n in zf.namelist())
        assert b"hush" not in b"".join(zf.read(n) for n in zf.namelist())
    with zipfile.ZipFile(tmp_path / "env.zip") as zf:
        assert b"hush" in zf.read("_convect/environment_variables.jsonl")

    url = await create_database(services["database_url"], "admin_env_import")
    env = convect_env(url, services["redis_url"], ADMIN_APP, data_dir / "admin_env_import")
    done = await asyncio.to_thread(run_cli, env, "import", str(tmp_path / "env.zip"))
    assert done.returncode == 0, done.stderr
    assert "1 environment variable set" in done.stderr
    listed = await asyncio.to_thread(run_cli, env, "env", "list")
    assert listed.stdout.splitlines() == ["SECRET=hush"]


async def test_convect_import_takes_table_files_and_convex_zips(
    services: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    url = await create_database(services["database_url"], "admin_table_import")
    env = convect_env(url, services["redis_url"], ADMIN_APP, data_dir / "admin_table_import")
    (tmp_path / "people.csv").write_text("name,age\nann,31\n")
    (tmp_path / "people.txt").write_text("x")
    done = await asyncio.to_thread(
        run_cli, env, "import", "--table", "people", str(tmp_path / "people.csv")
    )
    assert done.returncode == 0, done.stderr
    unknown = await asyncio.to_thread(
        run_cli, env, "import", "--table", "people", str(tmp_path / "people.txt")
    )
    assert unknown.returncode != 0 and "--format must be" in unknown.stderr
    convex_snapshot(tmp_path / "convex.zip")
    from_convex = await asyncio.to_thread(run_cli, env, "import", str(tmp_path / "convex.zip"))
    assert from_convex.returncode == 0, from_convex.stderr
    conn = await asyncpg.connect(url)
    try:
        person = await conn.fetchval('SELECT doc::text FROM docs."people"')
        posts = await conn.fetchval('SELECT count(*) FROM docs."posts"')
    finally:
        await conn.close()
    assert '"age": 31.0' in person and posts == 1
