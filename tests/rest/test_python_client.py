"""The generated `client.py`: typed methods over PyPI `convex`, checked by mypy and by calls."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import httpx
import pytest
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexHttpClient

from app.codegen import generate
from app.engine.registry import load_registry
from tests.conftest import DEMO, KITCHEN


def generated_client(folder: Path, functions: Path, name: str) -> types.ModuleType:
    """Generate `client.py` for `functions` into `folder` and import it as `name`."""
    generate(load_registry(functions), folder)
    spec = importlib.util.spec_from_file_location(name, folder / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_generated_client_calls_the_demo(demo: httpx.AsyncClient, tmp_path: Path) -> None:
    client = generated_client(tmp_path, DEMO, "demo_client")
    api = client.Api(ConvexHttpClient(str(demo.base_url).rstrip("/")))
    msg_id = api.messages.create(author="ann", body="hi")
    api.messages.create(author="bob", body="yo")
    assert [m["_id"] for m in api.messages.get_by_author(author="ann")] == [msg_id]
    assert [m["body"] for m in api.messages.newest_by_author(author="bob")] == ["yo"]
    assert len(api.messages.newest_by_author(author="ann", count=0)) == 0
    a = api.accounts.open(owner="a", balance=5)
    b = api.accounts.open(owner="b", balance=0)
    with pytest.raises(ConvexError) as info:
        api.accounts.transfer(fromId=a, toId=b, amount=50)
    assert info.value.data == {"code": "INSUFFICIENT_FUNDS", "balance": 5.0}
    assert not hasattr(api.logs, "record")  # internal functions have no method


async def test_the_generated_client_carries_int64_and_bytes(
    kitchen: httpx.AsyncClient, tmp_path: Path
) -> None:
    client = generated_client(tmp_path, KITCHEN, "kitchen_client")
    api = client.Api(ConvexHttpClient(str(kitchen.base_url).rstrip("/")))
    assert api.rest_types.bump(count=ConvexInt64(2**40)) == 2**40 + 1
    assert api.rest_types.bump(count=ConvexInt64(1), step=ConvexInt64(-3)) == -2
    assert api.rest_types.reverse_bytes(data=b"\x01\x02") == {"size": 2.0, "data": b"\x02\x01"}
    assert api.rest_types.true_keys(keys={"a": True, "b": False}) == ["a"]
    assert api.rest_types.loose({"name": "n", "other": 1.0}) == "n"
    assert api.rest_types.loose() is None


USAGE = """
from convex.http_client import ConvexHttpClient

from client import Api

api = Api(ConvexHttpClient("http://127.0.0.1:3210"))
ok_id: str = api.messages.create(author="ann", body="hi")
api.messages.newest_by_author(author="ann", count=2.0)
api.messages.create(author=1, body="hi")  # error
api.messages.create(author="ann")  # error
api.messages.get_by_author(author="a", extra=1)  # error
api.messages.nope()  # error
api.logs.record(event="x")  # error
"""


def test_mypy_rejects_calls_with_wrong_argument_types(tmp_path: Path) -> None:
    generate(load_registry(DEMO), tmp_path, python=True)
    (tmp_path / "usage.py").write_text(USAGE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            "client.py",
            "usage.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = USAGE.splitlines()
    expected = {i for i, line in enumerate(lines, start=1) if line.endswith("# error")}
    reported = {
        int(line.split(":")[1])
        for line in result.stdout.splitlines()
        if line.startswith("usage.py:") and ": error:" in line
    }
    assert reported == expected, result.stdout
    assert "client.py:" not in result.stdout, result.stdout
