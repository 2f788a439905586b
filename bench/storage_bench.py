"""File storage benchmark: upload and download MiB/s of a 100 MiB file, server peak RSS.

Run alone with `python -m bench.storage_bench` (embedded services); `run_storage_bench`
returns report lines for bench.run. Knobs: BENCH_STORAGE_MIB (100), BENCH_STORAGE_RUNS (3),
BENCH_STORAGE_BACKENDS (postgres,s3: S3 is moto's server on this machine, so its figures
measure Convect's S3 path, not a real store's network).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil

from bench.servers import run_alone, start_convect
from tests.support.s3 import bucket_env, start_s3
from tests.support.servers import convect_env, create_database, run_cli

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


class PeakRss:
    """Samples a process's RSS every 10 ms in a thread while running."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _one_run(url: str, data: bytes, pid: int) -> dict[str, float]:
    """Upload `data` through an upload URL (streamed, chunked) and download it back."""
    view = memoryview(data)

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(view), MiB):
            yield bytes(view[i : i + MiB])

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        r = await client.post(
            "/api/mutation", json={"path": "files:generate_upload_url", "args": {}}
        )
        upload_url = r.json()["value"]
        with PeakRss(pid) as up_rss:
            started = time.perf_counter()
            r = await client.post(upload_url, content=body())
            up_s = time.perf_counter() - started
        r.raise_for_status()
        storage_id = r.json()["storageId"]
        digest = hashlib.sha256()
        with PeakRss(pid) as down_rss:
            started = time.perf_counter()
            async with client.stream("GET", f"/api/storage/{storage_id}") as resp:
                async for chunk in resp.aiter_raw():
                    digest.update(chunk)
            down_s = time.perf_counter() - started
        if digest.hexdigest() != hashlib.sha256(data).hexdigest():
            raise RuntimeError("the downloaded file differs from the uploaded one")
        await client.post(
            "/api/action", json={"path": "files:delete_stored", "args": {"storageId": storage_id}}
        )
    size_mib = len(data) / MiB
    return {
        "up": size_mib / up_s,
        "down": size_mib / down_s,
        "up_rss": up_rss.peak / MiB,
        "down_rss": down_rss.peak / MiB,
    }


def _bench_backend(
    backend: str, database_base_url: str, redis_url: str, data_dir: Path, size: int, runs: int
) -> dict[str, float]:
    """Median MiB/s and peak RSS of `runs` round trips with files in `backend`."""
    extra: dict[str, str] = {}
    store = None
    if backend == "s3":
        store = start_s3(data_dir / "moto.log")
        store.create_bucket("bench")
        extra = bucket_env(store, "bench")
    url = asyncio.run(create_database(database_base_url, f"bench_storage_{backend}"))
    env = convect_env(url, redis_url, ROOT / "functions", data_dir / f"storage-{backend}")
    deployed = run_cli(env, "deploy")
    if deployed.returncode != 0:
        raise RuntimeError(deployed.stderr)
    (data_dir / backend).mkdir(exist_ok=True)
    server = start_convect(url, redis_url, data_dir / backend, "prod", **extra)
    data = os.urandom(size)
    try:
        pid = server.proc.pid
        asyncio.run(_one_run(server.url, os.urandom(4 * MiB), pid))  # warm up
        idle = psutil.Process(pid).memory_info().rss / MiB
        results = [asyncio.run(_one_run(server.url, data, pid)) for _ in range(runs)]
    finally:
        server.stop()
        if store is not None:
            store.stop()
    peak = max(max(r["up_rss"], r["down_rss"]) for r in results)
    return {
        "up": statistics.median(r["up"] for r in results),
        "down": statistics.median(r["down"] for r in results),
        "idle": idle,
        "peak": peak,
    }


def run_storage_bench(database_base_url: str, redis_url: str, data_dir: Path) -> list[str]:
    """Upload and download a file several times against a fresh `convect serve`, per
    backend (BENCH_STORAGE_BACKENDS: postgres,s3; S3 is moto's local server)."""
    size = int(os.environ.get("BENCH_STORAGE_MIB", "100")) * MiB
    runs = int(os.environ.get("BENCH_STORAGE_RUNS", "3"))
    backends = os.environ.get("BENCH_STORAGE_BACKENDS", "postgres,s3").split(",")
    lines = [
        "",
        "## File storage",
        "",
        f"{size // MiB} MiB file, median of {runs} runs; upload is a streamed POST to an "
        "upload URL, download a GET /api/storage/<id> (proxied):",
        "",
        "| backend | upload MiB/s | download MiB/s | server RSS idle | peak while transferring |",
        "| --- | --- | --- | --- | --- |",
    ]
    names = {
        "postgres": "PostgreSQL, 1 MiB chunks",
        "s3": "S3 (moto, local), 8 MiB parts",
    }
    for backend in backends:
        r = _bench_backend(backend, database_base_url, redis_url, data_dir, size, runs)
        lines.append(
            f"| {names[backend]} | {r['up']:.0f} | {r['down']:.0f} | {r['idle']:.0f} MiB "
            f"| {r['peak']:.0f} MiB (+{r['peak'] - r['idle']:.0f}) |"
        )
    return lines


def main() -> None:
    """Stand-alone run with embedded services."""
    run_alone("storage", run_storage_bench)


if __name__ == "__main__":
    main()
