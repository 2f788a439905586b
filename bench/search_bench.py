"""Search benchmark: vector recall@10 and queries/s, filtered vector search, full-text queries/s.

Runs in-process against PostgreSQL (the embedded one unless DATABASE_URL is set), through
the same functions the engine uses (`vector_search`, the search query path), without
HTTP. Data: BENCH_VECTORS (100,000) clustered unit vectors of 384 dimensions, 1% of them
in a "rare" category and 10% in "tenth"; BENCH_TEXTS (100,000) documents of 20 words from a 20,000-word
vocabulary with a skewed (Zipf-like) word distribution. Writes bench/results/search.md.

Knobs: BENCH_PARTS (vector,text), BENCH_VECTORS, BENCH_TEXTS, BENCH_QUERIES (200), BENCH_SECONDS (10 per case),
BENCH_CONCURRENCY (8).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from app.db import migrate
from app.db.catalog import Catalog
from app.db.database import DatabaseReader
from app.db.deploy import push_schema
from app.db.search import tokenize, tsquery_text
from app.db.transaction import Tx
from app.db.vector import ef_search, vector_search
from app.schema import define_schema, define_table
from app.values import v
from bench.seed import database_url
from bench.servers import stop_embedded

HERE = Path(__file__).resolve().parent
DIMS = 384
CLUSTERS = 200
NOISE = 0.08  # per-coordinate noise around a unit-length centre (384 dims)
VOCAB = 20_000

SCHEMA = define_schema(
    {
        "vbench": define_table({"cat": v.string(), "embedding": v.array(v.float64())}).vector_index(
            "by_emb", vector_field="embedding", dimensions=DIMS, filter_fields=["cat"]
        ),
        "tbench": define_table({"cat": v.string(), "body": v.string()}).search_index(
            "search_body", search_field="body", filter_fields=["cat"]
        ),
    }
)


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


async def _create(base_url: str) -> str:
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute('DROP DATABASE IF EXISTS "bench_search" WITH (FORCE)')
        await conn.execute('CREATE DATABASE "bench_search"')
    finally:
        await conn.close()
    url = database_url(base_url, "bench_search")
    await asyncio.to_thread(migrate.upgrade, url)
    await push_schema(url, SCHEMA)
    return url


async def _fill_vectors(conn: asyncpg.Connection, n: int) -> None:
    """Clustered unit vectors, generated inside PostgreSQL (random_normal, l2_normalize)."""
    await conn.execute('DROP INDEX docs."vbench__by_emb"')
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(
        "CREATE TEMP TABLE centres AS SELECT c, l2_normalize(ARRAY(SELECT random_normal() "
        f"FROM generate_series(1, {DIMS}) WHERE c IS NOT NULL)::vector) AS v "
        f"FROM generate_series(0, {CLUSTERS - 1}) c"
    )
    batch = 10_000
    for lo in range(0, n, batch):
        await conn.execute(
            f"""
            WITH pts AS (
              SELECT g, l2_normalize(c.v + ARRAY(SELECT random_normal(0, {NOISE})
                     FROM generate_series(1, {DIMS}) WHERE g IS NOT NULL)::vector) AS v,
                     CASE WHEN g % 100 = 0 THEN 'rare' WHEN g % 10 = 5 THEN 'tenth'
                          ELSE 'common' END AS cat
              FROM generate_series($1::int, $2::int) g
              JOIN centres c ON c.c = g % {CLUSTERS}
            )
            INSERT INTO docs."vbench" (id, creation_time, doc, "vec__by_emb")
            SELECT 'v' || g, g, jsonb_build_object('_id', 'v' || g, '_creationTime', g,
                   'cat', cat, 'embedding', to_jsonb(v::real[])), v
            FROM pts
            """,
            lo,
            min(n, lo + batch) - 1,
        )
    await conn.execute('ANALYZE docs."vbench"')


async def _queries(conn: asyncpg.Connection, count: int) -> list[str]:
    rows = await conn.fetch(
        f"SELECT l2_normalize(c.v + ARRAY(SELECT random_normal(0, {NOISE}) "
        f"FROM generate_series(1, {DIMS}) WHERE q IS NOT NULL)::vector)::text AS v "
        f"FROM generate_series(1, $1::int) q JOIN centres c ON c.c = (q * 7919) % {CLUSTERS}",
        count,
    )
    return [r["v"] for r in rows]


async def _exact(conn: asyncpg.Connection, q: str, cat: str | None) -> list[str]:
    where = "AND doc -> 'cat' = to_jsonb($2::text)" if cat else ""
    args: list[Any] = [q, cat] if cat else [q]
    rows = await conn.fetch(
        f'SELECT id FROM docs."vbench" WHERE "vec__by_emb" IS NOT NULL {where} '
        'ORDER BY ("vec__by_emb" <=> $1::vector) + 0 LIMIT 10',
        *args,
    )
    return [r["id"] for r in rows]


async def _fill_texts(conn: asyncpg.Connection, n: int) -> None:
    """Documents of 20 words each; word k has weight ~ 1/k (drawn as floor(V^u))."""
    await conn.execute("SELECT setseed(0.17)")
    batch = 20_000
    for lo in range(0, n, batch):
        await conn.execute(
            f"""
            INSERT INTO docs."tbench" (id, creation_time, doc)
            SELECT 't' || g, g, jsonb_build_object('_id', 't' || g, '_creationTime', g,
                   'cat', CASE WHEN g % 10 = 0 THEN 'a' ELSE 'b' END,
                   'body', array_to_string(ARRAY(
                      SELECT 'w' || lpad(floor(power({VOCAB}, random()))::int::text, 5, '0')
                      FROM generate_series(1, 20) WHERE g IS NOT NULL), ' '))
            FROM generate_series($1::int, $2::int) g
            """,
            lo,
            min(n, lo + batch) - 1,
        )
    await conn.execute('ANALYZE docs."tbench"')


async def _rate(
    fn: Callable[[int], Awaitable[Any]], seconds: float, concurrency: int
) -> tuple[float, float, float]:
    """queries/s, p50 ms and p99 ms of `fn(i)` run by `concurrency` workers."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            await fn(next(counter))
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies), p99


