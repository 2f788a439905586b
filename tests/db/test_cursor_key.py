"""Pagination cursors are signed with the key of the deployment's catalog."""

from __future__ import annotations

import pytest

from app.db.catalog import Catalog
from app.db.cursor import (
    END,
    START,
    InvalidCursor,
    Position,
    cursor_key,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from app.db.readset import MISSING
from tests.db.fakes import catalog

FP = fingerprint("index", "notes", "by_creation_time", "asc")


def test_a_cursor_round_trips_under_its_catalogs_key() -> None:
    key = catalog("secret-a").cursor_key
    pos = Position((MISSING, 12.5, "abc"))
    text = encode_cursor(key, pos, FP)
    assert decode_cursor(key, text, FP, 3) == pos
    assert decode_cursor(key, encode_cursor(key, END, FP), FP, 3) is END
    assert decode_cursor(key, encode_cursor(key, START, FP), FP, 3) is START


def test_a_cursor_signed_by_another_deployment_is_refused() -> None:
    mine, theirs = catalog("secret-a"), catalog("secret-b")
    assert mine.cursor_key != theirs.cursor_key
    text = encode_cursor(theirs.cursor_key, Position((1.0, "x")), FP)
    with pytest.raises(InvalidCursor, match="not issued by this deployment"):
        decode_cursor(mine.cursor_key, text, FP, 2)


def test_processes_of_one_deployment_share_the_key_through_the_secret() -> None:
    one, other = catalog("shared"), catalog("shared")
    text = encode_cursor(one.cursor_key, Position((1.0, "x")), FP)
    assert decode_cursor(other.cursor_key, text, FP, 2) == Position((1.0, "x"))
    assert one.cursor_key == cursor_key("shared") == cursor_key(b"shared")


def test_the_key_is_derived_not_the_raw_secret() -> None:
    assert cursor_key("s") != b"s" and len(cursor_key("s")) == 32


def test_an_altered_cursor_or_one_of_another_query_is_refused() -> None:
    key = catalog().cursor_key
    text = encode_cursor(key, Position((1.0, "x")), FP)
    _body, tag = text.split(".")
    forged = encode_cursor(key, Position((2.0, "x")), FP).split(".")[0] + "." + tag
    with pytest.raises(InvalidCursor):
        decode_cursor(key, forged, FP, 2)
    other_query = fingerprint("index", "notes", "by_creation_time", "desc")
    with pytest.raises(InvalidCursor, match="different query"):
        decode_cursor(key, text, other_query, 2)


def test_a_catalog_needs_a_cursor_secret_and_refuses_an_empty_one() -> None:
    with pytest.raises(TypeError):
        Catalog(None, None)  # type: ignore[arg-type,call-arg]
    with pytest.raises(ValueError, match="must not be empty"):
        catalog("")
