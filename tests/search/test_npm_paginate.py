"""The official npm client pages through a query over the sync socket."""

from __future__ import annotations

import httpx

from tests.support.npm import run_script
from tests.support.servers import ServerProcess


def test_npm_client_loads_pages_to_the_end_and_sees_live_changes(
    demo_server: ServerProcess, demo: httpx.AsyncClient
) -> None:
    out = run_script("search_paginate.mjs", env={"CONVECT_URL": demo_server.url})
    names = [f"m{i}" for i in range(13)]
    assert out["first"] == names[:5]
    assert out["second"] == names[:10]
    assert out["exhausted"] == names[:12]
    assert out["appended"] == names
    assert out["edited"] == [*names[:6], "m6 edited", *names[7:]]
    after = [*names[:2], *names[3:6], "m6 edited", *names[7:]]
    assert out["afterDelete"] == after  # no document twice, none lost
    assert "LoadingMore" in out["statuses"] or "CanLoadMore" in out["statuses"]
