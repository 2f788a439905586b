"""`convect deploy`: creates tables and indexes, refuses destructive pushes unless --force."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from app.db import ids
from app.schema import define_table
from app.values import v
from tests.core.dbcheck import table_docs, table_names
from tests.support.servers import ROOT, convect_env, create_database, run_cli

SCHEMA = """
from app.schema import define_schema, define_table
from app.values import v

schema = define_schema({{
{tables}
}})
"""
NOTES_TEXT = '    "notes": define_table({"text": v.string()}).index("by_text", ["text"]),'
NOTES_NUMBER = '    "notes": define_table({"text": v.number()}).index("by_text", ["text"]),'
TAGS = '    "tags": define_table({"name": v.string()}).index("by_name", ["name"]),'
FUNCTIONS = """
from app.server import mutation
from app.values import v


@mutation(args={"text": v.string()})
async def add(ctx, args):
    return await ctx.db.insert("notes", {"text": args["text"]})
"""


def app_folder(root: Path, name: str, *tables: str) -> Path:
    """A functions folder whose schema has `tables` (and a notes:add mutation)."""
    folder = root / name
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA.format(tables="\n".join(tables)))
    (folder / "notes.py").write_text(FUNCTIONS)
    return folder


@pytest.fixture
async def fresh_db(services: dict[str, str], tmp_path: Path) -> str:
    """A new, migrated database for one test."""
    return await create_database(services["database_url"], f"deploy_{tmp_path.name[-24:]}")


def deploy(
    services: dict[str, str], db: str, folder: Path, tmp: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    """Run `convect deploy` for `folder` against `db`."""
    env = convect_env(db, services["redis_url"], folder, tmp / "data")
    return run_cli(env, "deploy", *flags)


async def indexes(db: str) -> set[str]:
    """Names of the app indexes in the docs schema."""
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = 'docs'")
    finally:
        await conn.close()
    return {r["indexname"] for r in rows}


async def put_note(db: str, text: object) -> str:
    """Write a notes document straight into the table; return its id."""
    doc_id = ids.new_id("notes")
    doc = {"text": text, "_id": doc_id, "_creationTime": 1_700_000_000_000.0}
    conn = await asyncpg.connect(db)
    try:
        await conn.execute(
            'INSERT INTO docs."notes" (id, creation_time, doc) VALUES ($1, $2, $3::jsonb)',
            doc_id,
            doc["_creationTime"],
            orjson.dumps(doc).decode(),
        )
    finally:
        await conn.close()
    return doc_id


async def test_deploy_creates_tables_and_indexes_and_a_second_run_does_nothing(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "v1", NOTES_TEXT, TAGS)
    first = deploy(services, fresh_db, folder, tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "schema: created table notes" in first.stdout
    assert "schema: created index notes.by_text" in first.stdout
    assert {"notes", "tags"} <= await table_names(fresh_db)
    assert {"notes__by_text", "tags__by_name", "notes__by_creation_time"} <= await indexes(fresh_db)
    again = deploy(services, fresh_db, folder, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "schema: schema up to date" in again.stdout
    assert "created" not in again.stdout


async def test_deploy_refuses_a_schema_that_existing_documents_violate(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    v1 = app_folder(tmp_path, "v1", NOTES_TEXT)
    assert deploy(services, fresh_db, v1, tmp_path).returncode == 0
    env = convect_env(fresh_db, services["redis_url"], v1, tmp_path / "data")
    added = run_cli(env, "run", "notes:add", '{"text": "hello"}')
    assert added.returncode == 0, added.stderr + added.stdout
    note_id = orjson.loads(added.stdout.strip().splitlines()[-1])
    assert ids.is_id_for(note_id, "notes")

    v2 = app_folder(tmp_path, "v2", NOTES_NUMBER, TAGS)
    refused = deploy(services, fresh_db, v2, tmp_path)
    assert refused.returncode != 0
    report = refused.stderr + refused.stdout
    assert "Schema push refused" in report
    assert f"notes document {note_id} does not match the schema" in report
    assert "--force" in report
    # Nothing was changed: no new table, the stored schema is still v1's.
    assert "tags" not in await table_names(fresh_db)
    conn = await asyncpg.connect(fresh_db)
    try:
        stored = orjson.loads(await conn.fetchval("SELECT schema::text FROM _convect_schema"))
    finally:
        await conn.close()
    assert (
        stored["tables"]["notes"]
        == define_table({"text": v.string()}).index("by_text", ["text"]).to_json()
    )

    forced = deploy(services, fresh_db, v2, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr + forced.stdout
    assert "tags" in await table_names(fresh_db)
    assert [d["_id"] for d in await table_docs(fresh_db, "notes")] == [note_id]


async def test_deploy_refuses_to_drop_a_table_with_data_unless_forced(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    v1 = app_folder(tmp_path, "v1", NOTES_TEXT, TAGS)
    assert deploy(services, fresh_db, v1, tmp_path).returncode == 0
    await put_note(fresh_db, "keep me")
    v2 = app_folder(tmp_path, "v2", TAGS)
    refused = deploy(services, fresh_db, v2, tmp_path)
    assert refused.returncode != 0
    report = refused.stderr + refused.stdout
    assert "table notes holds documents but is not in the schema" in report
    assert [d["text"] for d in await table_docs(fresh_db, "notes")] == ["keep me"]
    # An empty table may go without --force.
    v3 = app_folder(tmp_path, "v3", NOTES_TEXT)
    dropped_empty = deploy(services, fresh_db, v3, tmp_path)
    assert dropped_empty.returncode == 0, dropped_empty.stderr
    assert "dropped table tags" in dropped_empty.stdout
    forced = deploy(services, fresh_db, v2, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr + forced.stdout
    assert "dropped table notes" in forced.stdout
    assert "notes" not in await table_names(fresh_db)


async def test_two_concurrent_deploys_both_succeed_and_the_second_finds_nothing_to_do(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "v1", NOTES_TEXT, TAGS)
    env = convect_env(fresh_db, services["redis_url"], folder, tmp_path / "data")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "deploy"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, None, 120) for p in procs))
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err + out
    stdouts = sorted((out for out, _ in outputs), key=lambda o: "created" in o)
    assert "schema: schema up to date" in stdouts[0] and "created" not in stdouts[0]
    assert "schema: created table notes" in stdouts[1]
    assert {"notes__by_text", "tags__by_name"} <= await indexes(fresh_db)


async def test_an_index_whose_fields_change_under_the_same_name_is_rebuilt(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    wide = '    "notes": define_table({"text": v.string(), "n": v.optional(v.number())}).index("by_text", ["text"]),'
    moved = '    "notes": define_table({"text": v.string(), "n": v.optional(v.number())}).index("by_text", ["n", "text"]),'
    first = deploy(services, fresh_db, app_folder(tmp_path, "f1", wide), tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    second = deploy(services, fresh_db, app_folder(tmp_path, "f2", moved), tmp_path)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "created index notes.by_text" in second.stdout
    conn = await asyncpg.connect(fresh_db)
    try:
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'docs' AND indexname = 'notes__by_text'"
        )
    finally:
        await conn.close()
    assert definition.index('"k:n"') < definition.index('"k:text"')
    third = deploy(services, fresh_db, app_folder(tmp_path, "f3", moved), tmp_path)
    assert "schema: schema up to date" in third.stdout


async def test_an_index_left_invalid_by_a_failed_build_is_rebuilt(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "inv", NOTES_TEXT)
    assert deploy(services, fresh_db, folder, tmp_path).returncode == 0
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'docs.notes__by_text'::regclass"
        )
        again = deploy(services, fresh_db, folder, tmp_path)
        assert again.returncode == 0, again.stderr + again.stdout
        assert "invalid" in again.stdout
        valid = await conn.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'docs.notes__by_text'::regclass"
        )
    finally:
        await conn.close()
    assert valid is True


async def key_columns(db: str, table: str) -> set[str]:
    """The generated key columns of a docs table."""
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname LIKE 'k:%'",
            f'docs."{table}"',
        )
    finally:
        await conn.close()
    return {r["attname"] for r in rows}


async def test_an_index_added_to_a_table_with_documents_gets_a_key_column_and_finds_them(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    plain = '    "notes": define_table({"text": v.string()}),'
    assert deploy(services, fresh_db, app_folder(tmp_path, "a", plain), tmp_path).returncode == 0
    assert await key_columns(fresh_db, "notes") == set()
    doc_id = await put_note(fresh_db, "hello")
    second = deploy(services, fresh_db, app_folder(tmp_path, "b", NOTES_TEXT), tmp_path)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "adding key columns text to notes" in second.stdout
    assert await key_columns(fresh_db, "notes") == {"k:text"}
    conn = await asyncpg.connect(fresh_db)
    try:
        found = await conn.fetchval(
            'SELECT id FROM docs."notes" WHERE "k:text" = \'"hello"\'::jsonb'
        )
    finally:
        await conn.close()
    assert found == doc_id
    # Removing the index removes its key column; the documents stay.
    third = deploy(services, fresh_db, app_folder(tmp_path, "c", plain), tmp_path)
    assert third.returncode == 0, third.stderr + third.stdout
    assert await key_columns(fresh_db, "notes") == set()
    assert len(await table_docs(fresh_db, "notes")) == 1


async def test_an_expression_index_from_an_older_deploy_is_rebuilt_on_key_columns(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "old", NOTES_TEXT)
    assert deploy(services, fresh_db, folder, tmp_path).returncode == 0
    conn = await asyncpg.connect(fresh_db)
    try:
        # What deploy built before key columns existed: an index on an expression.
        await conn.execute('DROP INDEX docs."notes__by_text"')
        await conn.execute(
            'CREATE INDEX "notes__by_text" ON docs."notes" '
            "((doc -> 'text') NULLS FIRST, creation_time, id)"
        )
        again = deploy(services, fresh_db, folder, tmp_path)
        assert again.returncode == 0, again.stderr + again.stdout
        assert "rebuilding index notes__by_text on key columns" in again.stdout
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'notes__by_text'"
        )
    finally:
        await conn.close()
    assert '"k:text"' in definition and "doc ->" not in definition


async def test_an_update_that_keeps_indexed_fields_is_hot(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    """Updates that leave every indexed value alone add no index entries (HOT), which
    is what keeps concurrent SERIALIZABLE writers from conflicting on index pages."""
    wide = '    "notes": define_table({"text": v.string(), "n": v.optional(v.number())}).index("by_text", ["text"]),'
    assert deploy(services, fresh_db, app_folder(tmp_path, "hot", wide), tmp_path).returncode == 0
    doc_id = await put_note(fresh_db, "same")
    conn = await asyncpg.connect(fresh_db)
    try:
        for n in range(20):
            doc = {"text": "same", "n": n, "_id": doc_id, "_creationTime": 1_700_000_000_000.0}
            await conn.execute(
                'UPDATE docs."notes" SET doc = $2::jsonb WHERE id = $1',
                doc_id,
                orjson.dumps(doc).decode(),
            )
        await conn.execute("SELECT pg_stat_force_next_flush()")
        hot = await conn.fetchval(
            "SELECT n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE schemaname = 'docs' AND relname = 'notes'"
        )
    finally:
        await conn.close()
    assert hot >= 15  # a page that fills up forces the odd non-HOT update


async def test_key_columns_generated_without_sort_keys_are_regenerated(
    services: dict[str, str], fresh_db: str, tmp_path: Path
) -> None:
    folder = app_folder(tmp_path, "sk", NOTES_TEXT)
    assert deploy(services, fresh_db, folder, tmp_path).returncode == 0
    await put_note(fresh_db, "kept")
    conn = await asyncpg.connect(fresh_db)
    try:
        # What the first key-column deploys built: the raw value, not its sort key.
        await conn.execute('ALTER TABLE docs."notes" DROP COLUMN "k:text"')
        await conn.execute(
            'ALTER TABLE docs."notes" ADD COLUMN "k:text" jsonb '
            "GENERATED ALWAYS AS (doc -> 'text') STORED"
        )
        await conn.execute(
            'CREATE INDEX "notes__by_text" ON docs."notes" ("k:text" NULLS FIRST, creation_time, id)'
        )
        again = deploy(services, fresh_db, folder, tmp_path)
        assert again.returncode == 0, again.stderr + again.stdout
        assert "regenerating key columns of notes" in again.stdout
        # Added again to a table with documents: filled by a trigger (app.db.key_fill).
        expr = await conn.fetchval(
            "SELECT p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = 'docs.notes'::regclass AND t.tgname = 'k:text'"
        )
        stale = await conn.fetchval(
            """SELECT count(*) FROM docs."notes" WHERE "k:text" IS DISTINCT FROM """
            "convect_sort_key(doc -> 'text')"
        )
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'notes__by_text'"
        )
    finally:
        await conn.close()
    assert "convect_sort_key" in expr and stale == 0
    assert definition is not None and '"k:text"' in definition
    assert len(await table_docs(fresh_db, "notes")) == 1
