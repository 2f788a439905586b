"""The official npm `convex` CLI and its MCP server against Convect, unmodified, with only
CONVEX_SELF_HOSTED_URL and CONVEX_SELF_HOSTED_ADMIN_KEY set."""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from app.dataio.convex_ids import IdMap
from tests.admin.conftest import ADMIN_APP
from tests.admin.test_convex_format import convex_snapshot
from tests.support.calls import call
from tests.support.convex_cli import CONVEX, Background, cli_env, convex, project
from tests.support.servers import ServerProcess, served_app, truncate_all

pytestmark = pytest.mark.skipif(not CONVEX.exists(), reason="needs `make setup` (npm deps)")


@pytest.fixture(scope="module")
def fresh_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """A second deployment of the admin app, empty: the target of the round trip."""
    with served_app(services, "admin_fresh", ADMIN_APP, data_dir / "admin_fresh") as server:
        yield server


@pytest.fixture
async def app(
    admin_server: ServerProcess, tmp_path: Path
) -> AsyncIterator[tuple[Path, dict[str, str], httpx.AsyncClient]]:
    """A Convex user's project folder pointed at the admin app, on emptied tables."""
    await truncate_all(admin_server.env["DATABASE_URL"], admin_server.url)
    folder = project(tmp_path / "project")
    async with httpx.AsyncClient(base_url=admin_server.url, timeout=30) as client:
        yield folder, cli_env(admin_server.url, tmp_path), client


async def test_data_run_and_env(app: tuple[Path, dict[str, str], httpx.AsyncClient]) -> None:
    folder, env, client = app
    added = await convex(folder, env, "run", "posts:add", '{"name": "ann", "title": "first"}')
    assert added.code == 0, added.err
    post_id = json.loads(added.out)
    assert "[LOG] 'adding first'" in added.err
    await call(client, "mutation", "posts:add", {"name": "bob", "title": "second"})
    tables, docs, oldest, internal, missing, env_set = await asyncio.gather(
        convex(folder, env, "data"),
        convex(folder, env, "data", "posts", "--format", "jsonl"),
        convex(folder, env, "data", "posts", "--limit", "1", "--order", "asc"),
        convex(folder, env, "run", "posts:secret"),
        convex(folder, env, "run", "posts:nope"),
        convex(folder, env, "env", "set", "API_KEY", "s3cret value"),
    )
    assert tables.out.split() == ["authors", "people", "posts"], tables.err
    rows = [json.loads(line.replace("n }", " }")) for line in docs.out.splitlines()]
    assert [r["title"] for r in rows] == ["second", "first"]  # newest first
    assert rows[1]["_id"] == post_id
    assert "first" in oldest.out and "second" not in oldest.out
    assert "Use the --limit option" in oldest.err
    assert internal.code == 0 and json.loads(internal.out) == "internal"  # admin: internal too
    assert missing.code == 1 and "posts:nope" in missing.err
    assert env_set.code == 0 and "Successfully set API_KEY" in env_set.err
    listed, got = await asyncio.gather(
        convex(folder, env, "env", "list"), convex(folder, env, "env", "get", "API_KEY")
    )
    assert listed.out.strip() == 'API_KEY="s3cret value"' or listed.out.strip().startswith(
        "API_KEY="
    ), listed.out
    assert got.out.strip() == "s3cret value"
    assert await call(client, "query", "env:read", {"name": "API_KEY"}) == "s3cret value"
    removed = await convex(folder, env, "env", "remove", "API_KEY")
    assert removed.code == 0 and "Successfully unset API_KEY" in removed.err
    empty, wrong_key = await asyncio.gather(
        convex(folder, env, "env", "list"),
        convex(folder, {**env, "CONVEX_SELF_HOSTED_ADMIN_KEY": "not-the-key"}, "data"),
    )
    assert "No environment variables set" in empty.err
    assert wrong_key.code != 0


async def test_run_watch_and_logs_follow_live_calls(
    app: tuple[Path, dict[str, str], httpx.AsyncClient],
) -> None:
    folder, env, client = app
    watch = await Background.start(folder, env, "run", "posts:titles", "--watch")
    logs = await Background.start(folder, env, "logs")
    try:
        await watch.wait_for("[]")
        await logs.wait_for("Watching logs", stream="err")
        await asyncio.sleep(1.0)  # the first poll takes the head of the log
        await call(client, "mutation", "posts:add", {"name": "cy", "title": "live"})
        await watch.wait_for('"live"')
        await logs.wait_for("(posts:add)] [LOG] 'adding live'")
        with pytest.raises(Exception, match="nope"):
            await call(client, "mutation", "posts:fail", {})
        await logs.wait_for("nope")
    finally:
        await watch.stop()
        await logs.stop()


async def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the app's tables and stored files, by table."""
    conn = await asyncpg.connect(url)
    try:
        out = {
            table: [
                tuple(r)
                for r in await conn.fetch(
                    f'SELECT id, creation_time, doc::text FROM docs."{table}" ORDER BY id'
                )
            ]
            for table in ("authors", "posts", "people", "_storage")
        }
        out["blobs"] = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT storage_id, string_agg(data, ''::bytea ORDER BY seq) FROM _convect_blobs "
                "GROUP BY storage_id ORDER BY storage_id"
            )
        ]
        return out
    finally:
        await conn.close()


