"""Reliability fixtures (which tests `make test` leaves to `make reliability`: see the
`pytest_collection_modifyitems` hook in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KITCHEN
from tests.support.servers import (
    ServerProcess,
    served_app,
)


@pytest.fixture(scope="session")
def kitchen_target(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the kitchen app on a database only these tests use (fuzzed)."""
    with served_app(services, "rel_fuzz", KITCHEN, data_dir / "rel-fuzz") as server:
        yield server
