"""A damaged or hand-edited export is refused with a clear message and changes nothing."""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from app.dataio import ExportFormatError, ImportRefused, import_deployment
from app.db import ids
from tests.support.servers import create_database

SCHEMA = {
    "tables": {
        "notes": {
            "validator": {"type": "object", "fields": {"text": {"type": "string"}}},
            "indexes": {"by_text": ["text"]},
            "searchIndexes": {},
            "vectorIndexes": {},
        }
    },
    "schemaValidation": True,
}


def note(text: Any, table: str = "notes") -> dict[str, Any]:
    return {"_id": ids.new_id(table), "_creationTime": time.time() * 1000, "text": text}


def stored(data: bytes) -> dict[str, Any]:
    return {
        "_id": ids.new_id("_storage"),
        "_creationTime": time.time() * 1000,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": float(len(data)),
    }


def make_export(
    path: Path,
    tables: dict[str, list[Any]],
    files: dict[str, bytes] | None = None,
    *,
    counts: dict[str, int] | None = None,
    manifest: bool = True,
) -> Path:
    """Write an export zip by hand (documents as dicts, or raw bytes lines)."""
    files = files or {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("schema.json", orjson.dumps(SCHEMA))
        for table, docs in tables.items():
            lines = [d if isinstance(d, bytes) else orjson.dumps(d) for d in docs]
            zf.writestr(f"tables/{table}.jsonl", b"".join(line + b"\n" for line in lines))
        for storage_id, data in files.items():
            zf.writestr(f"files/{storage_id}", data)
        if manifest:
            described = {t: {"documents": (counts or {}).get(t, len(d))} for t, d in tables.items()}
            zf.writestr(
                "manifest.json",
                orjson.dumps(
                    {
                        "format": "convect-export",
                        "version": 1,
                        "exportedAt": 0,
                        "tables": described,
                        "files": {"count": len(files), "bytes": sum(map(len, files.values()))},
                    }
                ),
            )
    return path


@pytest.fixture(scope="module")
def target(services: dict[str, str], data_dir: Path) -> str:
    """A deployment holding one note and one file, imported from a hand-made export."""
    import asyncio

    url = asyncio.run(create_database(services["database_url"], "dx_refusals"))
    data = b"the stored bytes"
    meta = stored(data)
    path = make_export(
        data_dir / "dx-good.zip", {"notes": [note("kept")], "_storage": [meta]}, {meta["_id"]: data}
    )
    summary = asyncio.run(import_deployment(url, path))
    assert summary.tables == {"notes": 1, "_storage": 1} and summary.files == 1
    assert summary.created_tables == ["notes"] and summary.schema_written
    return url


async def state(url: str) -> tuple[Any, ...]:
    conn = await asyncpg.connect(url)
    try:
        return (
            await conn.fetch('SELECT id, doc::text FROM docs."notes" ORDER BY id'),
            await conn.fetch('SELECT id FROM docs."_storage" ORDER BY id'),
            await conn.fetchval("SELECT count(*) FROM _convect_blobs"),
            await conn.fetch("SELECT name FROM _convect_tables ORDER BY name"),
            await conn.fetchval("SELECT count(*) FROM _convect_commits"),
        )
    finally:
        await conn.close()


async def refused(url: str, path: Path, error: type[Exception], match: str) -> None:
    """Import `path` (append mode): it must fail with `match` and leave everything as it was."""
    before = await state(url)
    with pytest.raises(error, match=match):
        await import_deployment(url, path, mode="append")
    assert await state(url) == before


async def test_an_export_that_is_not_a_zip_or_lacks_its_manifest_is_refused(
    target: str, data_dir: Path
) -> None:
    junk = data_dir / "dx-junk.zip"
    junk.write_bytes(b"not a zip at all")
    await refused(target, junk, ExportFormatError, "is not a readable zip file")
    bare = make_export(data_dir / "dx-bare.zip", {"notes": [note("x")]}, manifest=False)
    await refused(target, bare, ExportFormatError, "has no manifest.json")


async def test_documents_that_do_not_belong_are_refused_with_their_line(
    target: str, data_dir: Path
) -> None:
    cases: list[tuple[list[Any], str]] = [
        (
            [note("ok"), note("x", table="messages")],
            r"line 2: _id '\w+' is not an id of table notes",
        ),
        ([note(5)], r"line 1: document \w+ does not match the deployment's schema"),
        ([b'{"_id": "broken'], r"line 1: not valid JSON"),
        ([{**note("x"), "_creationTime": "yesterday"}], r"_creationTime 'yesterday' is not a time"),
        ([{**note("x"), "$bad": 1}], r"line 1: .*field names must not start with '\$'"),
        ([note("x" * (5 * 1024 * 1024))], r"line 1: the document is larger than"),
        ([note("kept again"), b"[]"], r"line 2: expected a document"),
    ]
    for i, (docs, match) in enumerate(cases):
        path = make_export(data_dir / f"dx-bad-{i}.zip", {"notes": docs})
        await refused(target, path, ImportRefused, match)


async def test_a_manifest_that_does_not_match_the_zip_is_refused(
    target: str, data_dir: Path
) -> None:
    short = make_export(
        data_dir / "dx-count.zip", {"notes": [note("a"), note("b")]}, counts={"notes": 3}
    )
    await refused(target, short, ExportFormatError, "holds 2 documents but the manifest says 3")
    evil = make_export(data_dir / "dx-evil.zip", {"../evil": []})
    await refused(target, evil, ExportFormatError, "names an invalid table")


async def test_files_must_match_their_storage_documents(target: str, data_dir: Path) -> None:
    data = b"file bytes"
    meta = stored(data)
    wrong = make_export(data_dir / "dx-f1.zip", {"_storage": [meta]}, {meta["_id"]: b"other"})
    await refused(target, wrong, ImportRefused, "does not match its _storage document")
    orphan = make_export(data_dir / "dx-f2.zip", {"_storage": []}, {meta["_id"]: data})
    await refused(target, orphan, ImportRefused, "belongs to no _storage document")
    missing = make_export(data_dir / "dx-f3.zip", {"_storage": [meta]})
    await refused(target, missing, ImportRefused, "lacks the bytes of 1 stored file")


async def test_append_refuses_an_existing_id_and_the_default_refuses_a_full_table(
    target: str, data_dir: Path
) -> None:
    conn = await asyncpg.connect(target)
    try:
        [kept] = await conn.fetch('SELECT doc::text FROM docs."notes"')
    finally:
        await conn.close()
    again = make_export(data_dir / "dx-again.zip", {"notes": [orjson.loads(kept["doc"])]})
    await refused(target, again, ImportRefused, "a document id is already taken")
    before = await state(target)
    with pytest.raises(ImportRefused, match="table notes already holds 1 documents"):
        await import_deployment(target, again)
    assert await state(target) == before
