"""The query description: what a query reads, as plain data.

`ctx.db.query(table)` builds a `QuerySpec`: an index range (equalities on a prefix of
the index's fields, then at most one range), an optional filter expression and an
order. `app.db.sql` compiles it to SQL; `app.sync.readset` uses the same description
as the read set of a live query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from app.values import UNSET, encode_value

BY_CREATION_TIME = "by_creation_time"
BY_ID = "by_id"
BUILTIN_INDEXES: dict[str, tuple[str, ...]] = {
    BY_CREATION_TIME: ("_creationTime",),
    BY_ID: ("_id",),
}


class QueryDefinitionError(ValueError):
    """A query was built wrongly (unknown index, fields out of order, ...)."""


class IndexStagedError(QueryDefinitionError):
    """A query named a staged index (Convex's `IndexStagedError`)."""

    def __init__(self, table: str, index: str) -> None:
        super().__init__(
            f"Index {table}.{index} is currently staged and not available to query "
            "until it is enabled."
        )


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a range on an index field; `value` is wire-encoded."""

    value: Any
    inclusive: bool


@dataclass(frozen=True, slots=True)
class IndexRange:
    """A contiguous range of one index, in one order."""

    table: str
    index: str
    fields: tuple[str, ...]
    eq: tuple[Any, ...] = ()
    lower: Bound | None = None
    upper: Bound | None = None
    order: str = "asc"

    @property
    def range_field(self) -> str | None:
        """The field the lower/upper bounds apply to, if any."""
        if self.lower is None and self.upper is None:
            return None
        return self.fields[len(self.eq)]


# ---------------------------------------------------------------- filter expressions


@dataclass(frozen=True)
class Field:
    """A document field, by dotted path."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class Literal:
    """A constant, wire-encoded."""

    value: Any


@dataclass(frozen=True)
class Op:
    """An operator applied to sub-expressions."""

    name: str
    args: tuple[Expr, ...]


Expr = Field | Literal | Op

COMPARISONS = ("eq", "neq", "lt", "lte", "gt", "gte")
LOGICAL = ("and", "or", "not")
ARITHMETIC = ("add", "sub", "mul", "div", "mod", "neg")


def _expr(x: Any) -> Expr:
    if isinstance(x, Field | Literal | Op):
        return x
    if x is UNSET:
        return Literal(UNSET)  # Convex's `undefined`: a missing field
    return Literal(encode_value(x))


class FilterBuilder:
    """The `q` handed to `.filter(lambda q: ...)`: builds expressions, evaluates nothing."""

    def field(self, path: str) -> Field:
        """A field of the document (`"a.b"` for nested objects)."""
        if not isinstance(path, str) or not path:
            raise QueryDefinitionError(f"q.field() takes a field name, got {path!r}")
        return Field(tuple(path.split(".")))

    def eq(self, a: Any, b: Any) -> Op:
        """a == b."""
        return Op("eq", (_expr(a), _expr(b)))

    def neq(self, a: Any, b: Any) -> Op:
        """a != b."""
        return Op("neq", (_expr(a), _expr(b)))

    def lt(self, a: Any, b: Any) -> Op:
        """a < b."""
        return Op("lt", (_expr(a), _expr(b)))

    def lte(self, a: Any, b: Any) -> Op:
        """a <= b."""
        return Op("lte", (_expr(a), _expr(b)))

    def gt(self, a: Any, b: Any) -> Op:
        """a > b."""
        return Op("gt", (_expr(a), _expr(b)))

    def gte(self, a: Any, b: Any) -> Op:
        """a >= b."""
        return Op("gte", (_expr(a), _expr(b)))

    def and_(self, *exprs: Any) -> Op:
        """All of `exprs`."""
        return Op("and", tuple(_expr(e) for e in exprs))

    def or_(self, *exprs: Any) -> Op:
        """Any of `exprs`."""
        return Op("or", tuple(_expr(e) for e in exprs))

    def not_(self, expr: Any) -> Op:
        """Not `expr`."""
        return Op("not", (_expr(expr),))

    def add(self, a: Any, b: Any) -> Op:
        """a + b."""
        return Op("add", (_expr(a), _expr(b)))

    def sub(self, a: Any, b: Any) -> Op:
        """a - b."""
        return Op("sub", (_expr(a), _expr(b)))

    def mul(self, a: Any, b: Any) -> Op:
        """a * b."""
        return Op("mul", (_expr(a), _expr(b)))

    def div(self, a: Any, b: Any) -> Op:
        """a / b."""
        return Op("div", (_expr(a), _expr(b)))

    def mod(self, a: Any, b: Any) -> Op:
        """a % b."""
        return Op("mod", (_expr(a), _expr(b)))

    def neg(self, a: Any) -> Op:
        """-a."""
        return Op("neg", (_expr(a),))


# ---------------------------------------------------------------- index ranges


@dataclass
class IndexRangeBuilder:
    """The `q` handed to `.with_index(name, lambda q: ...)`."""

    fields: tuple[str, ...]
    eqs: list[Any] = field(default_factory=list)
    lower: Bound | None = None
    upper: Bound | None = None

    def _next_field(self, name: str, op: str) -> None:
        if self.lower is not None or self.upper is not None:
            if op != "eq" and name == self.fields[len(self.eqs)]:
                return
            raise QueryDefinitionError(
                f"Index range: .{op}({name!r}) after a range; equalities come first, then "
                "one range on the next field."
            )
        position = len(self.eqs)
        if position >= len(self.fields) or self.fields[position] != name:
            expected = self.fields[position] if position < len(self.fields) else None
            raise QueryDefinitionError(
                f"Index range: .{op}({name!r}) does not match the index's fields "
                f"{list(self.fields)}; the next field is {expected!r}."
            )

    def eq(self, name: str, value: Any) -> IndexRangeBuilder:
        """The field equals `value`."""
        self._next_field(name, "eq")
        self.eqs.append(encode_value(value))
        return self

    def _bound(self, name: str, value: Any, op: str) -> IndexRangeBuilder:
        self._next_field(name, op)
        bound = Bound(encode_value(value), op in ("gte", "lte"))
        if op in ("gt", "gte"):
            if self.lower is not None:
                raise QueryDefinitionError(f"Index range: two lower bounds on {name!r}.")
            self.lower = bound
        else:
            if self.upper is not None:
                raise QueryDefinitionError(f"Index range: two upper bounds on {name!r}.")
            self.upper = bound
        return self

    def gt(self, name: str, value: Any) -> IndexRangeBuilder:
        """The field is greater than `value`."""
        return self._bound(name, value, "gt")

    def gte(self, name: str, value: Any) -> IndexRangeBuilder:
        """The field is at least `value`."""
        return self._bound(name, value, "gte")

    def lt(self, name: str, value: Any) -> IndexRangeBuilder:
        """The field is less than `value`."""
        return self._bound(name, value, "lt")

    def lte(self, name: str, value: Any) -> IndexRangeBuilder:
        """The field is at most `value`."""
        return self._bound(name, value, "lte")


@dataclass(frozen=True)
class SearchSpec:
    """A full-text search: the search field's text and equality filters."""

    index: str
    field: str
    text: str
    filters: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class QuerySpec:
    """A whole query: which range of which index, then a filter, in an order."""

    range: IndexRange
    filter: Expr | None = None
    search: SearchSpec | None = None

    def with_order(self, order: str) -> QuerySpec:
        """The same query in another order."""
        if order not in ("asc", "desc"):
            raise QueryDefinitionError(f'order must be "asc" or "desc", got {order!r}')
        return replace(self, range=replace(self.range, order=order))


def build_range(
    table: str,
    index: str,
    fields: Sequence[str],
    fn: Callable[[IndexRangeBuilder], Any] | None,
) -> IndexRange:
    """Run a `with_index` lambda and return the range it describes."""
    builder = IndexRangeBuilder(tuple(fields))
    if fn is not None:
        result = fn(builder)
        if result is not builder and result is not None:
            raise QueryDefinitionError(
                "The with_index lambda must return the range builder (q.eq(...).gt(...))."
            )
    return IndexRange(
        table=table,
        index=index,
        fields=fields if isinstance(fields, tuple) else tuple(fields),
        eq=tuple(builder.eqs),
        lower=builder.lower,
        upper=builder.upper,
    )


def build_filter(fn: Callable[[FilterBuilder], Any]) -> Expr:
    """Run a `filter` lambda and return its expression."""
    result = fn(FilterBuilder())
    return _expr(result)
