"""Client-called actions on the arq workers (`CONVECT_RUN_ACTIONS=worker`).

The API process (`RemoteActions`) hands a client's action to the deployment's arq queue
and waits for its outcome; a worker (`ActionJobs`) runs it through the engine's one
`execute` path. The hand-off, per call:

1. the caller writes the call (path, args, identity, request id, where to answer) under
   a key of its own, with an expiry, and puts a job naming it on the arq queue; it also
   pushes the job id on a wake list, on which an idle worker blocks (`BLPOP`) to claim
   the job at once rather than at its next poll of the queue;
2. a worker claims the job and takes the call with `GETDEL`: only one take can ever get
   it, so an action runs at most once (a job delivered again finds nothing);
3. the worker answers `started` (with its id), runs the action, then answers its
   outcome (value or error, log lines) — both pushed on the caller's reply list;
4. the caller reads its reply list with one blocking `BLPOP` loop per process (one
   Redis connection, however many calls wait) and wakes the waiting call.

A call no worker takes within `action_start_timeout` is withdrawn (`DEL` of its key:
if that deletes it, no worker will ever run it) and fails as unavailable. A call whose
worker's lease runs out (the worker died) fails as interrupted; it is not run again.
A call with no outcome by `action_timeout` (plus a short grace for the worker's own
timeout answer) fails with Convex's time-limit text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth import UserIdentity
from app.engine.outcome import ExecutionTimeout, Failure, Outcome, failure_of, new_request_id
from app.values import UNSET, decode_value, encode_value

if TYPE_CHECKING:
    from app.engine import Engine
    from app.scheduler.service import SchedulerService
    from app.server.functions import RegisteredFunction

log = logging.getLogger("convect.actions")
JOB_PREFIX = "convect-action:"
TIMEOUT_GRACE_S = 2.0  # the worker's own timeout answer (with log lines) usually comes first
REPLY_TTL_S = 3600  # a reply list outlives a caller that went away by this much
LEASE_CHECK_S = 1
HEARTBEAT_S = 1.0  # a worker marks itself alive this often (from a thread of its own)
ALIVE_TTL_MS = 5_000  # and is taken for dead this long after its last mark
NO_WORKER = (
    "No worker took this action within {:g} s (CONVECT_ACTION_START_TIMEOUT): "
    "actions run on `convect worker` processes (CONVECT_RUN_ACTIONS=worker); it was not run"
)
WORKER_GONE = (
    "Transient error while executing action: the worker running it stopped ({}); "
    "it was not run again"
)
SHUT_DOWN = (
    "Transient error while executing action: this server shut down before its result came "
    "(it may still finish on its worker)"
)
INTERRUPTED = "Transient error while executing action: it was interrupted (the worker shut down)"


def is_action_job(job_id: str) -> bool:
    """True for the arq job id of a client-called action."""
    return job_id.startswith(JOB_PREFIX)


def _call_key(namespace: str, call_id: str) -> str:
    return f"convect:{namespace}:action:{call_id}"


def wake_key(namespace: str) -> str:
    """The list a worker blocks on to claim a new action at once (not at its next poll)."""
    return f"convect:{namespace}:actions:wake"


def _alive_key(namespace: str, worker_id: str) -> str:
    return f"convect:{namespace}:alive:{worker_id}"


def encode_failure(failure: Failure) -> dict[str, Any]:
    """A failure as the worker sends it back (the exception stays on the worker)."""
    out: dict[str, Any] = {
        "message": failure.message,
        "cause": failure.cause,
        "transient": failure.transient,
        "overloaded": failure.overloaded,
    }
    if failure.data is not UNSET:
        out["data"] = encode_value(failure.data)
    return out


def decode_failure(data: dict[str, Any]) -> Failure:
    """Inverse of `encode_failure`."""
    return Failure(
        str(data["message"]),
        decode_value(data["data"]) if "data" in data else UNSET,
        cause=str(data.get("cause", "")),
        transient=bool(data.get("transient")),
        overloaded=bool(data.get("overloaded")),
    )


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    """An action's outcome as JSON (its value is already wire-encoded)."""
    return {
        "value": outcome.value,
        "error": encode_failure(outcome.error) if outcome.error is not None else None,
        "logLines": outcome.log_lines,
        "requestId": outcome.request_id,
        "durationMs": outcome.duration_ms,
    }


def decode_outcome(data: dict[str, Any]) -> Outcome:
    """Inverse of `encode_outcome`."""
    error = data.get("error")
    return Outcome(
        value=data.get("value"),
        error=decode_failure(error) if error is not None else None,
        log_lines=list(data.get("logLines") or []),
        request_id=str(data.get("requestId", "")),
        duration_ms=float(data.get("durationMs", 0.0)),
    )


# ------------------------------------------------------------------ the caller's side


@dataclass
class _Waiting:
    """One call this process waits on."""

    outcome: asyncio.Future[Outcome]
    request_id: str
    started: asyncio.Event = field(default_factory=asyncio.Event)
    worker: str | None = None


