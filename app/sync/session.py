"""One socket's sync state: versions, its query set, what it has been sent. No I/O.

The client's state version is `{querySet, identity, ts}`. Its ModifyQuerySet and
Authenticate messages set a *target* (queries by id, identity); a Transition moves
the client from the last sent version to the target once every target query has a
result, sending only the results that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from app.server.refs import canonical_path
from app.sync.protocol import encode_ts


class ProtocolViolation(Exception):
    """The client broke the protocol (wrong base version, bad message): fatal for the socket."""


class Result(Protocol):
    """What a query entry holds for sessions."""

    @property
    def ready(self) -> bool: ...
    @property
    def version(self) -> int: ...
    def modification(self, query_id: int) -> dict[str, Any]: ...


class AddedQuery(NamedTuple):
    """A query a ModifyQuerySet added, as the client sent it (the socket subscribes it;
    the session keeps only its id and path)."""

    query_id: int
    path: str  # canonical
    args: Any  # as sent: `[{...}]`
    journal: Any


@dataclass
class SessionState:
    """The pure per-socket state machine."""

    query_set: int = 0  # newest ModifyQuerySet version received
    identity: int = 0  # newest identity version (Authenticate count)
    sent_query_set: int = 0
    sent_identity: int = 0
    sent_ts: int = 0
    queries: dict[int, str] = field(default_factory=dict)  # the query set: id -> path
    target: dict[int, Result] = field(default_factory=dict)
    sent: dict[int, tuple[Result, int]] = field(default_factory=dict)  # id -> (entry, version)

    def modify(
        self, base: Any, new: Any, modifications: Any, *, max_queries: int | None = None
    ) -> tuple[list[AddedQuery], list[int]]:
        """Apply a ModifyQuerySet; return (the queries added, the ids removed).

        `max_queries` bounds the query set (and so a frame's modifications): one over is a
        protocol violation that applies nothing.
        """
        if not isinstance(base, int) or base != self.query_set:
            raise ProtocolViolation(
                f"Base version {base} passed up doesn't match the current version {self.query_set}"
            )
        if not isinstance(new, int) or new != base + 1:
            raise ProtocolViolation(f"New version {new} must be the base version plus one")
        if not isinstance(modifications, list):
            raise ProtocolViolation("modifications must be a list")
        if max_queries is not None and len(modifications) > 2 * max_queries:
            raise ProtocolViolation(
                f"Too many modifications in one ModifyQuerySet ({len(modifications)}; "
                f"limit: {2 * max_queries}, CONVECT_MAX_SOCKET_QUERIES x 2)"
            )
        added: list[AddedQuery] = []
        removed: list[int] = []
        staged = dict(self.queries)
        for mod in modifications:
            if not isinstance(mod, dict):
                raise ProtocolViolation("each modification must be an object")
            qid = mod.get("queryId")
            if not isinstance(qid, int) or isinstance(qid, bool) or qid < 0:
                raise ProtocolViolation("queryId must be a non-negative integer")
            if mod.get("type") == "Add":
                path = mod.get("udfPath")
                if not isinstance(path, str) or not path:
                    raise ProtocolViolation("Add needs a udfPath string")
                if qid in staged:
                    raise ProtocolViolation(f"Query {qid} is already in the query set")
                # (the canonical path: one string shared by every query of a function)
                path = staged[qid] = canonical_path(path)
                added.append(AddedQuery(qid, path, mod.get("args", [{}]), mod.get("journal")))
            elif mod.get("type") == "Remove":
                if qid not in staged:
                    raise ProtocolViolation(f"Query {qid} is not in the query set")
                del staged[qid]
                removed.append(qid)
            else:
                raise ProtocolViolation(f"Unknown modification type {mod.get('type')!r}")
        if max_queries is not None and len(staged) > max_queries:
            raise ProtocolViolation(
                f"Too many queries on one connection ({len(staged)}; limit: {max_queries}, "
                "CONVECT_MAX_SOCKET_QUERIES)"
            )
        self.queries = staged
        self.query_set = new
        return added, removed

    def authenticate(self, base: Any) -> None:
        """Apply an Authenticate: the identity version moves to base + 1."""
        if not isinstance(base, int) or base != self.identity:
            raise ProtocolViolation(
                f"Authenticate base version {base} does not match {self.identity}"
            )
        self.identity = base + 1

    def complete(self) -> bool:
        """True when every target query has a result."""
        return all(r.ready for r in self.target.values())

    def transition(self, ts: int, *, force: bool = False) -> dict[str, Any] | None:
        """The next Transition to send, or None (nothing to say, or results pending)."""
        if not self.complete():
            if not force:
                return None
            return self._message(self.sent_query_set, self.sent_identity, ts, [])
        mods: list[dict[str, Any]] = []
        for qid, entry in self.target.items():
            previous = self.sent.get(qid)
            if previous is None or previous[0] is not entry or previous[1] != entry.version:
                mods.append(entry.modification(qid))
        for qid in self.sent:
            if qid not in self.target:
                mods.append({"type": "QueryRemoved", "queryId": qid})
        changed = (
            mods or self.sent_query_set != self.query_set or self.sent_identity != self.identity
        )
        if not changed and not force and ts == self.sent_ts:
            return None
        if not changed and not force:
            return None
        self.sent = {qid: (e, e.version) for qid, e in self.target.items()}
        return self._message(self.query_set, self.identity, ts, mods)

    def _message(self, qs: int, ident: int, ts: int, mods: list[dict[str, Any]]) -> dict[str, Any]:
        ts = max(ts, self.sent_ts)
        msg = {
            "type": "Transition",
            "startVersion": {
                "querySet": self.sent_query_set,
                "identity": self.sent_identity,
                "ts": encode_ts(self.sent_ts),
            },
            "endVersion": {"querySet": qs, "identity": ident, "ts": encode_ts(ts)},
            "modifications": mods,
        }
        self.sent_query_set, self.sent_identity, self.sent_ts = qs, ident, ts
        return msg
