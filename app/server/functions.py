"""The six function decorators, built by one factory, and what they register."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast, overload

from app.values import Validator, as_validator

Kind = Literal["query", "mutation", "action", "httpAction"]
Visibility = Literal["public", "internal"]
Handler = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class FunctionDefinitionError(TypeError):
    """A function was declared wrongly; raised when its module is imported."""


@dataclass(eq=False)
class RegisteredFunction:
    """A decorated handler with its kind, visibility and validators."""

    kind: Kind
    visibility: Visibility
    handler: Handler
    args: Validator | None
    returns: Validator | None
    name: str
    module: str
    path: str | None = None  # "dir/module:name", set by the registry
    doc: str | None = field(default=None)

    @property
    def is_public(self) -> bool:
        """True when clients may call it."""
        return self.visibility == "public"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self.name} is a registered Convect {self.kind}; call it through "
            f"ctx.run_{self.kind}(...) or a client, not directly."
        )

    def __repr__(self) -> str:
        return f"<{self.visibility} {self.kind} {self.path or self.name}>"


class FunctionDecorator(Protocol):
    """`@query`, `@query(args=..., returns=...)` and the five others."""

    @overload
    def __call__(self, fn: Handler, /) -> RegisteredFunction: ...

    @overload
    def __call__(
        self, fn: None = None, /, *, args: Any = None, returns: Any = None
    ) -> Callable[[Handler], RegisteredFunction]: ...


def _make(kind: Kind, visibility: Visibility) -> FunctionDecorator:
    decorator_name = ("internal_" if visibility == "internal" else "") + kind

    def decorator(fn: Handler | None = None, *, args: Any = None, returns: Any = None) -> Any:
        def wrap(handler: Handler) -> RegisteredFunction:
            where = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__name__', '?')}"
            if not inspect.iscoroutinefunction(handler):
                raise FunctionDefinitionError(
                    f"@{decorator_name} on {where}: the handler must be `async def "
                    "handler(ctx, args)`"
                )
            params = list(inspect.signature(handler).parameters.values())
            positional = [
                p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            if not (1 <= len(positional) <= 2) and not any(
                p.kind == p.VAR_POSITIONAL for p in params
            ):
                raise FunctionDefinitionError(
                    f"@{decorator_name} on {where}: the handler takes (ctx, args)"
                )
            try:
                args_v = as_validator(args) if args is not None else None
                returns_v = as_validator(returns) if returns is not None else None
            except (TypeError, ValueError) as exc:
                raise FunctionDefinitionError(f"@{decorator_name} on {where}: {exc}") from None
            # Convex accepts any validator for args, but arguments are always an object.
            if (
                args_v is not None
                and not hasattr(args_v, "fields")
                and type(args_v).__name__ not in ("AnyValidator", "RecordValidator")
            ):
                raise FunctionDefinitionError(
                    f"@{decorator_name} on {where}: args must be a dict of validators "
                    "or v.object(...)"
                )
            return RegisteredFunction(
                kind=kind,
                visibility=visibility,
                handler=handler,
                args=args_v,
                returns=returns_v,
                name=handler.__name__,
                module=handler.__module__,
                doc=inspect.getdoc(handler),
            )

        if fn is not None:
            if isinstance(fn, dict | Validator):
                raise FunctionDefinitionError(
                    f"@{decorator_name}: pass validators as args=..., e.g. "
                    f"@{decorator_name}(args={{...}})"
                )
            return wrap(fn)
        return wrap

    decorator.__name__ = decorator_name
    decorator.__doc__ = f"Register an {visibility} {kind}: `@{decorator_name}(args={{...}})`."
    return cast(FunctionDecorator, decorator)


query = _make("query", "public")
mutation = _make("mutation", "public")
action = _make("action", "public")
internal_query = _make("query", "internal")
internal_mutation = _make("mutation", "internal")
internal_action = _make("action", "internal")
