"""Metering: re-chunking, hashing and the size limit of what `store` receives."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from app.storage import FileTooLarge, StorageError
from app.storage.streams import Meter


async def _collect(meter: Meter, source: object) -> list[bytes]:
    return [c async for c in meter.chunks(source)]


async def test_pieces_of_any_size_become_exact_chunks() -> None:
    async def gen() -> AsyncIterator[bytes]:
        for size in (1, 9, 3, 25, 2):
            yield b"x" * size

    meter = Meter(limit=1000, chunk_size=8)
    chunks = await _collect(meter, gen())
    assert [len(c) for c in chunks] == [8, 8, 8, 8, 8]
    assert meter.size == 40
    assert meter.sha256 == hashlib.sha256(b"x" * 40).hexdigest()


async def test_bytes_memoryviews_and_sync_iterables_are_accepted() -> None:
    data = bytes(range(256)) * 3
    for source in (data, bytearray(data), memoryview(data), [data[:100], data[100:]]):
        meter = Meter(limit=10_000, chunk_size=100)
        assert b"".join(await _collect(meter, source)) == data
        assert meter.size == len(data)


async def test_the_limit_stops_the_stream_at_the_first_byte_too_many() -> None:
    meter = Meter(limit=10, chunk_size=4)
    with pytest.raises(FileTooLarge):
        await _collect(meter, [b"12345", b"678901"])
    assert await _collect(Meter(limit=10, chunk_size=4), [b"12345", b"67890"]) != []


@pytest.mark.parametrize("source", ["text", 42, None, {"a": b"x"}, [b"ok", "text"], [1, 2]])
async def test_what_is_not_bytes_is_refused(source: object) -> None:
    with pytest.raises(StorageError):
        await _collect(Meter(limit=100, chunk_size=4), source)
