"""The `ctx` objects handed to queries, mutations and actions, and `ctx.auth`."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from app.db.database import DatabaseReader, DatabaseWriter
from app.server.functions import Kind

if TYPE_CHECKING:
    from app.auth import UserIdentity


class CallContext(Protocol):
    """What a `ctx` needs of the call it belongs to (the engine's `Call` provides it)."""

    @property
    def identity(self) -> UserIdentity | None:
        """The caller's verified identity, if any."""

    @property
    def auth_error(self) -> Exception | None:
        """Why an HTTP action's `Authorization` header was rejected, if it was."""

    def storage(self, kind: Kind) -> Any:
        """`ctx.storage` for a handler of `kind`."""

    def scheduler(self) -> Any:
        """`ctx.scheduler`."""

    async def run(self, ref: Any, args: dict[str, Any] | None, kind: Kind) -> Any:
        """Run another function (in this transaction, or for actions in its own)."""

    async def vector_search(self, table: str, index: str, query: dict[str, Any]) -> Any:
        """Nearest documents by cosine similarity."""


class _Anonymous:
    """What `get_user_identity()` returns without an identity: falsy, `== None`, awaitable."""

    _instance: _Anonymous | None = None

    def __new__(cls) -> _Anonymous:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or other is self

    def __hash__(self) -> int:
        return hash(None)

    def __repr__(self) -> str:
        return "None"

    def __await__(self) -> Generator[Any, None, None]:
        return None
        yield  # pragma: no cover - makes this a generator


ANONYMOUS = _Anonymous()


class _AwaitableIdentity:
    """Wraps a UserIdentity so `ctx.auth.get_user_identity()` may be awaited or not."""

    __slots__ = ("_identity",)

    def __init__(self, identity: UserIdentity) -> None:
        object.__setattr__(self, "_identity", identity)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._identity, name)

    def __getitem__(self, key: str) -> Any:
        return self._identity[key]

    def __contains__(self, key: object) -> bool:
        return key in self._identity

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _AwaitableIdentity):
            other = other._identity
        return bool(self._identity == other)

    def __hash__(self) -> int:
        return hash(self._identity)

    def __repr__(self) -> str:
        return repr(self._identity)

    def __await__(self) -> Generator[Any, None, UserIdentity]:
        identity: UserIdentity = self._identity
        return identity
        yield  # pragma: no cover - makes this a generator


class Auth:
    """`ctx.auth`: the caller's verified identity.

    `error`: an HTTP action's rejected `Authorization` header; the handler runs all the
    same, and `get_user_identity()` raises it, as in Convex.
    """

    def __init__(self, identity: UserIdentity | None, error: Exception | None = None) -> None:
        self._identity = identity
        self._error = error

    def get_user_identity(self) -> Any:
        """The caller's `UserIdentity`, or a None-like value (use with or without await)."""
        if self._error is not None:
            raise self._error
        if self._identity is None:
            return ANONYMOUS
        return _AwaitableIdentity(self._identity)


class QueryCtx:
    """`ctx` of a query: db (reader), auth, storage (reader), run_query."""

    def __init__(self, call: CallContext, db: DatabaseReader) -> None:
        self._call = call
        self.db = db
        self.auth = Auth(call.identity)
        self.storage = call.storage("query")

    async def run_query(self, ref: Any, args: dict[str, Any] | None = None) -> Any:
        """Run another query in the same snapshot."""
        return await self._call.run(ref, args, "query")


class MutationCtx(QueryCtx):
    """`ctx` of a mutation: db (writer), auth, storage, scheduler, run_query, run_mutation."""

    db: DatabaseWriter

    def __init__(self, call: CallContext, db: DatabaseWriter) -> None:
        self._call = call
        self.db = db
        self.auth = Auth(call.identity)
        self.storage = call.storage("mutation")
        self.scheduler = call.scheduler()

    async def run_mutation(self, ref: Any, args: dict[str, Any] | None = None) -> Any:
        """Run another mutation in this transaction (a savepoint: its errors roll back only it)."""
        return await self._call.run(ref, args, "mutation")


class ActionCtx:
    """`ctx` of an action: run_query/run_mutation/run_action, scheduler, auth, storage, vector_search."""

    def __init__(self, call: CallContext) -> None:
        self._call = call
        self.auth = Auth(call.identity, call.auth_error)
        self.scheduler = call.scheduler()
        self.storage = call.storage("action")

    async def run_query(self, ref: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a query in its own snapshot."""
        return await self._call.run(ref, args, "query")

    async def run_mutation(self, ref: Any, args: dict[str, Any] | None = None) -> Any:
        """Run a mutation in its own transaction."""
        return await self._call.run(ref, args, "mutation")

    async def run_action(self, ref: Any, args: dict[str, Any] | None = None) -> Any:
        """Run another action."""
        return await self._call.run(ref, args, "action")

    async def vector_search(self, table: str, index: str, query: dict[str, Any]) -> Any:
        """Nearest documents by cosine similarity: `[{"_id", "_score"}]`."""
        return await self._call.vector_search(table, index, query)