async def test_export_and_import_round_trip_every_document_reference_and_file(
    app: tuple[Path, dict[str, str], httpx.AsyncClient],
    admin_server: ServerProcess,
    fresh_server: ServerProcess,
    tmp_path: Path,
) -> None:
    folder, env, client = app
    file_id = await call(client, "action", "posts:store_text", {"text": "file body"})
    post = await call(
        client, "mutation", "posts:add_with_file", {"name": "dee", "title": "with file",
                                                    "file": file_id},
    )  # fmt: skip
    await call(client, "mutation", "posts:add", {"name": "eve", "title": "plain"})
    exported = await convex(
        folder, env, "export", "--include-file-storage", "--path", str(tmp_path / "snap.zip")
    )
    assert exported.code == 0, exported.err
    with zipfile.ZipFile(tmp_path / "snap.zip") as zf:
        names = zf.namelist()
        assert "_tables/documents.jsonl" in names and "posts/documents.jsonl" in names
        assert sum(n.startswith("_storage/") for n in names) == 2  # metadata and one file
        line = next(
            orjson.loads(x)
            for x in zf.read("posts/documents.jsonl").splitlines()
            if b"with file" in x
        )
        assert line["count"] == 7 and line["_id"] != post  # Convex ids in Convex's format

    fresh = cli_env(fresh_server.url, tmp_path)
    await truncate_all(fresh_server.env["DATABASE_URL"], fresh_server.url)
    imported = await convex(folder, fresh, "import", "--yes", str(tmp_path / "snap.zip"))
    assert imported.code == 0, imported.err
    assert "Added 5 documents" in imported.err  # 2 authors, 2 posts, 1 stored file
    assert await rows(admin_server.env["DATABASE_URL"]) == await rows(
        fresh_server.env["DATABASE_URL"]
    )
    async with httpx.AsyncClient(base_url=fresh_server.url) as other:
        assert await call(other, "query", "posts:author_of", {"id": post}) == "dee"

    again = await convex(folder, fresh, "import", "--yes", str(tmp_path / "snap.zip"))
    assert again.code == 1 and "already holds" in again.err  # nothing changed
    replaced = await convex(
        folder, fresh, "import", "--yes", "--replace", str(tmp_path / "snap.zip")
    )
    assert replaced.code == 0, replaced.err

    built = convex_snapshot(tmp_path / "by-hand.zip")
    handmade = await convex(
        folder, fresh, "import", "--yes", "--append", str(tmp_path / "by-hand.zip")
    )
    assert handmade.code == 0, handmade.err
    id_map = IdMap({"authors": 10001, "posts": 10002})
    async with httpx.AsyncClient(base_url=fresh_server.url) as other:
        by_hand = id_map.to_convect(str(built["post"]))
        assert await call(other, "query", "posts:author_of", {"id": by_hand}) == "ann"


async def test_table_imports_from_csv_jsonl_and_json(
    app: tuple[Path, dict[str, str], httpx.AsyncClient], tmp_path: Path
) -> None:
    folder, env, _ = app
    (tmp_path / "people.csv").write_text("name,age\nann,31\nbob,unknown\n")
    (tmp_path / "more.jsonl").write_text('{"name": "cy", "n": {"$integer": "AQAAAAAAAAA="}}\n')
    (tmp_path / "all.json").write_text('[{"name": "di"}, {"name": "ed"}]')
    first = await convex(folder, env, "import", "--yes", "--table", "people",
                         str(tmp_path / "people.csv"))  # fmt: skip
    assert first.code == 0 and "Added 2 documents" in first.err, first.err
    refused = await convex(folder, env, "import", "--yes", "--table", "people",
                           str(tmp_path / "more.jsonl"))  # fmt: skip
    assert refused.code == 1 and "already holds 2 documents" in refused.err
    appended = await convex(folder, env, "import", "--yes", "--append", "--table", "people",
                            str(tmp_path / "more.jsonl"))  # fmt: skip
    assert appended.code == 0, appended.err
    data = await convex(folder, env, "data", "people", "--format", "jsonl", "--order", "asc")
    lines = data.out.splitlines()
    assert '"age": 31' in lines[0] and '"age": "unknown"' in lines[1]
    assert '"n": 1n' in lines[2]  # int64
    replaced = await convex(folder, env, "import", "--yes", "--replace", "--table", "people",
                            str(tmp_path / "all.json"))  # fmt: skip
    assert replaced.code == 0, replaced.err
    names = await convex(folder, env, "data", "people", "--format", "jsonl")
    assert len(names.out.splitlines()) == 2


async def test_deploy_and_dev_name_convect_and_what_to_use(
    app: tuple[Path, dict[str, str], httpx.AsyncClient],
) -> None:
    folder, env, _ = app
    deployed, dev = await asyncio.gather(
        convex(folder, env, "deploy", "--yes", "--typecheck", "disable", "--codegen", "disable"),
        convex(folder, env, "dev", "--once", "--typecheck", "disable"),
    )
    for result in (deployed, dev):
        assert result.code == 1
        assert "This is a Convect deployment" in result.err, result.err
        assert "convect deploy" in result.err
