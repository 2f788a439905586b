"""Run the npm `convex` client harness scripts (tests/js/*.mjs) under Node.js."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.servers import ROOT

JS = ROOT / "tests" / "js"


def node() -> str:
    """The path of the `node` executable (the test fails without one)."""
    found = shutil.which("node")
    assert found, "Node.js is required for the official npm client tests"
    return found


def run_script(
    script: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = JS,
    timeout: float = 60,
) -> Any:
    """Run `node SCRIPT ARGS` (in `cwd`, with `env` added to this process's environment);
    assert it exited 0 and return the JSON of the last line it printed."""
    result = subprocess.run(
        [node(), str(script), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout.strip().splitlines()[-1])
