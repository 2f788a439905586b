"""Live paginated queries keep one page end per subscription, across official clients."""

from __future__ import annotations

import httpx

from tests.support.npm import run_script
from tests.support.servers import ServerProcess


def test_npm_clients_with_the_same_paginated_query_get_their_own_first_page(
    demo_server: ServerProcess, demo: httpx.AsyncClient
) -> None:
    out = run_script("paginate_clients.mjs", env={"CONVECT_URL": demo_server.url})
    assert out["firstEmpty"] == {"n": 0, "status": "Exhausted"}
    assert out["firstGrown"] == {"n": 7, "status": "Exhausted"}  # its page had no end
    fresh = {"n": 5, "status": "CanLoadMore"}
    assert out["second"] == fresh
    assert out["secondMore"] == {"n": 7, "status": "Exhausted"}
    assert out["third"] == fresh
    assert out["reloaded"] == fresh
    # A new message joins each live first page (its start is open), as in Convex.
    assert out["afterInsert"] == {"reloaded": {"n": 6, "status": "CanLoadMore"},
                                  "third": {"n": 6, "status": "CanLoadMore"}}  # fmt: skip
    assert out["oneShot"] == {"n": 5, "isDone": False}
