"""A scripted sync-protocol client for tests: raw frames, no official client logic."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from app.sync.protocol import decode_ts


class SyncClient:
    """Speaks the Convex sync protocol frame by frame and tracks versions."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.session_id = str(uuid.uuid4())
        self.query_set = 0
        self.version: dict[str, Any] = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self.results: dict[int, Any] = {}
        self.next_query = 0
        self.next_request = 0
        self.transitions: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, base_url: str, path: str = "/api/1.48.0/sync", connect_msg: bool = True
    ) -> SyncClient:
        """Connect and (by default) send Connect."""
        url = base_url.replace("http://", "ws://") + path
        conn = await connect(url, max_size=64 * 1024 * 1024, open_timeout=10)
        client = cls(conn)
        if connect_msg:
            await client.connect()
        return client

    async def connect(
        self,
        connection_count: int = 0,
        last_close_reason: str = "InitialConnect",
        client_ts: int = 0,
    ) -> None:
        """Send Connect for `session_id` (set it first to resume another connection's)."""
        await self.send(
            {
                "type": "Connect",
                "sessionId": self.session_id,
                "connectionCount": connection_count,
                "lastCloseReason": last_close_reason,
                "clientTs": client_ts,
            }
        )

    async def send(self, msg: dict[str, Any]) -> None:
        """Send one JSON frame."""
        await self.conn.send(orjson.dumps(msg).decode())

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        """The next message (Pings skipped); applies Transitions, checking the version chain."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout  # Pings do not extend it
        while True:
            raw = await asyncio.wait_for(self.conn.recv(), max(0.0, deadline - loop.time()))
            msg: dict[str, Any] = orjson.loads(raw)
            if msg["type"] == "Ping":
                continue
            if msg["type"] == "Transition":
                assert msg["startVersion"] == self.version, (msg["startVersion"], self.version)
                assert decode_ts(msg["endVersion"]["ts"]) >= decode_ts(self.version["ts"])
                self.version = msg["endVersion"]
                for mod in msg["modifications"]:
                    if mod["type"] == "QueryRemoved":
                        self.results.pop(mod["queryId"], None)
                    else:
                        self.results[mod["queryId"]] = mod
                self.transitions.append(msg)
            else:
                self.other.append(msg)
            return msg

    async def recv_type(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Receive until a message of `kind` arrives (within `timeout` seconds in all)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                msg = await self.recv(max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(
                    f"no {kind} within {timeout} s; last messages: {self.other[-3:]}, "
                    f"{self.transitions[-2:]}"
                ) from None
            if msg["type"] == kind:
                return msg

    async def add(self, path: str, args: dict[str, Any] | None = None) -> int:
        """Subscribe; returns the query id (the Transition is not awaited)."""
        qid = self.next_query
        self.next_query += 1
        await self.modify([{"type": "Add", "queryId": qid, "udfPath": path, "args": [args or {}]}])
        return qid

    async def remove(self, qid: int) -> None:
        """Unsubscribe."""
        await self.modify([{"type": "Remove", "queryId": qid}])

    async def modify(self, mods: list[dict[str, Any]]) -> None:
        """Send a ModifyQuerySet moving the query set version by one."""
        await self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": mods,
            }
        )
        self.query_set += 1

    async def wait_query_set(self, version: int | None = None, timeout: float = 10) -> None:
        """Receive until the server confirmed our query set version."""
        want = self.query_set if version is None else version
        while self.version["querySet"] < want:
            await self.recv(timeout)

    async def mutation(
        self, path: str, args: dict[str, Any], request_id: int | None = None
    ) -> dict[str, Any]:
        """Run a mutation; returns its MutationResponse after the Transition that follows it."""
        rid = self.next_request if request_id is None else request_id
        self.next_request = max(self.next_request, rid + 1)
        await self.send({"type": "Mutation", "requestId": rid, "udfPath": path, "args": [args]})
        response = await self.recv_type("MutationResponse")
        assert response["requestId"] == rid
        follow = await self.recv_type("Transition")
        if response["success"]:
            assert decode_ts(follow["endVersion"]["ts"]) >= decode_ts(response["ts"])
        return response

    def value(self, qid: int) -> Any:
        """The latest QueryUpdated value of a query (KeyError if it failed or is absent)."""
        mod = self.results[qid]
        assert mod["type"] == "QueryUpdated", mod
        return mod["value"]

    async def close(self) -> None:
        """Close the socket."""
        await self.conn.close()
