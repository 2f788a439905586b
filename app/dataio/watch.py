"""`convect run PATH --watch`: subscribe to a query over the sync protocol, print each result.

Talks to a running server (`convect dev` or `serve`) as admin, like the dashboard: the
query may be internal. Every new result is printed as JSON on stdout; failures go to
stderr and watching goes on (a dev reload may fix them). A lost connection is retried.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import IO, Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

CLIENT_VERSION = "1.48.0"
RETRY_S = (0.2, 0.5, 1.0, 2.0)


class WatchError(Exception):
    """The query cannot be watched (no server, bad admin key, unknown function)."""


def sync_url(base_url: str) -> str:
    """The sync WebSocket URL of a server's base URL."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    elif not base.startswith(("ws://", "wss://")):
        base = "ws://" + base
    return f"{base}/api/{CLIENT_VERSION}/sync"


class Watcher:
    """One watched query; prints its results until stopped."""

    def __init__(
        self,
        base_url: str,
        admin_key: str | None,
        path: str,
        args: dict[str, Any],
        *,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        pretty: bool | None = None,
    ) -> None:
        self.url = sync_url(base_url)
        self.base_url = base_url
        self.admin_key = admin_key
        self.path = path
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.pretty = self.out.isatty() if pretty is None else pretty
        self.results = 0
        self._last: bytes | None = None

    def _print(self, value: Any) -> None:
        option = orjson.OPT_INDENT_2 if self.pretty else 0
        text = orjson.dumps(value, option=option)
        if text == self._last:
            return
        self._last = text
        self.results += 1
        self.out.write(text.decode() + "\n")
        self.out.flush()

    def _fail(self, mod: dict[str, Any]) -> None:
        message = str(mod.get("errorMessage", "query failed"))
        detail = message.partition("] Server Error\n")[2].strip()  # past Convex's framing
        if self.results == 0 and detail.startswith("Could not find"):
            raise WatchError(
                f"{detail.rstrip('.')}: check the path (module:name, e.g. messages:list) and "
                "that it is a query"
            )
        self._last = None
        self.err.write(f"query failed: {message}\n")
        if "errorData" in mod:
            self.err.write(orjson.dumps(mod["errorData"]).decode() + "\n")
        self.err.flush()

    async def _open(self) -> ClientConnection:
        try:
            return await connect(self.url, max_size=64 * 1024 * 1024, open_timeout=10)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise WatchError(
                f"cannot connect to {self.base_url} ({exc}); is `convect dev` running? "
                "Point --url (or CONVECT_URL) at the server"
            ) from None

    async def _session(self, ws: ClientConnection) -> None:
        async def send(msg: dict[str, Any]) -> None:
            await ws.send(orjson.dumps(msg).decode())

        await send(
            {
                "type": "Connect",
                "sessionId": str(uuid.uuid4()),
                "connectionCount": 0,
                "lastCloseReason": "InitialConnect",
                "clientTs": 0,
            }
        )
        if self.admin_key:
            await send(
                {
                    "type": "Authenticate",
                    "baseVersion": 0,
                    "tokenType": "Admin",
                    "value": self.admin_key,
                }
            )
        await send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {"type": "Add", "queryId": 0, "udfPath": self.path, "args": [self.args]}
                ],
            }
        )
        async for raw in ws:
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind == "AuthError":
                raise WatchError(
                    f"the server refused the admin key ({msg.get('error')}); set "
                    "CONVECT_ADMIN_KEY to the key `convect dev` printed"
                )
            if kind == "FatalError":
                raise WatchError(f"the server closed the session: {msg.get('error')}")
            if kind != "Transition":
                continue
            for mod in msg.get("modifications", []):
                if mod.get("queryId") != 0:
                    continue
                if mod.get("type") == "QueryUpdated":
                    self._print(mod.get("value"))
                elif mod.get("type") == "QueryFailed":
                    self._fail(mod)

    async def run(self) -> None:
        """Watch until cancelled; WatchError when the query cannot be watched at all."""
        attempt = 0
        while True:
            ws = await self._open() if attempt == 0 else await self._reopen(attempt)
            try:
                await self._session(ws)
            except ConnectionClosed:
                pass
            finally:
                await ws.close()
            attempt += 1
            self.err.write("connection lost; reconnecting...\n")
            self.err.flush()

    async def _reopen(self, attempt: int) -> ClientConnection:
        while True:
            await asyncio.sleep(RETRY_S[min(attempt - 1, len(RETRY_S) - 1)])
            try:
                ws = await self._open()
            except WatchError:
                attempt += 1
                continue
            return ws
