"""What one `.paginate` page found, and the result and cursors Convex's clients expect.

Shared by index pages (app.db.paginate) and search pages (app.db.search_page).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.db.cursor import END, InvalidCursor, Position, decode_cursor, encode_cursor
from app.db.transaction import MAX_READS
from app.values import decode_value

SPLIT_ROWS = MAX_READS // 2


class Page:
    """What one paginate call found."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.keys: list[tuple[Any, ...]] = []  # key of every returned doc
        self.last_key: tuple[Any, ...] | None = None  # last row read (returned or not)
        self.scanned = 0
        self.exhausted = False  # the query's end was reached
        self.cut = False  # stopped by a read limit before the end cursor
        self.bytes_read = 0  # size of the documents the range yielded (JSON text)
        self.bytes_limited = False  # `maximumBytesRead` ended the page early
        self.split_rows = SPLIT_ROWS  # rows read past which a split is recommended


def decode(
    key: bytes,
    cursor: str | None,
    fp: str,
    cols_len: int,
    check: Callable[[tuple[Any, ...]], bool],
) -> Position | None:
    """A cursor option, checked against the cursor `key`, as a position (None: the
    start of the query)."""
    if cursor is None:
        return None
    pos = decode_cursor(key, cursor, fp, cols_len)
    if pos.key == ():
        return None
    if pos.key is not None and not check(pos.key):
        raise InvalidCursor("malformed cursor")
    return pos


def start_key(start: Position | None) -> tuple[Any, ...] | None:
    """The key a position is after (None for the start)."""
    return start.key if start is not None and start.key else None


def result(
    key: bytes,
    page: Page,
    fp: str,
    num: int,
    end: Position | None,
    end_cursor: str | None,
    here: str | None,
) -> dict[str, Any]:
    """The page as `{"page", "isDone", "continueCursor", "splitCursor", "pageStatus"}`,
    its cursors signed with the cursor `key`."""
    split = None
    if len(page.keys) >= 2:
        split = encode_cursor(key, Position(page.keys[(len(page.keys) - 1) // 2]), fp)
    status = None
    if page.cut and end is not None:
        # A read limit stopped the page before its end cursor: the client splits it.
        if page.last_key is not None:
            split = encode_cursor(key, Position(page.last_key), fp)
        status = "SplitRequired"
        is_done, continue_cursor = False, end_cursor
    elif end is not None and end.key is not None:
        is_done, continue_cursor = False, end_cursor
    elif page.exhausted:
        is_done, continue_cursor = True, encode_cursor(key, END, fp)
    elif page.last_key is None:
        is_done, continue_cursor = False, here
    else:
        is_done, continue_cursor = False, encode_cursor(key, Position(page.last_key), fp)
    if status is None and page.bytes_limited:
        status = "SplitRequired"  # as Convex: a pagination limit ended the page early
    if status is None and (page.scanned > page.split_rows or (num and len(page.docs) > 2 * num)):
        status = "SplitRecommended"
    return {
        "page": [decode_value(d) for d in page.docs],
        "isDone": is_done,
        "continueCursor": continue_cursor,
        "splitCursor": split,
        "pageStatus": status,
    }
