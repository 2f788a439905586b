"""A `convect serve` of tests/apps/admin, for Convex's admin surface and its CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ROOT, ServerProcess, served_app

ADMIN_APP = ROOT / "tests" / "apps" / "admin"
STARTUP_GREETING = "from-the-process"


@pytest.fixture(scope="session")
def admin_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the admin test app; GREETING is set in its process environment."""
    with served_app(
        services, "admin", ADMIN_APP, data_dir / "admin", GREETING=STARTUP_GREETING
    ) as server:
        yield server