class RemoteActions:
    """The API process's end: runs client-called actions on the workers (`ActionRunner`)."""

    def __init__(self, engine: Engine, service: SchedulerService) -> None:
        self.engine = engine
        self.service = service
        self.id = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._waiting: dict[str, _Waiting] = {}
        self._reader: Redis | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._reply_key = ""

    async def start(self) -> None:
        """Open the reply connection and start reading replies."""
        url = self.engine.settings.redis_url
        if not url:
            raise RuntimeError("Actions on workers need REDIS_URL (see app.embedded.resolve)")
        self._reply_key = self.service.queue.key(f"replies:{self.id}")
        self._reader = Redis.from_url(url)
        self._loop_task = asyncio.create_task(self._read_replies(), name="convect-action-replies")

    async def stop(self) -> None:
        """Stop reading replies; calls still waiting fail as interrupted."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for waiting in self._waiting.values():
            if not waiting.outcome.done():
                waiting.outcome.set_result(self._failed(waiting.request_id, SHUT_DOWN))
        if self._reader is not None:
            await self._reader.aclose()
            self._reader = None

    async def run(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        request_id: str | None = None,
    ) -> Outcome:
        """Run action `fn` on a worker and return its outcome (never raises for its errors).

        Counted in this process's metrics (which `/metrics` serves; workers serve none),
        duration including the hand-off; the worker's call log has the call. In `dev`
        the worker shares this engine and has counted it already.
        """
        outcome = await self._run(fn, args, identity, request_id)
        if self.engine.role != "dev":
            self.engine.metrics.observe(fn, outcome)
        return outcome

    async def _run(
        self,
        fn: RegisteredFunction,
        args: Any,
        identity: UserIdentity | None,
        request_id: str | None,
    ) -> Outcome:
        settings = self.engine.settings
        rid = request_id or new_request_id()
        started = time.perf_counter()
        call_id = os.urandom(12).hex()
        waiting = _Waiting(asyncio.get_running_loop().create_future(), rid)
        self._waiting[call_id] = waiting
        queue = self.service.queue
        key = _call_key(queue.namespace, call_id)
        try:
            payload = orjson.dumps(
                {
                    "path": fn.path,
                    "args": encode_value(args),
                    "identity": identity.to_dict() if identity is not None else None,
                    "requestId": rid,
                    "reply": self._reply_key,
                }
            )
            start_timeout = settings.action_start_timeout
            job_id, wake = JOB_PREFIX + call_id, wake_key(queue.namespace)
            async with queue.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, payload, px=int((start_timeout + 60) * 1000))
                pipe.zadd(queue.name, {job_id: int(time.time() * 1000)})
                pipe.rpush(wake, job_id)
                pipe.expire(wake, 60)
                await pipe.execute()
            if not await self._wait_started(waiting, start_timeout):
                async with queue.redis.pipeline(transaction=False) as pipe:
                    pipe.delete(key)
                    pipe.zrem(queue.name, job_id)
                    pipe.lrem(wake, 0, job_id)
                    deleted, _, _ = await pipe.execute()
                if deleted:  # withdrawn before any worker took it: it never runs
                    return self._failed(rid, NO_WORKER.format(start_timeout), unavailable=True)
            limit = settings.action_timeout
            left = limit + TIMEOUT_GRACE_S - (time.perf_counter() - started)
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    outcome = await waiting.outcome
            except TimeoutError:
                error = failure_of(ExecutionTimeout(limit), rid, fn.path, fn.kind, dev=settings.dev)
                return Outcome(error=error, request_id=rid)
        except asyncio.CancelledError:  # the caller went away: withdraw it if not yet taken
            task = asyncio.ensure_future(self._withdraw(key, call_id))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise
        except (RedisError, OSError) as exc:
            log.warning("could not hand action %s to a worker: %s", fn.path, exc)
            text = f"Could not hand the action to a worker (Redis: {exc}); retry shortly"
            return self._failed(rid, text, unavailable=True)
        finally:
            del self._waiting[call_id]
        outcome.request_id = outcome.request_id or rid
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        return outcome

    async def _withdraw(self, key: str, call_id: str) -> None:
        queue = self.service.queue
        async with queue.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            pipe.zrem(queue.name, JOB_PREFIX + call_id)
            await pipe.execute()

    @staticmethod
    async def _wait_started(waiting: _Waiting, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await waiting.started.wait()
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _failed(rid: str, text: str, *, unavailable: bool = False) -> Outcome:
        failure = Failure(
            f"[Request ID: {rid}] {text}", cause=text, transient=True, overloaded=unavailable
        )
        return Outcome(error=failure, request_id=rid)

    # ------------------------------------------------------------- replies

    async def _read_replies(self) -> None:
        """One BLPOP loop for every waiting call; checks running calls' workers each second."""
        reader: Any = self._reader  # redis-py's list commands are typed sync-or-async
        assert reader is not None
        delay = 0.5
        next_check = time.monotonic() + LEASE_CHECK_S
        while True:
            try:
                item = await reader.blpop([self._reply_key], timeout=LEASE_CHECK_S)
                if item is not None:
                    self._on_reply(item[1])
                    for raw in await reader.lpop(self._reply_key, 100) or []:
                        self._on_reply(raw)
                delay = 0.5
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + LEASE_CHECK_S
                    await self._check_workers()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading action replies failed (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _on_reply(self, raw: bytes) -> None:
        message = orjson.loads(raw)
        waiting = self._waiting.get(message.get("id", ""))
        if waiting is None:
            return  # the caller gave up
        if "started" in message:
            waiting.worker = str(message["started"])
            waiting.started.set()
        elif "outcome" in message:
            waiting.started.set()
            if not waiting.outcome.done():
                waiting.outcome.set_result(decode_outcome(message["outcome"]))

    async def _check_workers(self) -> None:
        """Fail the calls whose worker stopped marking itself alive (it died: nothing will
        answer). The mark comes from a thread, so a CPU-bound action does not stop it."""
        running = sorted(
            {w.worker for w in self._waiting.values() if w.worker and not w.outcome.done()}
        )
        if not running:
            return
        queue = self.service.queue
        marks = await queue.redis.mget([_alive_key(queue.namespace, w) for w in running])
        dead = {w for w, mark in zip(running, marks, strict=True) if mark is None}
        for waiting in self._waiting.values():
            worker = waiting.worker
            if worker in dead and not waiting.outcome.done():
                failed = self._failed(waiting.request_id, WORKER_GONE.format(worker))
                waiting.outcome.set_result(failed)


# ------------------------------------------------------------------ the worker's side


class ActionJobs:
    """The worker's end: takes a client-called action (once) and answers its outcome."""

    def __init__(self, service: SchedulerService, worker_id: str) -> None:
        self.service = service
        self.engine = service.engine
        self.worker_id = worker_id
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        """Mark this worker alive every second from a thread (callers watch the mark)."""
        url = self.engine.settings.redis_url
        assert url is not None
        key = _alive_key(self.service.queue.namespace, self.worker_id)
        self._stop.clear()
        self._beat = threading.Thread(
            target=self._heartbeat, args=(url, key), name="convect-alive", daemon=True
        )
        self._beat.start()

    def stop_heartbeat(self) -> None:
        """Stop marking (the mark expires; running calls' callers then fail them)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(5)
            self._beat = None

    def _heartbeat(self, url: str, key: str) -> None:
        client = redis.Redis.from_url(url, socket_timeout=ALIVE_TTL_MS / 2000)
        try:
            while True:
                try:
                    client.set(key, b"1", px=ALIVE_TTL_MS)
                except RedisError as exc:
                    log.warning("could not mark worker %s alive: %s", self.worker_id, exc)
                if self._stop.wait(HEARTBEAT_S):
                    break
            with contextlib.suppress(RedisError):
                client.delete(key)
        finally:
            client.close()

    async def run(self, job_id: str, job_try: int = 1) -> None:
        """Run the call a job names, unless another delivery (or nobody) took it already."""
        queue = self.service.queue
        call_id = job_id.removeprefix(JOB_PREFIX)
        raw = await queue.redis.getdel(_call_key(queue.namespace, call_id))
        if raw is None:
            return  # taken by an earlier delivery, or withdrawn by its caller
        call = orjson.loads(raw)
        reply = str(call["reply"])
        rid = str(call["requestId"])
        await self._answer(reply, {"id": call_id, "started": self.worker_id})
        try:
            outcome = await self._execute(call, rid)
        except asyncio.CancelledError:
            failure = Failure(
                f"[Request ID: {rid}] {INTERRUPTED}", cause=INTERRUPTED, transient=True
            )
            interrupted = Outcome(error=failure, request_id=rid)
            answer = {"id": call_id, "outcome": encode_outcome(interrupted)}
            with contextlib.suppress(Exception):
                await asyncio.shield(self._answer(reply, answer))
            raise
        await self._answer(reply, {"id": call_id, "outcome": encode_outcome(outcome)})

    async def _execute(self, call: dict[str, Any], rid: str) -> Outcome:
        engine = self.engine
        path = str(call["path"])
        fn = engine.registry.get(path)
        if fn is None or fn.kind != "action":
            text = f"Could not find public function for '{path}'"
            return Outcome(error=Failure(text, cause=text), request_id=rid)
        identity = call.get("identity")
        try:
            args = decode_value(call["args"])
            who = UserIdentity.from_dict(identity) if identity is not None else None
        except ValueError as exc:
            return Outcome(error=engine.failure(exc, rid, fn), request_id=rid)
        return await engine.execute(fn, args, who, request_id=rid)

    async def _answer(self, reply: str, message: dict[str, Any]) -> None:
        async with self.service.queue.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(reply, orjson.dumps(message))
            pipe.expire(reply, REPLY_TTL_S)
            await pipe.execute()


__all__ = [
    "ActionJobs",
    "RemoteActions",
    "decode_outcome",
    "encode_outcome",
    "is_action_job",
    "wake_key",
]
