"""Drive a server with a load generator in its own process: wrk, or bench.pyload without it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "calls.lua"


@dataclass
class Result:
    """One load run against one server."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second (errors included; they are reported beside)."""
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str | None:
    """The wrk executable, installing Debian's package when possible; None if unavailable."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get"):
        print("bench: wrk is missing; installing it with apt-get", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return shutil.which("wrk")


def _parse(output: str) -> Result:
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            r = json.loads(line[len("BENCH_RESULT ") :])
            return Result(
                requests=r["requests"],
                seconds=r["duration_us"] / 1e6,
                p50_ms=r["p50_us"] / 1000,
                p99_ms=r["p99_us"] / 1000,
                max_ms=r["max_us"] / 1000,
                errors=r["app_errors"] + r["socket_errors"] + r["non2xx"],
            )
    raise RuntimeError(f"load generator printed no result:\n{output}")


def run_load(
    wrk: str | None,
    url: str,
    case: str,
    ids_dir: Path,
    *,
    seconds: float,
    connections: int = 32,
    prefix: str = "",
) -> Result:
    """Run one case against `url` for `seconds` with `connections` keep-alive connections."""
    if wrk is not None:
        cmd = [
            wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(SCRIPT), url, "--", case, str(ids_dir), prefix,
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "bench.pyload", url, case, str(ids_dir),
            str(seconds), str(connections), prefix,
        ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=False,
        cwd=HERE.parent,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr}")
    if proc.stderr.strip():
        print(proc.stderr.strip(), file=sys.stderr)
    return _parse(proc.stdout)
