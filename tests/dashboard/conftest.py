"""A `convect serve` of the dashboard test app (tests/apps/dashboard)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, ServerProcess, emptied_client, served_app

DASHBOARD_APP = ROOT / "tests" / "apps" / "dashboard"


@pytest.fixture(scope="session")
def dashboard_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """The dashboard test app served on its own database."""
    with served_app(services, "dashboard", DASHBOARD_APP, data_dir / "dashboard") as server:
        yield server


@pytest.fixture
async def dash(dashboard_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the dashboard app, on emptied tables."""
    async with emptied_client(dashboard_server) as client:
        yield client
