"""The WebSocket endpoint of the sync protocol: a thin loop around SessionState and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth import AuthenticationError, UserIdentity
from app.engine import Outcome
from app.sync.protocol import decode_ts, encode_ts
from app.sync.session import ProtocolViolation, SessionState
from app.values import ValueEncodingError, decode_value, encode_value

if TYPE_CHECKING:
    from app.engine import Engine
    from app.sync.hub import Entry, Hub

log = logging.getLogger("convect.sync")
PING_INTERVAL = 15.0
MAX_QUEUED_BYTES = 16 * 1024 * 1024  # a client this far behind is dropped; it reconnects
MAX_ACTIONS_IN_FLIGHT = 64
MAX_ARGS_BYTES = 8 * 1024 * 1024  # a function's arguments, as on the HTTP API (DESIGN §2)


def _args(raw: Any) -> Any:
    """Wire args of a message (`[obj]`), still encoded; ValueError when malformed."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) > 1:
            raise ValueError("Functions take a single object of arguments")
        raw = raw[0] if raw else {}
    if not isinstance(raw, dict):
        raise ValueError(f"Function arguments must be an object, got {type(raw).__name__}")
    decode_value(raw)  # validates the encoding and the nesting depth
    if len(orjson.dumps(raw)) > MAX_ARGS_BYTES:
        raise ValueError(f"Arguments exceed {MAX_ARGS_BYTES} bytes")
    return raw


