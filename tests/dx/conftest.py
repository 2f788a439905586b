"""A `convect dev` subprocess on a copy of tests/dx/devapp, for the dev-loop tests."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import ServerProcess, convect_env, create_database, start_server

DEVAPP = Path(__file__).resolve().parent / "devapp"


def original(module: str) -> str:
    """A module as the test app ships it."""
    return (DEVAPP / module).read_text()


@dataclass
class DevServer:
    """A running `convect dev` and the functions folder it watches."""

    server: ServerProcess
    folder: Path

    @property
    def url(self) -> str:
        """The API listener's base URL."""
        return self.server.url

    def write(self, module: str, text: str) -> None:
        """Replace a module of the watched folder."""
        (self.folder / module).write_text(text)

    def original(self, module: str) -> str:
        """A module as the test app ships it."""
        return original(module)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        """Poll `predicate` until it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the dev server printed:\n{self.server.log()}")
            time.sleep(0.05)

    def wait_log(self, predicate: Callable[[str], bool], timeout: float = 15) -> str:
        """Wait until the process output satisfies `predicate`; return the output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.server.log()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"the dev server's output never matched:\n{self.server.log()}")


@pytest.fixture(scope="package")
def dev(services: dict[str, str], data_dir: Path) -> Iterator[DevServer]:
    """`python -m app dev` on a fresh database and a copy of the test app."""
    folder = Path(tempfile.mkdtemp(prefix="convect-dx-app-"))
    shutil.copytree(
        DEVAPP, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    url = asyncio.run(create_database(services["database_url"], "dx_dev"))
    env = convect_env(url, services["redis_url"], folder, data_dir / "dx_dev")
    server = start_server(env, data_dir / "dx_dev.log", role="dev")
    try:
        yield DevServer(server, folder)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
