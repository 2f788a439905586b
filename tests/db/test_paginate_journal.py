"""The query journal is two declared fields of Tx that `paginate` reads and sets."""

from __future__ import annotations

import pytest

from app.db.cursor import END, InvalidCursor, Position, encode_cursor, fingerprint
from app.db.paginate import journal_of, paginate, use_journal
from app.db.query import BUILTIN_INDEXES, BY_CREATION_TIME, IndexRange, QuerySpec
from app.db.transaction import Tx
from tests.db.fakes import catalog, conn

TABLE = "never_created"  # paginating it reads no rows: the page is decided by the cursors
SPEC = QuerySpec(IndexRange(TABLE, BY_CREATION_TIME, BUILTIN_INDEXES[BY_CREATION_TIME]))
FP = fingerprint("index", TABLE, BY_CREATION_TIME, "asc")
OPTS = {"numItems": 3, "cursor": None}


def test_a_new_tx_has_no_journal() -> None:
    tx = Tx(conn(), writable=False)
    assert tx.page_journal is None and tx.page_journal_used is False
    assert journal_of(tx) is None


def test_use_journal_and_journal_of_are_the_declared_field() -> None:
    tx = Tx(conn(), writable=False)
    use_journal(tx, "j1")
    assert tx.page_journal == "j1" and journal_of(tx) == "j1"
    use_journal(tx, None)
    assert journal_of(tx) is None
    assert not any("journal" in name for name in vars(tx) if name.startswith("_"))


async def test_the_first_page_of_a_rerun_ends_at_the_journal_and_only_the_first() -> None:
    cat = catalog()
    journal = encode_cursor(cat.cursor_key, Position((10.0, "some-id")), FP)
    tx = Tx(conn(), writable=False)
    use_journal(tx, journal)
    first = await paginate(tx, cat, SPEC, OPTS)
    assert first["isDone"] is False and first["continueCursor"] == journal
    assert tx.page_journal_used is True and journal_of(tx) == journal
    second = await paginate(tx, cat, SPEC, OPTS)  # not bounded by the journal again
    assert second["isDone"] is True
    assert second["continueCursor"] == encode_cursor(cat.cursor_key, END, FP)
    assert journal_of(tx) == second["continueCursor"]


async def test_a_page_without_a_journal_records_its_continue_cursor() -> None:
    cat = catalog()
    tx = Tx(conn(), writable=False)
    page = await paginate(tx, cat, SPEC, OPTS)
    assert page["isDone"] is True
    assert journal_of(tx) == page["continueCursor"]
    assert tx.page_journal_used is True


async def test_a_journal_signed_by_another_deployment_is_refused() -> None:
    mine, theirs = catalog("secret-a"), catalog("secret-b")
    tx = Tx(conn(), writable=False)
    use_journal(tx, encode_cursor(theirs.cursor_key, Position((10.0, "some-id")), FP))
    with pytest.raises(InvalidCursor):
        await paginate(tx, mine, SPEC, OPTS)
