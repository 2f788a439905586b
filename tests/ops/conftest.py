"""Operations fixtures: a prod-mode `convect serve` of the ledger app, and a metrics reader."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _server
from tests.support.servers import ADMIN_KEY, ServerProcess, emptied_client

OPSAPP = Path(__file__).resolve().parent / "opsapp"
ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}  # /metrics in prod mode
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="session")
def ops_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of tests/ops/opsapp in prod mode (JSON logs) on its own database."""
    yield from _server(services, data_dir, "ops", OPSAPP, "ops", CONVECT_MODE="prod")


@pytest.fixture
async def ops(ops_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the ops server, on emptied tables."""
    async with emptied_client(ops_server) as client:
        yield client


def parse_metrics(text: str) -> Samples:
    """Every sample of an exposition text by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


async def scrape(client: httpx.AsyncClient) -> Samples:
    """GET /metrics and parse it."""
    r = await client.get("/metrics", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_metrics(r.text)


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
