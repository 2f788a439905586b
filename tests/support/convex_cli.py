"""Run the official npm `convex` CLI (tests/js/node_modules/.bin/convex) against Convect."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.servers import ADMIN_KEY, ROOT

CONVEX = ROOT / "tests" / "js" / "node_modules" / ".bin" / "convex"


def project(folder: Path) -> Path:
    """A project folder as a Convex user has one: package.json naming `convex`, its
    node_modules (the test harness's), and a convex/ folder of TypeScript."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps({"name": "app", "version": "1.0.0", "dependencies": {"convex": "*"}})
    )
    modules = folder / "node_modules"
    if not modules.exists():
        modules.symlink_to(ROOT / "tests" / "js" / "node_modules")
    (folder / "convex").mkdir(exist_ok=True)
    (folder / "convex" / "hello.ts").write_text(
        'import { queryGeneric as query } from "convex/server";\n'
        "export const hi = query({ args: {}, handler: async () => 'hi' });\n"
    )
    return folder


def cli_env(url: str, home: Path, admin_key: str = ADMIN_KEY) -> dict[str, str]:
    """The two variables a self-hosted Convex user sets, and the ones that keep the CLI
    off the internet (Sentry is off under CI; the version check goes nowhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEX_")}
    env.update(
        CONVEX_SELF_HOSTED_URL=url,
        CONVEX_SELF_HOSTED_ADMIN_KEY=admin_key,
        CI="1",
        CONVEX_VERSION_API_ORIGIN="http://127.0.0.1:9",
        HOME=str(home),
        FORCE_COLOR="0",
        NO_COLOR="1",
    )
    return env


@dataclass
class Result:
    """A finished CLI run."""

    code: int
    out: str
    err: str


async def convex(cwd: Path, env: dict[str, str], *args: str, timeout: float = 90) -> Result:
    """Run `convex ARGS` to completion (stdin closed, so it never prompts)."""
    proc = await asyncio.create_subprocess_exec(
        str(CONVEX),
        *args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Result(proc.returncode or 0, out.decode(), err.decode())


class Background:
    """A long-running CLI command (`logs`, `run --watch`) whose output is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""
        self.err = ""
        self._tasks = [
            asyncio.ensure_future(self._pump(proc.stdout, "out")),
            asyncio.ensure_future(self._pump(proc.stderr, "err")),
        ]

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str], *args: str) -> Background:
        """Start `convex ARGS`."""
        proc = await asyncio.create_subprocess_exec(
            str(CONVEX),
            *args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return cls(proc)

    async def _pump(self, stream: Any, name: str) -> None:
        while chunk := await stream.read(4096):
            setattr(self, name, getattr(self, name) + chunk.decode())

    async def wait_for(self, text: str, timeout: float = 30, *, stream: str = "out") -> None:
        """Wait until `text` appears in the output."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in getattr(self, stream):
            if loop.time() > deadline or self.proc.returncode is not None:
                raise AssertionError(
                    f"{text!r} did not appear; stdout: {self.out!r} stderr: {self.err!r}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """End it (SIGTERM, then SIGKILL)."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._tasks:
            task.cancel()
