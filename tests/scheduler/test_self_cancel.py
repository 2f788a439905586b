"""A scheduled mutation that cancels itself ends `canceled`, seen through official clients."""

from __future__ import annotations

import asyncio

import httpx

from tests.scheduler.conftest import Deployment
from tests.support.npm import run_script


async def test_a_scheduled_mutation_that_cancels_itself_ends_canceled(
    app: httpx.AsyncClient, deployment: Deployment
) -> None:
    assert deployment.server is not None
    deployment.ensure_workers("w1")
    env = {"CONVECT_URL": deployment.server.url}
    out = await asyncio.to_thread(run_script, "scheduled_self_cancel.mjs", env=env)
    assert out["final"] == "canceled"
    assert out["states"][-1] == "canceled" and "success" not in out["states"]
    assert out["ran"] == 1  # its writes commit, once
    assert out["sawCanceledInside"] is True  # its own row reads canceled after the cancel
