"""`make bench`: seed, start Convect and the baseline, drive both with wrk, print the table.

Environment knobs: BENCH_SECONDS (10) per case and server, BENCH_RUNS (1; the table
shows medians), BENCH_WARMUP (2 s per case and server), BENCH_CONNECTIONS (32),
BENCH_CASES (get,newest,create,transfer), BENCH_TARGETS (convect,baseline,plain,nolive),
BENCH_MODE (prod), BENCH_LOADER (wrk|python), BENCH_PROFILE (1, or a list of
targets: py-spy samples into bench/results/profile-TARGET-CASE.txt while measuring),
BENCH_SEED:

- `api` (default, "as deployed"): Convect is filled through its own mutations as a
  user's deployment is, with no COPY and no VACUUM, and the baseline column is the
  hand-written app without Convect's commit-log row (its `/plain` routes) on the same
  data: what hand-written code would do.
- `copy` ("same SQL"): COPY, VACUUM ANALYZE and CHECKPOINT before the runs and a VACUUM
  of the accounts before each transfer case; the baseline runs exactly Convect's SQL,
  commit-log row included, and `/plain` is a third column. It isolates the engine's own
  cost from the database's state.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench import seed as seeding
from bench.load import Result, ensure_wrk, run_load
from bench.servers import Server, start_baseline, start_convect, stop_embedded

HERE = Path(__file__).resolve().parent
CASES = {
    "get": "get by id (query)",
    "newest": "10 newest by index (query)",
    "create": "insert (mutation)",
    "transfer": "transfer (mutation)",
}
MUTATIONS = ("create", "transfer")
RETRYING = ("transfer",)
STATS_LAG = 11.0
BUSY_LOAD = 3.5  # the benchmark itself keeps about 2.5 runnable (server, PostgreSQL, wrk)
TARGET_RPS, TARGET_P99 = 0.8, 1.5


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass
class Sample:
    """One load run plus what it cost: app CPU and PostgreSQL rollbacks (retries)."""

    result: Result
    cpu_us_per_req: float
    rollbacks: int
    load: float  # 1-minute load average when it ended (other work on the machine shows here)


@dataclass
class Cell:
    """All samples of one case on one target."""

    samples: list[Sample] = field(default_factory=list)

    def med(self, attr: str) -> float:
        """Median of a result attribute (`rps`, `p50_ms`, ...) or a sample attribute."""
        values = [
            getattr(s.result, attr) if hasattr(s.result, attr) else getattr(s, attr)
            for s in self.samples
        ]
        return statistics.median(values) if values else 0.0

    def errors(self) -> int:
        """Errors over all samples."""
        return sum(s.result.errors for s in self.samples)


async def _vacuum_accounts(url: str) -> None:
    """Start each transfer case from the same table state: the dead row versions a case
    leaves make the next one slower (fewer HOT updates, more conflicts on index pages)
    until autovacuum runs, which favoured whichever server ran later."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute('VACUUM ANALYZE docs."accounts"')
    finally:
        await conn.close()


