"""Range and If-None-Match parsing."""

from __future__ import annotations

import pytest

from app.storage.ranges import ByteRange, RangeNotSatisfiable, etag_matches, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", ByteRange(0, 10)),
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=5-", ByteRange(5, 100)),
        ("bytes=-10", ByteRange(90, 100)),
        ("bytes=-1000", ByteRange(0, 100)),
        ("bytes=90-1000", ByteRange(90, 100)),
        ("Bytes = 1-2", ByteRange(1, 3)),
        (None, None),
        ("items=0-5", None),
        ("bytes=0-1,5-6", None),
        ("nonsense", None),
    ],
)
def test_ranges_parse(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=100-",
        "bytes=100-200",
        "bytes=9-3",
        "bytes=-0",
        "bytes=-",
        "bytes=x-1",
        "bytes=1",
        "bytes=+1-2",
        "bytes=1-2-3",
        "bytes=" + "9" * 50,
        "bytes=0x1-2",
        "bytes=\u0661-\u0662",
    ],
)
def test_unsatisfiable_ranges_raise(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_content_range_names_the_last_byte() -> None:
    assert ByteRange(10, 20).content_range(100) == "bytes 10-19/100"


def test_etags_match_strong_weak_lists_and_star() -> None:
    assert etag_matches('"a"', '"a"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches('"b", "a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"b"', '"a"')
    assert not etag_matches(None, '"a"')