async def run(base_url: str) -> list[str]:
    """The whole benchmark; returns the report's lines."""
    n_vec, n_text = _env("BENCH_VECTORS", 100_000), _env("BENCH_TEXTS", 100_000)
    n_q, seconds = _env("BENCH_QUERIES", 200), float(_env("BENCH_SECONDS", 10))
    conc = _env("BENCH_CONCURRENCY", 8)
    parts = os.environ.get("BENCH_PARTS", "vector,text").split(",")
    url = await _create(base_url)
    pool = await asyncpg.create_pool(url, min_size=conc, max_size=conc + 2)
    assert pool is not None
    catalog = Catalog(pool, SCHEMA, cursor_secret="search-bench")
    await catalog.load()
    out = [
        "# Search benchmark",
        "",
        f"{n_vec:,} vectors x {DIMS} dims ({CLUSTERS} clusters, 1% 'rare', 10% 'tenth'); {n_text:,} texts. "
        f"In-process (no HTTP), {conc} concurrent callers, {seconds:g} s per rate.",
        "",
    ]
    try:
        if "vector" in parts:
            async with pool.acquire() as conn:
                t0 = time.monotonic()
                await _fill_vectors(conn, n_vec)
                t1 = time.monotonic()
                print(f"search bench: {n_vec:,} vectors generated in {t1 - t0:.1f} s", flush=True)
            await push_schema(url, SCHEMA)  # builds the HNSW index as `convect deploy` does
            t2 = time.monotonic()
            print(f"search bench: HNSW index built in {t2 - t1:.1f} s", flush=True)
            out.append(f"- HNSW build (m=16, ef_construction=64, via deploy): {t2 - t1:.1f} s")
            async with pool.acquire() as conn:
                queries = await _queries(conn, n_q)
                truth = [await _exact(conn, q, None) for q in queries]
                truth_rare = [await _exact(conn, q, "rare") for q in queries]
                truth_tenth = [await _exact(conn, q, "tenth") for q in queries]
                t3 = time.monotonic()
                for q in queries[:20]:
                    await _exact(conn, q, None)
                exact_ms = (time.monotonic() - t3) / 20 * 1000
            out.append(f"- exact (sequential scan) search: {exact_ms:.0f} ms per query")
            out += [
                "",
                "| vector case | recall@10 | queries/s | p50 ms | p99 ms |",
                "|---|---|---|---|---|",
            ]
            for label, cat, exact in [
                (f"unfiltered, limit 10 (ef_search {ef_search(10)})", None, truth),
                ("filter cat == 'rare' (1%), limit 10", "rare", truth_rare),
                ("filter cat == 'tenth' (10%), limit 10", "tenth", truth_tenth),
            ]:
                hits = 0
                for q, want in zip(queries, exact, strict=True):
                    query: dict[str, Any] = {"vector": _floats(q), "limit": 10}
                    if cat:
                        query["filter"] = lambda f, c=cat: f.eq("cat", c)
                    got = await vector_search(pool, catalog, "vbench", "by_emb", query)
                    hits += len({r["_id"] for r in got} & set(want))
                recall = hits / (10 * len(queries))
                parsed = [_floats(q) for q in queries]

                async def one(i: int, cat: str | None = cat, parsed: list[Any] = parsed) -> None:
                    query: dict[str, Any] = {"vector": parsed[i % len(parsed)], "limit": 10}
                    if cat:
                        query["filter"] = lambda f: f.eq("cat", cat)
                    await vector_search(pool, catalog, "vbench", "by_emb", query)

                qps, p50, p99 = await _rate(one, seconds, conc)
                out.append(f"| {label} | {recall:.3f} | {qps:,.0f} | {p50:.1f} | {p99:.1f} |")
                print(f"search bench: {label}: recall@10 {recall:.3f}, {qps:,.0f} q/s", flush=True)

        if "text" in parts:
            async with pool.acquire() as conn:
                t4 = time.monotonic()
                await _fill_texts(conn, n_text)
                print(
                    f"search bench: {n_text:,} texts in {time.monotonic() - t4:.1f} s", flush=True
                )
            rng = random.Random(5)

            def word(lo: int, hi: int) -> str:
                return f"w{rng.randrange(lo, hi):05d}"

            text_cases = [
                ("2 words (ranks 100-5,000)", None, lambda: f"{word(100, 5000)} {word(100, 5000)}"),
                ("same, filter cat == 'a' (10%)", "a", lambda: f"{word(100, 5000)} {word(100, 5000)}"),
                ("word + 4-char prefix (100 words)", None, lambda: f"{word(100, 5000)} w00{rng.randrange(1, 10)}"),
                ("1 very common word (rank 1-10)", None, lambda: word(1, 10)),
            ]  # fmt: skip
            out += ["", "| full-text case | matches (mean) | queries/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]  # fmt: skip
            for label, cat, make in text_cases:
                text_queries = [make() for _ in range(300)]
                async with pool.acquire() as conn:
                    matches = [
                        await conn.fetchval(
                            'SELECT count(*) FROM docs."tbench" WHERE "ts__search_body" @@ $1::tsquery',
                            tsquery_text(tokenize(t)),
                        )
                        for t in text_queries[:50]
                    ]

                async def search(
                    i: int, cat: str | None = cat, qs: list[str] = text_queries
                ) -> None:
                    text = qs[i % len(qs)]
                    async with pool.acquire() as conn:
                        db = DatabaseReader(Tx(conn, writable=False, lazy=True), catalog)

                        def build(q: Any) -> Any:
                            s = q.search("body", text)
                            return s.eq("cat", cat) if cat else s

                        await db.query("tbench").with_search_index("search_body", build).take(10)

                qps, p50, p99 = await _rate(search, seconds, conc)
                mean = statistics.mean(matches)
                out.append(f"| {label} | {mean:,.0f} | {qps:,.0f} | {p50:.1f} | {p99:.1f} |")
                print(f"search bench: full-text {label}: {qps:,.0f} q/s", flush=True)
    finally:
        await pool.close()
    return out


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.strip("[]").split(",")]


def main() -> None:
    """Run the search benchmark and write bench/results/search.md."""
    from app import embedded
    from app.settings import Settings

    base = os.environ.get("DATABASE_URL")
    tmp = None
    if not base:
        tmp = Path(tempfile.mkdtemp(prefix="convect-search-bench-"))
        base = embedded.postgres_url(Settings(data_dir=str(tmp / "data")))
    try:
        lines = asyncio.run(run(base))
    finally:
        if tmp is not None:  # stop the embedded PostgreSQL even when interrupted
            stop_embedded()
            shutil.rmtree(tmp, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"Load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores."]
    report = "\n".join(lines) + "\n"
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "search.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
