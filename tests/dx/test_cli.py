"""`convect run [--watch]`, `convect data`, and one clear line for the common mistakes."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.dx.conftest import DevServer
from tests.support.servers import ROOT, ServerProcess, run_cli


class Lines:
    """A subprocess's stdout, line by line, with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line)

    def next(self, timeout: float = 15) -> str:
        """The next line (AssertionError if none comes in time)."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no line in time") from None


@pytest.fixture
def watch(dev: DevServer) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], Lines]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "run", *args, "--watch", "--url", dev.url],
            env=dev.server.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc, Lines(proc)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def add(dev: DevServer, text: str) -> None:
    body = httpx.post(
        f"{dev.url}/api/mutation", json={"path": "notes:add", "args": {"text": text}}
    ).json()
    assert body["status"] == "success", body


def test_run_watch_prints_a_queries_result_again_on_every_change(dev: DevServer, watch) -> None:
    _, public = watch("notes:list")
    _, internal = watch("notes:_texts", "{}")
    first = orjson.loads(public.next())
    assert "watch-1" not in first["notes"]
    internal.next()
    add(dev, "watch-1")
    assert orjson.loads(public.next())["notes"][-1] == "watch-1"
    assert orjson.loads(internal.next())[-1] == "watch-1"
    add(dev, "watch-2")
    assert orjson.loads(public.next())["notes"][-2:] == ["watch-1", "watch-2"]


def test_run_watch_explains_an_unknown_function_and_an_unreachable_server(
    dev: DevServer, watch
) -> None:
    proc, _ = watch("notes:lst")
    assert proc.wait(15) == 1
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Could not find" in err and "notes:lst" in err and "Traceback" not in err
    gone = run_cli(dev.server.env, "run", "notes:list", "--watch", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 1
    assert "cannot connect to http://127.0.0.1:9" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_run_calls_internal_functions_and_explains_bad_input(demo_server: ServerProcess) -> None:
    env = demo_server.env
    created = run_cli(env, "run", "messages:create", '{"author": "cli", "body": "hi"}')
    assert created.returncode == 0, created.stderr
    assert isinstance(orjson.loads(created.stdout), str)
    internal = run_cli(env, "run", "logs:count", "{}")
    assert internal.returncode == 0, internal.stderr
    unknown = run_cli(env, "run", "messages:lst")
    assert unknown.returncode == 1
    assert "no function 'messages:lst'" in unknown.stderr
    assert "Did you mean messages:list" in unknown.stderr
    bad = run_cli(env, "run", "messages:list", "{nope")
    assert bad.returncode == 1 and "ARGS_JSON is not valid JSON" in bad.stderr
    for result in (unknown, bad):
        assert "Traceback" not in result.stderr


def test_data_lists_tables_and_prints_documents(demo_server: ServerProcess) -> None:
    env = demo_server.env
    created = httpx.post(
        f"{demo_server.url}/api/mutation",
        json={"path": "messages:create", "args": {"author": "data", "body": "x"}},
    )
    assert created.json()["status"] == "success"
    listed = run_cli(env, "data")
    assert listed.returncode == 0, listed.stderr
    rows = dict(line.split() for line in listed.stdout.splitlines()[1:])
    assert {"messages", "_storage", "_scheduled_functions"} <= rows.keys()
    assert int(rows["messages"].replace(",", "")) >= 1
    newest = run_cli(env, "data", "messages", "--limit", "1")
    assert newest.returncode == 0, newest.stderr
    [line] = newest.stdout.splitlines()
    assert orjson.loads(line)["author"] == "data"
    missing = run_cli(env, "data", "nope")
    assert missing.returncode == 1
    assert "there is no table 'nope'; tables: _scheduled_functions" in missing.stderr


def test_an_unreachable_database_is_one_clear_line(demo_server: ServerProcess) -> None:
    env = {**demo_server.env, "DATABASE_URL": "postgresql://convect:secret@127.0.0.1:9/nowhere"}
    for command in (["serve"], ["export", "/tmp/never.zip"]):
        result = run_cli(env, *command)
        assert result.returncode == 1, result
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: cannot reach the database at "), line
        assert "postgresql://convect:***@127.0.0.1:9/nowhere" in line
        assert "connection refused" in line and "secret" not in line


def test_a_port_in_use_is_one_clear_line(demo_server: ServerProcess) -> None:
    env = {**demo_server.env, "CONVECT_PORT": str(demo_server.port)}
    result = run_cli(env, "serve")
    assert result.returncode == 1
    assert f"could not listen on 127.0.0.1:{demo_server.port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr
