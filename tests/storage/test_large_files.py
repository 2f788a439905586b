"""A 200 MiB file streams in and out while the server's memory stays flat."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import psutil

from tests.storage.conftest import gone, stored
from tests.support.calls import mutation, query
from tests.support.servers import ServerProcess

MiB = 1024 * 1024
SIZE = 200 * MiB
PIECE = 256 * 1024
MAX_GROWTH = 48 * MiB  # far below the file's size: nothing holds the file in memory
MAX_GROWTH_S3 = 80 * MiB  # S3 parts are 8 MiB: a few of them, whatever the file's size


def _piece(i: int) -> bytes:
    """Incompressible, position-dependent bytes, cheap to make again for checking."""
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return (seed * (PIECE // len(seed) + 1))[: PIECE - 8] + i.to_bytes(8, "big")


class PeakRss:
    """Samples a process's RSS in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @contextmanager
    def sampling(self) -> Iterator[PeakRss]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


async def test_a_200_mib_upload_and_download_keep_server_memory_flat(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    count = SIZE // PIECE
    expected = hashlib.sha256()
    for i in range(count):
        expected.update(_piece(i))
    # Warm up: one small round trip so pools, caches and code paths exist before measuring.
    url = await mutation(demo, "files:generate_upload_url")
    warm = (await demo.post(url, content=b"w" * 3 * MiB)).json()["storageId"]
    (await demo.get(f"/api/storage/{warm}")).raise_for_status()
    baseline = psutil.Process(demo_server.proc.pid).memory_info().rss

    async def body() -> AsyncIterator[bytes]:
        for i in range(count):
            yield _piece(i)

    url = await mutation(demo, "files:generate_upload_url")
    with PeakRss(demo_server.proc.pid).sampling() as up:
        r = await demo.post(url, content=body(), timeout=300)
    assert r.status_code == 200, r.text
    storage_id = r.json()["storageId"]
    meta = await query(demo, "files:metadata", {"storageId": storage_id})
    assert (meta["size"], meta["sha256"]) == (SIZE, expected.hexdigest())
    assert storage_id in await stored(demo_server)

    got = hashlib.sha256()
    received = 0
    with PeakRss(demo_server.proc.pid).sampling() as down:
        async with demo.stream("GET", f"/api/storage/{storage_id}", timeout=300) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-length"] == str(SIZE)
            async for chunk in resp.aiter_raw():
                got.update(chunk)
                received += len(chunk)
    assert received == SIZE
    assert got.hexdigest() == expected.hexdigest()
    limit = MAX_GROWTH_S3 if demo_server.env.get("CONVECT_STORAGE") == "s3" else MAX_GROWTH
    assert up.peak - baseline < limit, f"upload grew RSS by {(up.peak - baseline) / MiB:.0f} MiB"
    assert down.peak - baseline < limit, (
        f"download grew RSS by {(down.peak - baseline) / MiB:.0f} MiB"
    )
    await mutation(demo, "files:save", {"name": "big", "storageId": storage_id})
    [doc] = await query(demo, "files:list")
    await mutation(demo, "files:remove", {"id": doc["_id"]})
    assert await gone(demo_server, storage_id)
