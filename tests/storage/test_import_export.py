"""`convect export` / `convect import` and `npx convex export` / `import` carry files into
the backend the deployment keeps them in (PostgreSQL chunks or S3 objects), keeping every
`_storage` id, sha256, size and content type; a refused import leaves nothing behind."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from tests.conftest import DEMO
from tests.storage.conftest import backend_env, blob_chunks, gone, stored, stored_in, upload
from tests.storage.test_large_files import PeakRss
from tests.support.calls import action, mutation, query
from tests.support.convex_cli import CONVEX, cli_env, convex, project
from tests.support.s3 import S3Server, bucket_env
from tests.support.servers import (
    ROOT,
    ServerProcess,
    convect_env,
    create_database,
    emptied_client,
    free_port,
    run_cli,
)

MiB = 1024 * 1024
LARGE = 200 * MiB  # twice what buffering it would be allowed
MAX_IMPORT_GROWTH = 100 * MiB  # a few 8 MiB parts and their copies in the HTTP stack
FILES = [  # (bytes, content type): the first is over S3's 8 MiB parts: a multipart upload
    (os.urandom(17 * MiB + 5), "application/octet-stream"),
    (b"hello, files\n" * 100, "text/plain"),
    (b"\x89PNG" + os.urandom(3000), "image/png"),
]


async def storage_docs(database_url: str) -> dict[str, dict[str, Any]]:
    """Every `_storage` document of a deployment, by id."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch('SELECT id, doc::text FROM docs."_storage" ORDER BY id')
    finally:
        await conn.close()
    return {r["id"]: orjson.loads(r["doc"]) for r in rows}


def file_digests(zip_path: Path) -> dict[str, str]:
    """sha256 (hex) of every stored file's bytes in a Convex-format export, by entry."""
    with zipfile.ZipFile(zip_path) as zf:
        return {
            n: hashlib.sha256(zf.read(n)).hexdigest()
            for n in zf.namelist()
            if n.startswith("_storage/") and "." not in n
        }


