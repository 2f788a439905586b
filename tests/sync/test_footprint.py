"""How much Python heap one live query holds, measured with tracemalloc.

A subscription flood leaves Python's small-object arenas pinned by whatever else was
allocated meanwhile, so what the process keeps after the attacker leaves follows what
the subscriptions took at their peak (docs/reliability.md, "Hostile clients"). Each
query here goes the production way: a ModifyQuerySet frame parsed and handled by a
socket session, subscribed in the hub, then settled with the read set of an index
range, as `messages:get_by_author` reads.
"""

from __future__ import annotations

import gc
import tracemalloc
from types import SimpleNamespace

import orjson

from app.db.query import IndexRange
from app.db.readset import RangeRead, ReadSet
from app.server.refs import CACHED_PATH_CHARS, _canonical_cached, canonical_path
from app.settings import Settings
from app.sync.hub import Run, frozen
from app.sync.socket import SyncSession
from tests.sync.test_hub_state import make_hub

QUERIES = 2_000
FIELDS = ("author", "_creationTime")


def test_a_live_query_holds_under_1300_bytes_of_python_heap() -> None:
    # Before this bound: 2,087 bytes (the parsed frame's arguments kept by the socket
    # and the entry, a dict of subscribers, unslotted entries and ranges, a set or list
    # and a tuple per key in the invalidation index); with it: about 1,100.
    hub = make_hub()
    engine = SimpleNamespace(settings=Settings(mode="prod"))
    sockets = [SyncSession(engine, hub, None) for _ in range(2)]  # type: ignore[arg-type]
    frames = [
        orjson.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {
                        "type": "Add",
                        "queryId": 300 + i,
                        "udfPath": "messages:get_by_author",
                        "args": [{"author": f"author-{n}-{i}"}],
                    }
                    for i in range(QUERIES // len(sockets))
                ],
            }
        ).decode()
        for n in range(len(sockets))
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for socket, frame in zip(sockets, frames, strict=True):
            hub.attach(socket)
            socket.modify(orjson.loads(frame))
        for entry in list(hub.entries.values()):
            read = RangeRead(
                IndexRange("messages", "by_author", FIELDS, eq=(entry.args["author"],))
            )
            hub._settle(entry, Run(frozen([]), None, (), None, ReadSet([read])), was_ready=False)
        gc.collect()
        per_query = (tracemalloc.get_traced_memory()[0] - before) / QUERIES
    finally:
        tracemalloc.stop()
    assert len(hub.entries) == QUERIES
    assert per_query < 1_300, per_query


def test_equal_function_paths_share_one_string_and_long_ones_are_not_remembered() -> None:
    parts = ["messages", "get_by_author"]
    first, second = ":".join(parts), ":".join(parts)  # equal texts, two objects
    assert first is not second
    assert canonical_path(first) is canonical_path(second) == "messages:get_by_author"
    assert canonical_path("messages.js:get_by_author") == canonical_path(first)
    held = _canonical_cached.cache_info().currsize
    long_path = "m" * (CACHED_PATH_CHARS + 1) + ":f"  # a client's text: not kept
    assert canonical_path(long_path) == long_path
    wide_path = "\U0001f600" * 60 + ".js:f"  # short in characters, 240 bytes of text
    assert canonical_path(wide_path) == "\U0001f600" * 60 + ":f"
    assert _canonical_cached.cache_info().currsize == held