class SyncSession:
    """One connected socket."""

    def __init__(self, engine: Engine, hub: Hub, ws: WebSocket) -> None:
        self.engine = engine
        self.hub = hub
        self.ws = ws
        self.state = SessionState()
        self.identity: UserIdentity | None = None
        self.admin = False
        self.session_id: str | None = None
        self.out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.close_reason: tuple[int, str] | None = None
        self.mutations: asyncio.Queue[tuple[int, str, Any, UserIdentity | None, bool]] = (
            asyncio.Queue()
        )
        self.actions: set[asyncio.Task[None]] = set()
        self.queued_bytes = 0
        self.writer_task: asyncio.Task[None] | None = None
        self.draining = False
        self.busy = 0

    # ------------------------------------------------------------- output

    def send(self, msg: dict[str, Any]) -> None:
        """Queue a message (drops a client that cannot keep up)."""
        if self.closed:
            return
        data = orjson.dumps(msg)
        if self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            log.warning("sync client too slow (%d bytes queued); dropping it", self.queued_bytes)
            self.abort()
            return
        self.queued_bytes += len(data)
        self.out.put_nowait(data)

    def emit(self, ts: int, *, force: bool = False) -> None:
        """Send a Transition if there is one (hub callback after a refresh)."""
        if self.closed:
            return
        msg = self.state.transition(ts, force=force)
        if msg is not None:
            self.send(msg)

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued has been sent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = (code, reason[:120])
        self.out.put_nowait(None)

    async def drain(self, timeout: float = 10.0) -> None:
        """Finish the mutation in progress (queued ones are resent elsewhere), then close."""
        self.draining = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self.busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        self.close(1012, "ServiceRestart")

    def abort(self) -> None:
        """Drop a client that does not read: stop writing and let the connection close."""
        self.closed = True
        self.out = asyncio.Queue()
        self.queued_bytes = 0
        if self.writer_task is not None:
            self.writer_task.cancel()

    def fatal(self, message: str) -> None:
        """Send FatalError and close (client protocol violations only)."""
        self.send({"type": "FatalError", "error": message[:1000]})
        self.close(1008, "ProtocolViolation")

    async def writer(self) -> None:
        """Send queued messages in order; a JSON Ping when idle."""
        while True:
            try:
                item = await asyncio.wait_for(self.out.get(), PING_INTERVAL)
            except TimeoutError:
                item = orjson.dumps({"type": "Ping"})
                self.queued_bytes += len(item)
            if item is None:
                code, reason = self.close_reason or (1000, "")
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)
                return
            self.queued_bytes -= len(item)
            await self.ws.send_text(item.decode())

    # ------------------------------------------------------------- queries

    def _bind(self, qid: int) -> None:
        path, args, journal = self.state.queries[qid]
        try:
            wire_args = _args(args)
        except (ValueError, ValueEncodingError) as exc:
            from app.engine import Failure
            from app.sync.hub import Entry

            self.state.target[qid] = Entry(
                path,
                {},
                None,
                False,
                ("", "", ""),
                ready=True,
                failure=Failure(f"Invalid arguments: {exc}"),
                version=1,
            )
            return
        self.state.target[qid] = self.hub.subscribe(
            self, path, wire_args, self.identity, self.admin, journal
        )

    def _unbind(self, qid: int) -> None:
        entry: Entry | None = self.state.target.pop(qid, None)  # type: ignore[assignment]
        if entry is not None and self.hub.entries.get(entry.key) is entry:
            self.hub.unsubscribe(self, entry)

    def _changed(self) -> None:
        if self.state.complete():
            self.emit(self.hub.ts, force=True)
        else:
            self.hub.dirty_sessions.add(self)
            self.hub.request_refresh()

    def modify(self, msg: dict[str, Any]) -> None:
        """ModifyQuerySet."""
        added, removed = self.state.modify(
            msg.get("baseVersion"), msg.get("newVersion"), msg.get("modifications")
        )
        for qid in removed:
            self._unbind(qid)
        for qid in added:
            self._bind(qid)
        self._changed()

    async def authenticate(self, msg: dict[str, Any]) -> None:
        """Authenticate: verify, then re-key every query under the new identity."""
        base = msg.get("baseVersion")
        token_type = msg.get("tokenType")
        identity: UserIdentity | None
        try:
            if token_type == "User":
                value = msg.get("value")
                if not isinstance(value, str):
                    raise AuthenticationError("Authenticate needs a token value")
                identity, admin = await self.engine.identity_from_token(value), False
            elif token_type == "Admin":
                identity, admin = self._admin(msg), True
            elif token_type == "None":
                identity, admin = None, False
            else:
                raise ProtocolViolation(f"Unknown tokenType {token_type!r}")
        except AuthenticationError as exc:
            self.send(
                {
                    "type": "AuthError",
                    "error": str(exc),
                    "baseVersion": base if isinstance(base, int) else 0,
                    "authUpdateAttempted": True,
                }
            )
            self.close(1000, "AuthError")
            return
        self.state.authenticate(base)
        self.identity, self.admin = identity, admin
        for qid in list(self.state.target):
            self._unbind(qid)
            self._bind(qid)
        self._changed()

    def _admin(self, msg: dict[str, Any]) -> UserIdentity | None:
        key = self.engine.settings.admin_key
        value = msg.get("value")
        if (
            not key
            or not isinstance(value, str)
            or not hmac.compare_digest(value.encode(), key.encode())
        ):
            raise AuthenticationError("Invalid admin key")
        acting = msg.get("impersonating")
        if acting is None:
            return None
        try:
            return UserIdentity.from_dict(acting)
        except (ValueError, TypeError) as exc:
            raise AuthenticationError(f"Invalid impersonated identity: {exc}") from None

    # ------------------------------------------------------------- mutations and actions

    async def mutation_worker(self) -> None:
        """Run this socket's mutations one at a time, in arrival order."""
        while True:
            rid, path, raw_args, identity, admin = await self.mutations.get()
            if self.draining:
                continue  # the client resends it to another server after the close
            self.busy += 1
            try:
                await self._mutation(rid, path, raw_args, identity, admin)
            finally:
                self.busy -= 1

    async def _mutation(
        self, rid: int, path: str, raw_args: Any, identity: UserIdentity | None, admin: bool
    ) -> None:
        """Run one mutation; answer after the refresh that includes its commit."""
        outcome = await self._run(
            path, raw_args, identity, admin, "mutation", (self.session_id, rid)
        )
        if outcome.error is None and outcome.wrote:
            try:
                await self.hub.sync_after_commit()
            except TimeoutError:
                self.close(1011, "InternalServerError: live queries are behind")
                return
        self.send(
            _response("MutationResponse", rid, outcome, self.engine.settings.dev, with_ts=True)
        )
        self.emit(self.hub.ts, force=True)

    async def action(self, rid: int, path: str, raw_args: Any) -> None:
        """Run an action concurrently with others."""
        outcome = await self._run(path, raw_args, self.identity, self.admin, "action", None)
        self.send(
            _response("ActionResponse", rid, outcome, self.engine.settings.dev, with_ts=False)
        )

    async def _run(
        self,
        path: str,
        raw_args: Any,
        identity: UserIdentity | None,
        admin: bool,
        kind: str,
        session: tuple[str | None, int] | None,
    ) -> Outcome:
        from app.engine import Failure, FunctionNotFound

        try:
            args = decode_value(_args(raw_args))
        except (ValueError, ValueEncodingError) as exc:
            return Outcome(error=Failure(f"Invalid arguments: {exc}"))
        try:
            fn = self.engine.lookup(path, kind, admin=admin)  # type: ignore[arg-type]
        except FunctionNotFound as exc:
            return Outcome(error=Failure(str(exc)))
        dedupe = (session[0], session[1]) if session and session[0] else None
        return await self.engine.runner.execute(fn, args, identity, session=dedupe)  # type: ignore[arg-type]


