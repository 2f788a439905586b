"""The WebSocket endpoint of the sync protocol: a thin loop around SessionState and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth import AuthenticationError, Principal, UserIdentity, token_expiry
from app.engine import Failure, InvalidArgs, Outcome, decode_args, wire_args
from app.server.functions import Kind
from app.sync.hub import Entry
from app.sync.protocol import decode_ts, function_response
from app.sync.session import ProtocolViolation, SessionState
from app.values import kept

if TYPE_CHECKING:
    from app.engine import Engine
    from app.sync.hub import Hub

log = logging.getLogger("convect.sync")
PING_INTERVAL = 15.0
MAX_QUEUED_BYTES = 16 * 1024 * 1024  # a client this far behind is dropped; it reconnects
MAX_ACTIONS_IN_FLIGHT = 64


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
        self.mutations: asyncio.Queue[tuple[int, str, Any, UserIdentity | None, bool, int]] = (
            asyncio.Queue()
        )
        self.actions: set[asyncio.Task[None]] = set()
        self.queued_bytes = 0
        self.mutation_bytes = 0  # frames of the mutations waiting in `mutations`
        self.writer_task: asyncio.Task[None] | None = None
        self.draining = False
        self.busy = 0
        self.expiry: asyncio.TimerHandle | None = None  # the user token's `exp`

    # ------------------------------------------------------------- output

    def send(self, msg: dict[str, Any]) -> None:
        """Queue a message (drops a client that cannot keep up)."""
        if self.closed:
            return
        data = kept(orjson.dumps(msg))  # queued: its size is what the bounds count
        if self.queued_bytes + len(data) > MAX_QUEUED_BYTES:
            log.warning("sync client too slow (%d bytes queued); dropping it", self.queued_bytes)
            self.abort()
            return
        self.queued_bytes += len(data)
        self.out.put_nowait(data)
        if self.hub.add_queued(len(data)) > self.engine.settings.max_queued_bytes:
            self.hub.drop_slowest()

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
        self.hub.add_queued(-self.queued_bytes)
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
                self.hub.add_queued(len(item))
            if item is None:
                code, reason = self.close_reason or (1000, "")
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)
                return
            self.queued_bytes -= len(item)
            self.hub.add_queued(-len(item))
            await self.ws.send_text(item.decode())

    # ------------------------------------------------------------- queries

    def _bind(self, qid: int, path: str, args: Any, journal: Any) -> None:
        """Subscribe query `qid`: `path` with `args` as the client sent them."""
        try:
            wire = wire_args(args)
        except InvalidArgs as exc:
            self.state.target[qid] = Entry.failed(path, f"Invalid arguments: {exc.reason}")
            return
        self.state.target[qid] = self.hub.subscribe(
            self, path, wire, self.identity, self.admin, journal
        )

    def _unbind(self, qid: int) -> None:
        result = self.state.target.pop(qid, None)
        if isinstance(result, Entry):  # the hub ignores entries it does not hold
            self.hub.unsubscribe(self, result)

    def unbind_all(self) -> None:
        """Give back every query to the hub (the socket is closing)."""
        for qid in list(self.state.target):
            self._unbind(qid)

    def _changed(self) -> None:
        if self.state.complete():
            self.emit(self.hub.ts, force=True)
        else:
            self.hub.mark_dirty(self)

    def modify(self, msg: dict[str, Any]) -> None:
        """ModifyQuerySet."""
        added, removed = self.state.modify(
            msg.get("baseVersion"),
            msg.get("newVersion"),
            msg.get("modifications"),
            max_queries=self.engine.settings.max_socket_queries,
        )
        for qid in removed:
            self._unbind(qid)
        for query in added:
            self._bind(*query)
        self._changed()

    def queue_mutation(self, rid: int, path: str, args: Any, size: int) -> None:
        """Queue a Mutation frame of `size` bytes for the mutation worker, within the
        socket's bounds (a client that far ahead is broken or hostile: it is closed)."""
        settings = self.engine.settings
        if self.mutations.qsize() >= settings.max_socket_mutations:
            raise ProtocolViolation(
                f"Too many mutations waiting on one connection (limit: "
                f"{settings.max_socket_mutations}, CONVECT_MAX_SOCKET_MUTATIONS)"
            )
        if self.mutation_bytes + size > settings.max_socket_mutation_bytes:
            raise ProtocolViolation(
                f"Too many bytes of mutations waiting on one connection (limit: "
                f"{settings.max_socket_mutation_bytes}, CONVECT_MAX_SOCKET_MUTATION_BYTES)"
            )
        self.mutation_bytes += size
        self.mutations.put_nowait((rid, path, args, self.identity, self.admin, size))

    async def authenticate(self, msg: dict[str, Any]) -> None:
        """Authenticate: verify, then re-key every query under the new identity."""
        base = msg.get("baseVersion")
        token_type = msg.get("tokenType")
        identity: UserIdentity | None
        try:
            expires: float | None = None
            if token_type == "User":
                value = msg.get("value")
                if not isinstance(value, str):
                    raise AuthenticationError("Authenticate needs a token value")
                identity, admin = await self.engine.identity_from_token(value), False
                expires = token_expiry(value)
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
        self._expire_at(expires)
        for qid, old in list(self.state.target.items()):
            if not isinstance(old, Entry) or old.failed_from_start:
                continue  # (invalid arguments stay invalid under any identity)
            self._unbind(qid)  # a page keeps its end under the new identity, as in Convex
            self.state.target[qid] = self.hub.subscribe(
                self, old.path, None, self.identity, self.admin, old.journal,
                args_text=old.args_text,
            )  # fmt: skip
        self._changed()

    def _expire_at(self, expires: float | None) -> None:
        """End the identity when its token expires, as Convex does: an AuthError (not an
        update the client attempted), then the socket closes; the official clients fetch a
        fresh token through their auth callback and reconnect with it."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if expires is None:
            return
        delay = max(0.0, expires - time.time())
        self.expiry = asyncio.get_running_loop().call_later(delay, self._expired)

    def _expired(self) -> None:
        self.expiry = None
        self.identity, self.admin = None, False  # nothing more runs as that user
        self.send(
            {
                "type": "AuthError",
                "error": "Convex token identity expired",
                "baseVersion": self.state.identity,
                "authUpdateAttempted": False,
            }
        )
        self.close(1000, "AuthError")

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
            rid, path, raw_args, identity, admin, size = await self.mutations.get()
            self.mutation_bytes -= size
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
            function_response(
                "MutationResponse", rid, outcome, dev=self.engine.settings.dev, with_ts=True
            )
        )
        self.emit(self.hub.ts, force=True)

    async def action(self, rid: int, path: str, raw_args: Any) -> None:
        """Run an action concurrently with others."""
        outcome = await self._run(path, raw_args, self.identity, self.admin, "action", None)
        self.send(
            function_response(
                "ActionResponse", rid, outcome, dev=self.engine.settings.dev, with_ts=False
            )
        )

    async def _run(
        self,
        path: str,
        raw_args: Any,
        identity: UserIdentity | None,
        admin: bool,
        kind: Kind,
        session: tuple[str | None, int] | None,
    ) -> Outcome:
        try:
            args = decode_args(raw_args)
        except InvalidArgs as exc:
            return Outcome(error=Failure(f"Invalid arguments: {exc.reason}"))
        dedupe = (session[0], session[1]) if session and session[0] else None
        principal = Principal(identity, admin)
        return await self.engine.call(path, args, principal, kind, session=dedupe)


MAX_PROTOCOL_INT = 2**53 - 1  # the clients' numbers are JavaScript's safe integers


def _int(msg: dict[str, Any], key: str) -> int:
    value = msg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PROTOCOL_INT:
        raise ProtocolViolation(
            f"{msg.get('type')}.{key} must be an integer from 0 to {MAX_PROTOCOL_INT}"
        )
    return value


async def serve_socket(engine: Engine, hub: Hub, ws: WebSocket) -> None:
    """Serve one sync connection until it closes."""
    await ws.accept()
    limit = engine.settings.max_sockets
    if len(hub.sessions) >= limit:
        # Past the process's bound: the client backs off and reconnects (to another pod).
        await ws.close(1013, f"TryAgainLater: too many connections (limit: {limit})")
        return
    session = SyncSession(engine, hub, ws)
    hub.attach(session)
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
        if session.expiry is not None:
            session.expiry.cancel()
        for task in (reader, mutator, writer, *session.actions):
            task.cancel()
        session.unbind_all()
        hub.detach(session)


async def _read(session: SyncSession) -> None:
    ws = session.ws
    while not session.closed:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            break
        if message["type"] == "websocket.disconnect":
            break
        text = message.pop("text", None)
        del message  # (nothing of a frame is held while waiting for the next one)
        if text is None:
            session.fatal("Binary frames are not part of the protocol")
            break
        await _handle_frame(session, text)
        del text
    if not session.closed:
        session.close(1000, "")


async def _handle_frame(session: SyncSession, text: str) -> None:
    """Parse and handle one text frame (its parsed form is freed when this returns)."""
    try:
        data = orjson.loads(text)
        if not isinstance(data, dict):
            raise ProtocolViolation("A message must be a JSON object")
        await _handle(session, data, len(text))
    except orjson.JSONDecodeError:
        session.fatal("Invalid JSON message")
    except ProtocolViolation as exc:
        session.fatal(str(exc))


async def _handle(session: SyncSession, msg: dict[str, Any], size: int) -> None:
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
        session.queue_mutation(rid, path, msg.get("args"), size)
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