async def cli(env: dict[str, str], *args: str) -> str:
    """Run a `convect` command that must succeed; its stderr."""
    done = await asyncio.to_thread(run_cli, env, *args, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stderr


async def target(
    backend: str,
    request: pytest.FixtureRequest,
    services: dict[str, str],
    data_dir: Path,
    name: str,
) -> dict[str, str]:
    """A new deployment of the demo app (migrated, empty) with its files in `backend`."""
    url = await create_database(services["database_url"], name)
    extra = backend_env(backend, request, name.replace("_", "-"))
    return convect_env(url, services["redis_url"], DEMO, data_dir / name, **extra)


async def assert_in_backend(env: dict[str, str], storage_ids: set[str]) -> None:
    """The files' bytes are exactly where the deployment keeps files (and nowhere else)."""
    assert await stored_in(env) == storage_ids
    if env.get("CONVECT_STORAGE") == "s3":
        assert await blob_chunks(env["DATABASE_URL"]) == 0  # not in PostgreSQL


async def store_files(client: httpx.AsyncClient) -> set[str]:
    """Upload FILES; keep the first under a name (a document that references a file)."""
    ids = [await upload(client, data, ctype) for data, ctype in FILES]
    await mutation(client, "files:save", {"name": "big", "storageId": ids[0]})
    return set(ids)


@pytest.mark.timeout(600)
async def test_convect_export_then_import_puts_the_files_in_the_configured_backend(
    demo: httpx.AsyncClient,
    demo_server: ServerProcess,
    backend: str,
    request: pytest.FixtureRequest,
    services: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    ids = await store_files(demo)
    source = await storage_docs(demo_server.env["DATABASE_URL"])
    assert set(source) == ids
    await cli(demo_server.env, "export", str(tmp_path / "a.zip"))

    env = await target(backend, request, services, data_dir, f"import_{backend}")
    said = await cli(env, "import", str(tmp_path / "a.zip"))
    assert "and 3 files" in said
    assert await storage_docs(env["DATABASE_URL"]) == source  # ids, sha256, size, type
    await assert_in_backend(env, ids)
    await cli(env, "export", str(tmp_path / "b.zip"))  # and the bytes are the same
    assert file_digests(tmp_path / "b.zip") == file_digests(tmp_path / "a.zip")
    assert len(file_digests(tmp_path / "a.zip")) == 3

    # --replace with the same export: the same files, no leftovers.
    await cli(env, "import", "--replace", str(tmp_path / "a.zip"))
    assert await storage_docs(env["DATABASE_URL"]) == source
    await assert_in_backend(env, ids)

    # --replace with an export that lacks a file: its bytes go too.
    dropped = next(i for i in ids if source[i]["size"] < MiB)
    await action(demo, "files:delete_stored", {"storageId": dropped})
    await cli(demo_server.env, "export", str(tmp_path / "c.zip"))
    await cli(env, "import", "--replace", str(tmp_path / "c.zip"))
    assert set(await storage_docs(env["DATABASE_URL"])) == ids - {dropped}
    await assert_in_backend(env, ids - {dropped})


def _tamper(src: Path, dest: Path, entry: str) -> None:
    """Copy an export, flipping one byte of one entry (same length, other sha256)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == entry:
                data = bytes([data[0] ^ 1]) + data[1:]
            zout.writestr(info, data)


@pytest.mark.timeout(600)
async def test_a_refused_import_leaves_no_file_and_no_object_behind(
    demo: httpx.AsyncClient,
    demo_server: ServerProcess,
    backend: str,
    request: pytest.FixtureRequest,
    services: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    await store_files(demo)
    await cli(demo_server.env, "export", str(tmp_path / "a.zip"))
    last = max(file_digests(tmp_path / "a.zip"))  # files load in order: the others go first
    _tamper(tmp_path / "a.zip", tmp_path / "bad.zip", last)

    env = await target(backend, request, services, data_dir, f"refused_{backend}")
    refused = await asyncio.to_thread(run_cli, env, "import", str(tmp_path / "bad.zip"))
    assert refused.returncode != 0
    assert "does not match its _storage document" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert await storage_docs(env["DATABASE_URL"]) == {}
    await assert_in_backend(env, set())  # the objects already uploaded were deleted


@pytest.mark.skipif(not CONVEX.exists(), reason="needs `make setup` (npm deps)")
@pytest.mark.timeout(600)
async def test_npx_convex_export_and_import_carry_files_through_the_configured_backend(
    demo: httpx.AsyncClient, demo_server: ServerProcess, tmp_path: Path
) -> None:
    ids = await store_files(demo)
    before = {i: (await demo.get(f"/api/storage/{i}")).content for i in ids}
    source = await storage_docs(demo_server.env["DATABASE_URL"])
    folder = project(tmp_path / "project")
    env = cli_env(demo_server.url, tmp_path)
    snap = tmp_path / "snap.zip"
    exported = await convex(folder, env, "export", "--include-file-storage", "--path", str(snap))
    assert exported.code == 0, exported.err
    assert sorted(file_digests(snap).values()) == sorted(
        hashlib.sha256(data).hexdigest() for data, _ in FILES
    )

    for storage_id in ids:  # the files go, bytes and all
        await action(demo, "files:delete_stored", {"storageId": storage_id})
        assert await gone(demo_server, storage_id)
    assert await query(demo, "files:stored") == []
    imported = await convex(folder, env, "import", "--yes", "--replace", str(snap), timeout=300)
    assert imported.code == 0, imported.err

    assert await storage_docs(demo_server.env["DATABASE_URL"]) == source
    assert ids <= await stored(demo_server)
    if demo_server.env.get("CONVECT_STORAGE") == "s3":
        for storage_id in ids:
            assert await blob_chunks(demo_server.env["DATABASE_URL"], storage_id) == 0
    for storage_id, data in before.items():
        assert (await demo.get(f"/api/storage/{storage_id}")).content == data


def _with_other_bytes(src: Path, dest: Path, entry: str, data: bytes, doc_data: bytes) -> None:
    """Copy an export with `data` as the bytes of file `entry`, and its `_storage`
    document saying the file is `doc_data` (the same for a consistent export)."""
    convex_id = entry.split("/", 1)[1]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info)
            if info.filename == entry:
                body = data
            elif info.filename == "_storage/documents.jsonl":
                lines = []
                for line in body.splitlines():
                    doc = orjson.loads(line)
                    if doc["_id"] == convex_id:
                        digest = hashlib.sha256(doc_data).digest()
                        doc["sha256"] = base64.b64encode(digest).decode()
                        doc["size"] = len(doc_data)
                    lines.append(orjson.dumps(doc))
                body = b"\n".join(lines) + b"\n"
            zout.writestr(info, body)


@pytest.mark.timeout(600)
async def test_replace_with_other_bytes_under_a_files_id_rewrites_it_and_a_refusal_does_not(
    demo: httpx.AsyncClient,
    demo_server: ServerProcess,
    backend: str,
    request: pytest.FixtureRequest,
    services: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    ids = await store_files(demo)
    await cli(demo_server.env, "export", str(tmp_path / "a.zip"))
    env = await target(backend, request, services, data_dir, f"rewrite_{backend}")
    await cli(env, "import", str(tmp_path / "a.zip"))
    entry = min(file_digests(tmp_path / "a.zip"))
    new = b"other bytes, same id" * 1000

    _with_other_bytes(tmp_path / "a.zip", tmp_path / "bad.zip", entry, new[::-1], new)
    refused = await asyncio.to_thread(
        run_cli, env, "import", "--replace", str(tmp_path / "bad.zip")
    )
    assert refused.returncode != 0 and "does not match" in refused.stderr
    await cli(env, "export", str(tmp_path / "after-refusal.zip"))  # nothing changed
    assert file_digests(tmp_path / "after-refusal.zip") == file_digests(tmp_path / "a.zip")
    await assert_in_backend(env, ids)

    _with_other_bytes(tmp_path / "a.zip", tmp_path / "b.zip", entry, new, new)
    await cli(env, "import", "--replace", str(tmp_path / "b.zip"))
    await cli(env, "export", str(tmp_path / "after.zip"))
    digests = file_digests(tmp_path / "after.zip")
    assert digests[entry] == hashlib.sha256(new).hexdigest()
    assert {k: v for k, v in digests.items() if k != entry} == {
        k: v for k, v in file_digests(tmp_path / "a.zip").items() if k != entry
    }
    await assert_in_backend(env, ids)


@pytest.mark.timeout(300)
async def test_an_import_into_a_bucket_whose_store_is_down_is_refused_and_changes_nothing(
    demo: httpx.AsyncClient,
    demo_server: ServerProcess,
    s3_server: S3Server,
    services: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    await store_files(demo)
    await cli(demo_server.env, "export", str(tmp_path / "a.zip"))
    url = await create_database(services["database_url"], "import_store_down")
    down = bucket_env(
        s3_server, "nowhere", CONVECT_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"
    )
    env = convect_env(url, services["redis_url"], DEMO, data_dir / "import_store_down", **down)
    refused = await asyncio.to_thread(run_cli, env, "import", str(tmp_path / "a.zip"))
    assert refused.returncode != 0
    assert "The object store failed" in refused.stderr, refused.stderr
    assert "nothing was imported" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert await storage_docs(url) == {}


def test_an_import_into_s3_without_a_bucket_is_a_clear_error(
    services: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "a.zip").write_bytes(b"PK")
    env = convect_env(
        services["database_url"], services["redis_url"], DEMO, data_dir / "no_bucket",
        CONVECT_STORAGE="s3",
    )  # fmt: skip
    done = run_cli(env, "import", str(tmp_path / "a.zip"))
    assert done.returncode == 1
    assert "CONVECT_STORAGE=s3 needs CONVECT_S3_BUCKET" in done.stderr


def _peak_rss_of_cli(env: dict[str, str], *args: str) -> int:
    """Run a `convect` command that must succeed; the peak RSS of its process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with PeakRss(proc.pid).sampling() as rss:
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return rss.peak


@pytest.mark.timeout(900)
async def test_importing_a_large_file_into_s3_streams_with_flat_memory(
    s3_demo_server: ServerProcess,
    s3_server: S3Server,
    services: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
) -> None:
    async with emptied_client(s3_demo_server, timeout=300) as client:
        small = await upload(client, b"small")
        await cli(s3_demo_server.env, "export", str(tmp_path / "small.zip"))
        await action(client, "files:delete_stored", {"storageId": small})
        expected = hashlib.sha256()

        async def body() -> AsyncIterator[bytes]:
            for i in range(LARGE // MiB):
                piece = hashlib.sha256(i.to_bytes(8, "big")).digest() * (MiB // 32)
                expected.update(piece)
                yield piece

        url = await mutation(client, "files:generate_upload_url")
        r = await client.post(url, content=body())
        assert r.status_code == 200, r.text
        await cli(s3_demo_server.env, "export", str(tmp_path / "large.zip"))

    peaks = {}
    for name in ("small", "large"):
        s3_server.create_bucket(f"flat-{name}")
        url = await create_database(services["database_url"], f"import_flat_{name}")
        env = convect_env(
            url, services["redis_url"], DEMO, data_dir / f"import_flat_{name}",
            **bucket_env(s3_server, f"flat-{name}"),
        )  # fmt: skip
        peaks[name] = await asyncio.to_thread(
            _peak_rss_of_cli, env, "import", str(tmp_path / f"{name}.zip")
        )
    [doc] = (await storage_docs(url)).values()
    assert doc["size"] == LARGE
    assert doc["sha256"] == base64.b64encode(expected.digest()).decode()
    assert set(await stored_in(env)) == {doc["_id"]}
    growth = peaks["large"] - peaks["small"]
    assert growth < MAX_IMPORT_GROWTH, (
        f"importing {LARGE // MiB} MiB grew RSS by {growth / MiB:.0f} MiB"
    )