async def _rollbacks(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(value)
    finally:
        await conn.close()


def _sample(
    wrk: str | None, server: Server, case: str, ids_dir: Path, seconds: float, prefix: str,
    db_url: str, conns: int, vacuum: bool,
) -> Sample:  # fmt: skip
    if case in RETRYING and vacuum:
        asyncio.run(_vacuum_accounts(db_url))
    rb0 = asyncio.run(_rollbacks(db_url))
    cpu0 = server.cpu_seconds()
    profiler = _profiler(server, case, seconds)
    result = run_load(
        wrk, server.url, case, ids_dir, seconds=seconds, connections=conns, prefix=prefix
    )
    cpu = server.cpu_seconds() - cpu0
    if profiler is not None:
        profiler.wait()
    rb = 0
    if case in RETRYING:
        # Backends flush their counters up to 10 s after going idle (PGSTAT_IDLE_INTERVAL).
        time.sleep(STATS_LAG)
        rb = asyncio.run(_rollbacks(db_url)) - rb0
    per_req = cpu * 1e6 / result.requests if result.requests else 0.0
    return Sample(result, per_req, rb, os.getloadavg()[0])


def _profiler(server: Server, case: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """With BENCH_PROFILE=1, sample Convect with py-spy while the load runs."""
    wanted = _env("BENCH_PROFILE", "")
    if server.name not in ("convect" if wanted == "1" else wanted).split(","):
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = HERE / "results" / f"profile-{server.name}-{case}.txt"
    out.parent.mkdir(exist_ok=True)
    cmd = [
        spy, "record", "--pid", str(server.proc.pid), "--duration", str(max(1, int(seconds) - 1)),
        "--rate", "200", "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_same_answers(convect: Server, baseline: Server, seeded: seeding.Seeded) -> None:
    """Both servers answer the read calls identically (same data, same SQL)."""
    bodies = [
        {"path": "messages:get", "args": {"id": seeded.message_ids[7]}},
        {"path": "messages:newest_by_author", "args": {"author": seeding.author_name(3)}},
    ]
    for body in bodies:
        a = httpx.post(f"{convect.url}/api/query", json=body).json()
        b = httpx.post(f"{baseline.url}/api/query", json=body).json()
        if a != b or a.get("status") != "success":
            raise SystemExit(f"servers disagree on {body}:\nconvect: {a}\nbaseline: {b}")


async def _balance_sum(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        sql = "SELECT sum((doc->>'balance')::float8) FROM docs.\"accounts\""
        return float(await conn.fetchval(sql))
    finally:
        await conn.close()


def _fmt_row(name: str, c: Cell, b: Cell) -> str:
    rps_ratio = c.med("rps") / b.med("rps") if b.med("rps") else 0.0
    p99_ratio = c.med("p99_ms") / b.med("p99_ms") if b.med("p99_ms") else 0.0
    ok = "yes" if rps_ratio >= TARGET_RPS and p99_ratio <= TARGET_P99 else "**no**"
    return (
        f"| {name} | {c.med('rps'):,.0f} | {c.med('p50_ms'):.1f} / {c.med('p99_ms'):.1f} "
        f"| {b.med('rps'):,.0f} | {b.med('p50_ms'):.1f} / {b.med('p99_ms'):.1f} "
        f"| {rps_ratio:.2f} | {p99_ratio:.2f} | {ok} "
        f"| {c.med('cpu_us_per_req'):.0f} / {b.med('cpu_us_per_req'):.0f} "
        f"| {c.errors()} / {b.errors()} |"
    )


def _table(cells: dict[tuple[str, str], Cell], cases: list[str]) -> list[str]:
    lines = [
        "| call | Convect req/s | p50 / p99 ms | baseline req/s | p50 / p99 ms "
        "| req/s ratio | p99 ratio | target met | app CPU µs/req (C / B) | errors (C / B) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for case in cases:
        c, b = cells.get((case, "convect")), cells.get((case, "baseline"))
        if c is not None and b is not None:
            lines.append(_fmt_row(CASES[case], c, b))
        else:
            one = c or b or Cell()
            lines.append(
                f"| {CASES[case]} | {one.med('rps'):,.0f} ({'Convect' if c else 'baseline'}) "
                f"| {one.med('p50_ms'):.1f} / {one.med('p99_ms'):.1f} | - | - | - | - | - "
                f"| {one.med('cpu_us_per_req'):.0f} | {one.errors()} |"
            )
    plain = [c for c in cases if (c, "plain") in cells]
    if plain:
        lines += [
            "",
            "Mutations without the commit-log row (baseline `/plain` routes) and rollbacks "
            "(retries) per 1,000 calls:",
            "",
            "| call | baseline, no commit log req/s | p50 / p99 ms "
            "| rollbacks/1k Convect | baseline | baseline, no commit log |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for case in plain:
            p = cells[(case, "plain")]

            def per_k(cell: Cell) -> str:
                reqs = sum(s.result.requests for s in cell.samples)
                rbs = sum(s.rollbacks for s in cell.samples)
                return f"{1000 * rbs / reqs:.0f}" if reqs else "-"

            lines.append(
                f"| {CASES[case]} | {p.med('rps'):,.0f} | {p.med('p50_ms'):.1f} / "
                f"{p.med('p99_ms'):.1f} | {per_k(cells.get((case, 'convect'), Cell()))} "
                f"| {per_k(cells.get((case, 'baseline'), Cell()))} | {per_k(p)} |"
            )
    nolive = [c for c in cases if (c, "nolive") in cells and (c, "convect") in cells]
    if nolive:
        lines += [
            "",
            "Live queries on vs off: Convect as above against a second Convect process with "
            "`CONVECT_LIVE_QUERIES=false` (no hub, no HTTP query cache; the commit-log row "
            "and NOTIFY stay) [issue 11 (d): target ≥ 0.9x]:",
            "",
            "| call | live on req/s | p50 / p99 ms | live off req/s | p50 / p99 ms | on / off "
            "| app CPU µs/req (on / off) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for case in nolive:
            on, off = cells[(case, "convect")], cells[(case, "nolive")]
            ratio = on.med("rps") / off.med("rps") if off.med("rps") else 0.0
            lines.append(
                f"| {CASES[case]} | {on.med('rps'):,.0f} | {on.med('p50_ms'):.1f} / "
                f"{on.med('p99_ms'):.1f} | {off.med('rps'):,.0f} | {off.med('p50_ms'):.1f} / "
                f"{off.med('p99_ms'):.1f} | {ratio:.2f} "
                f"| {on.med('cpu_us_per_req'):.0f} / {off.med('cpu_us_per_req'):.0f} |"
            )
    return lines


def main() -> None:
    """Run the whole benchmark and write bench/results/latest.md."""
    seconds = float(_env("BENCH_SECONDS", "10"))
    runs = int(_env("BENCH_RUNS", "1"))
    warmup = float(_env("BENCH_WARMUP", "2"))
    conns = int(_env("BENCH_CONNECTIONS", "32"))
    mode = _env("BENCH_MODE", "prod")
    seed_mode = _env("BENCH_SEED", "api")
    if seed_mode not in ("api", "copy"):
        raise SystemExit(f"BENCH_SEED={seed_mode!r}: choose api (as deployed) or copy (same SQL)")
    as_deployed = seed_mode == "api"
    cases = [c for c in _env("BENCH_CASES", ",".join(CASES)).split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown BENCH_CASES {sorted(unknown)}; choose from {list(CASES)}")
    wrk = ensure_wrk() if _env("BENCH_LOADER", "wrk") == "wrk" else None
    loader = f"wrk ({wrk})" if wrk else "bench/pyload.py (Python stand-in for wrk)"
    print(f"bench: load generator {loader}, {conns} connections, {seconds:g} s per case")

    from app import embedded
    from app.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="convect-bench-"))
    servers: list[Server] = []
    try:
        settings = embedded.resolve(Settings(data_dir=str(tmp / "data")))
        assert settings.database_url and settings.redis_url
        print("bench: creating and migrating the database ...", flush=True)
        db_url = asyncio.run(seeding.create_database(settings.database_url, "bench"))
        convect = start_convect(db_url, settings.redis_url, tmp, mode)
        servers.append(convect)
        t0 = time.monotonic()
        if as_deployed:
            print("bench: seeding through Convect's API (no COPY, no VACUUM) ...", flush=True)
            seeded = asyncio.run(seeding.seed_through_api(convect.url))
        else:
            print("bench: seeding with COPY, then VACUUM ANALYZE ...", flush=True)
            seeded = asyncio.run(seeding.seed(db_url))
        ids_dir = tmp / "ids"
        ids_dir.mkdir()
        (ids_dir / "messages.txt").write_text("\n".join(seeded.message_ids) + "\n")
        (ids_dir / "accounts.txt").write_text("\n".join(seeded.account_ids) + "\n")
        print(
            f"bench: seeded {len(seeded.message_ids):,} messages ({seeding.AUTHORS:,} authors) "
            f"and {len(seeded.account_ids)} accounts in {time.monotonic() - t0:.1f} s"
        )
        chosen = _env("BENCH_TARGETS", "convect,baseline,plain,nolive").split(",")
        nolive = None
        if "nolive" in chosen and any(c in MUTATIONS for c in cases):
            nolive = start_convect(db_url, settings.redis_url, tmp, mode, live=False)
            servers.append(nolive)
        baseline = start_baseline(db_url, tmp)
        servers.append(baseline)
        _check_same_answers(convect, baseline, seeded)

        targets: list[tuple[str, Server, str]] = [("convect", convect, "")]
        if as_deployed:  # hand-written code writes no commit-log row
            targets.append(("baseline", baseline, "/plain"))
        else:
            targets += [("baseline", baseline, ""), ("plain", baseline, "/plain")]
        if nolive is not None:
            targets.append(("nolive", nolive, ""))
        targets = [t for t in targets if t[0] in chosen]
        if warmup > 0:
            print(f"bench: warming up ({warmup:g} s per case and server)", flush=True)
            for case in cases:
                for name, server, prefix in targets:
                    if name == "plain" or (name == "nolive" and case not in MUTATIONS):
                        continue
                    run_load(wrk, server.url, case, ids_dir, seconds=warmup,
                             connections=conns, prefix=prefix)  # fmt: skip
        cells: dict[tuple[str, str], Cell] = {}
        for run in range(runs):
            for case in cases:
                order = [t for t in targets if t[0] not in ("plain", "nolive") or case in MUTATIONS]
                if run % 2:
                    order.reverse()
                for name, server, prefix in order:
                    s = _sample(
                        wrk, server, case, ids_dir, seconds, prefix, db_url, conns,
                        not as_deployed,
                    )  # fmt: skip
                    cells.setdefault((case, name), Cell()).samples.append(s)
                    print(
                        f"  run {run + 1}/{runs} {case:8s} {name:8s} {s.result.rps:8,.0f} req/s"
                        f"  p50 {s.result.p50_ms:6.1f} ms  p99 {s.result.p99_ms:6.1f} ms"
                        f"  cpu {s.cpu_us_per_req:5.0f} µs/req  errors {s.result.errors}"
                        f"  rollbacks {s.rollbacks}  load {s.load:.1f}",
                        flush=True,
                    )
        total = asyncio.run(_balance_sum(db_url))
        expected = seeding.ACCOUNTS * seeding.START_BALANCE
        if "transfer" in cases and abs(total - expected) > 1e-6:
            print(f"bench: WARNING balance sum {total} != {expected}", file=sys.stderr)
        table = _table(cells, cases)
        header = [
            "# Convect vs hand-written FastAPI + asyncpg",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M:%S')} · {os.cpu_count()} CPUs · "
            f"Python {platform.python_version()} · load: {loader}, {conns} connections · "
            f"{seconds:g} s per case · median of {runs} run(s) · Convect `serve` in {mode} mode · "
            f"balance sum after transfers {'unchanged' if abs(total - expected) < 1e-6 else 'CHANGED'}",
            "",
            (
                "Mode **as deployed** (BENCH_SEED=api): seeded through Convect's mutations, no "
                "COPY, no VACUUM; baseline = hand-written FastAPI + asyncpg on the same data "
                "without the commit-log row."
                if as_deployed
                else "Mode **same SQL** (BENCH_SEED=copy): COPY + VACUUM seeding, accounts "
                "vacuumed before each transfer case; baseline = Convect's own SQL."
            ),
            "",
            f"Targets: Convect ≥ {TARGET_RPS}x the baseline's req/s, p99 ≤ {TARGET_P99}x.",
            "",
        ]
        loads = [s.load for cell in cells.values() for s in cell.samples]
        if loads and max(loads) > BUSY_LOAD:
            header += [
                f"**The machine was busy** (1-minute load average up to {max(loads):.1f} on "
                f"{os.cpu_count()} CPUs from other work): absolute figures and p99 are "
                "unreliable; compare the app CPU per request and ratios of neighbouring runs.",
                "",
            ]
        samples = [
            "",
            "Every sample (run, call, server: req/s, p50 / p99 ms, app CPU µs/req, load):",
            "",
        ]
        for (case, name), cell in cells.items():
            for i, smp in enumerate(cell.samples):
                r = smp.result
                samples.append(
                    f"- run {i + 1} {case} {name}: {r.rps:,.0f} req/s, {r.p50_ms:.1f} / "
                    f"{r.p99_ms:.1f} ms, {smp.cpu_us_per_req:.0f} µs, load {smp.load:.1f}"
                )
        text = "\n".join(header + table + samples) + "\n"
        print()
        print(text)
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        (results / "latest.md").write_text(text)
        print(f"bench: wrote {results / 'latest.md'}")
    finally:
        for server in servers:
            server.stop()
            if server.log_path.exists():  # kept for reading after the run
                (HERE / "results").mkdir(exist_ok=True)
                shutil.copy(server.log_path, HERE / "results" / f"{server.name}-server.log")
        stop_embedded()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
