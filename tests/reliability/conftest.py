"""Reliability fixtures, and which of these tests `make test` leaves to `make reliability`.

Tests marked `@pytest.mark.reliability` (the long runs: minutes of load, thousands of fuzz
cases, faults with their own PostgreSQL) are left out of a run given no `-m` expression,
unless named on the command line; `make reliability` runs them with `-m reliability`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import KITCHEN
from tests.support.servers import (
    ServerProcess,
    served_app,
)


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
def kitchen_target(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the kitchen app on a database only these tests use (fuzzed)."""
    with served_app(services, "rel_fuzz", KITCHEN, data_dir / "rel-fuzz") as server:
        yield server