def _response(kind: str, rid: int, outcome: Outcome, dev: bool, *, with_ts: bool) -> dict[str, Any]:
    lines = outcome.log_lines if dev else []
    if outcome.error is None:
        msg: dict[str, Any] = {
            "type": kind,
            "requestId": rid,
            "success": True,
            "result": outcome.value,
            "logLines": lines,
        }
        if with_ts:
            msg["ts"] = encode_ts(outcome.commit_ts or 0)
        return msg
    msg = {
        "type": kind,
        "requestId": rid,
        "success": False,
        "result": outcome.error.message,
        "logLines": lines,
    }
    if outcome.error.is_convex_error:
        msg["errorData"] = encode_value(outcome.error.data)
    return msg


def _int(msg: dict[str, Any], key: str) -> int:
    value = msg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolViolation(f"{msg.get('type')}.{key} must be a non-negative integer")
    return value


async def serve_socket(engine: Engine, hub: Hub, ws: WebSocket) -> None:
    """Serve one sync connection until it closes."""
    await ws.accept()
    session = SyncSession(engine, hub, ws)
    hub.sessions.add(session)
    writer = asyncio.create_task(session.writer())
    session.writer_task = writer
    mutator = asyncio.create_task(session.mutation_worker())
    reader = asyncio.create_task(_read(session))
    try:
        await asyncio.wait({writer, reader, mutator}, return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, mutator):
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("sync session failed", exc_info=task.exception())
        if not session.closed:  # a task failed: tell the client instead of going silent
            session.close(1011, "InternalServerError")
        if not writer.done():
            await asyncio.wait({writer}, timeout=5)
    finally:
        session.closed = True
        for task in (reader, mutator, writer, *session.actions):
            task.cancel()
        for qid in list(session.state.target):
            session._unbind(qid)
        hub.sessions.discard(session)
        hub.dirty_sessions.discard(session)


async def _read(session: SyncSession) -> None:
    ws = session.ws
    while not session.closed:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            break
        if message["type"] == "websocket.disconnect":
            break
        text = message.get("text")
        if text is None:
            session.fatal("Binary frames are not part of the protocol")
            break
        try:
            data = orjson.loads(text)
            if not isinstance(data, dict):
                raise ProtocolViolation("A message must be a JSON object")
            await _handle(session, data)
        except orjson.JSONDecodeError:
            session.fatal("Invalid JSON message")
        except ProtocolViolation as exc:
            session.fatal(str(exc))
    if not session.closed:
        session.close(1000, "")


async def _handle(session: SyncSession, msg: dict[str, Any]) -> None:
    kind = msg.get("type")
    if kind == "Connect":
        sid = msg.get("sessionId")
        if not isinstance(sid, str) or not sid or len(sid) > 128 or not sid.isprintable():
            raise ProtocolViolation("Connect needs a sessionId string")
        session.session_id = sid
        seen = msg.get("maxObservedTimestamp")
        if seen is not None:
            try:
                decode_ts(seen)
            except ValueError as exc:
                raise ProtocolViolation(f"maxObservedTimestamp: {exc}") from None
    elif kind == "ModifyQuerySet":
        session.modify(msg)
    elif kind == "Mutation":
        rid = _int(msg, "requestId")
        path = msg.get("udfPath")
        if not isinstance(path, str) or not path:
            raise ProtocolViolation("Mutation needs a udfPath string")
        session.mutations.put_nowait((rid, path, msg.get("args"), session.identity, session.admin))
    elif kind == "Action":
        rid = _int(msg, "requestId")
        path = msg.get("udfPath")
        if not isinstance(path, str) or not path:
            raise ProtocolViolation("Action needs a udfPath string")
        if len(session.actions) >= MAX_ACTIONS_IN_FLIGHT:
            session.close(1013, "TooManyConcurrentRequests")
            return
        task = asyncio.create_task(session.action(rid, path, msg.get("args")))
        session.actions.add(task)
        task.add_done_callback(session.actions.discard)
    elif kind == "Authenticate":
        await session.authenticate(msg)
    elif kind == "Event":
        return
    else:
        raise ProtocolViolation(f"Unknown message type {kind!r}")
