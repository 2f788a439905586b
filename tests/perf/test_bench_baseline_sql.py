"""The benchmark's hand-written baseline runs the SQL the engine compiles (bench/baseline.py)."""

from __future__ import annotations

from app.db.catalog import Catalog
from app.db.database import DatabaseReader
from app.db.sql import table_ref
from app.engine.registry import load_registry
from bench import baseline
from tests.support.servers import ROOT


def _reader() -> DatabaseReader:
    schema = load_registry(str(ROOT / "functions")).schema
    return DatabaseReader(None, Catalog(None, schema, cursor_secret="test"))  # type: ignore[arg-type]


def test_the_newest_by_author_statement_is_the_engines() -> None:
    db = _reader()
    spec = (
        db.query("messages")
        .with_index("by_author", lambda q: q.eq("author", "author-0001"))
        .order("desc")
        .spec
    )
    sql, params = db._compile(spec, 10)
    assert sql == baseline.NEWEST_SQL
    assert params == ['"author-0001"', 10]


def test_the_get_statement_is_the_engines() -> None:
    assert baseline.GET_SQL.format(table="accounts") == (
        f"SELECT doc FROM {table_ref('accounts')} WHERE id = $1"
    )


def test_the_write_statements_name_the_engines_tables() -> None:
    assert baseline.INSERT_SQL.startswith(f"INSERT INTO {table_ref('messages')} ")
    assert baseline.UPDATE_SQL.startswith(f"UPDATE {table_ref('accounts')} SET doc = $2::jsonb")
    assert "_convect_commits" in baseline.COMMIT_LOG_SQL
