"""Test session: embedded PostgreSQL (pgvector) and Redis, migrated databases, servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ADMIN_KEY, ROOT, ServerProcess, emptied_client, served_app
from tests.support.servers import truncate_all as truncate_all  # imported from here too

DEMO = ROOT / "functions"
KITCHEN = ROOT / "tests" / "apps" / "kitchen"

# Tests marked `@pytest.mark.reliability` (the long runs: minutes of load, thousands of
# fuzz cases, faults with their own PostgreSQL, a 1 GiB file) are left out of a run given
# no `-m` expression, unless named on the command line; `make reliability` runs them.


def _named(item: pytest.Item, args: list[str]) -> bool:
    base = item.nodeid.split("[")[0]
    return any("::" in a and (a.endswith(item.nodeid) or a.endswith(base)) for a in args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without `-m`, deselect the long runs (they belong to `make reliability`)."""
    if config.option.markexpr:
        return
    keep, drop = [], []
    for item in items:
        long_run = item.get_closest_marker("reliability") is not None
        (drop if long_run and not _named(item, config.args) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    """The session's data folder (embedded servers live here).

    Not under pytest's tmp root: that is mode 0700, and the embedded PostgreSQL runs as
    its own user when the tests run as root.
    """
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="convect-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def services(data_dir: Path) -> Iterator[dict[str, str]]:
    """Real PostgreSQL and Redis: from DATABASE_URL/REDIS_URL, else embedded ones."""
    from app import embedded
    from app.settings import Settings

    settings = embedded.resolve(Settings(data_dir=str(data_dir)))
    assert settings.database_url and settings.redis_url
    yield {"database_url": settings.database_url, "redis_url": settings.redis_url}
    embedded.shutdown_redis()


def _server(
    services: dict[str, str], data_dir: Path, db: str, functions: Path, name: str, **extra: str
) -> Iterator[ServerProcess]:
    with served_app(services, db, functions, data_dir / name, **extra) as server:
        yield server


@pytest.fixture(scope="session")
def demo_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the demo app (functions/) on its own database."""
    yield from _server(services, data_dir, "demo", DEMO, "demo")


@pytest.fixture(scope="session")
def kitchen_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the test app (tests/apps/kitchen) on its own database."""
    yield from _server(services, data_dir, "kitchen", KITCHEN, "kitchen")


@pytest.fixture
async def demo(demo_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the demo server, on emptied tables."""
    async with emptied_client(demo_server) as client:
        yield client


@pytest.fixture
async def kitchen(kitchen_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the kitchen test app, on emptied tables."""
    async with emptied_client(kitchen_server) as client:
        yield client


ADMIN_HEADERS = {"Authorization": f"Convex {ADMIN_KEY}"}
os.environ.setdefault("CONVECT_TESTING", "1")
