"""schemathesis (from PyPI) against the running servers' /openapi.json.

Every check runs except `negative_data_rejection`: as on /api/query, arguments that break
the validators are answered HTTP 200 with an `ArgumentValidationError` in the function
envelope (documented in the spec), not with a 4xx.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import ServerProcess

ST = str(Path(sys.executable).parent / "st")


def base(client: httpx.AsyncClient) -> str:
    return str(client.base_url).rstrip("/")


def schemathesis(location: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`st run` with every check but negative_data_rejection, few examples, a fixed seed."""
    return subprocess.run(
        [
            ST,
            "run",
            location,
            "--checks",
            "all",
            "--exclude-checks",
            "negative_data_rejection",
            "--max-examples",
            "8",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "--no-color",
            *extra,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_the_demo_api_has_no_server_errors_and_matches_its_spec(
    demo: httpx.AsyncClient, tmp_path: Path
) -> None:
    result = schemathesis(base(demo) + "/openapi.json", tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    tested = re.search(r"Tested: (\d+)", result.stdout)
    selected = re.search(r"Selected: (\d+)/", result.stdout)
    assert tested and selected and tested[1] == selected[1], result.stdout[-3000:]


async def test_every_validator_kind_survives_schemathesis(
    kitchen: httpx.AsyncClient, tmp_path: Path
) -> None:
    result = schemathesis(base(kitchen) + "/openapi.json", tmp_path, "--include-tag", "rest_types")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
    assert "6 selected" in result.stdout  # the six public functions of rest_types


def test_schemathesis_catches_a_response_that_breaks_the_spec(
    demo_server: ServerProcess, tmp_path: Path
) -> None:
    spec = httpx.get(f"{demo_server.url}/openapi.json").json()
    spec["components"]["schemas"]["messages.list.Returns"] = {"type": "string"}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = schemathesis(
        "spec.json",
        tmp_path,
        "--url",
        demo_server.url,
        "--include-path",
        "/api/run/messages/list",
    )
    assert result.returncode != 0
    assert "Response violates schema" in result.stdout
