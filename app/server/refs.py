"""Function references: `api.messages.list`, `internal.logs._cleanup`, strings, objects."""

from __future__ import annotations

import functools
from typing import Any

from app.server.functions import RegisteredFunction


class FunctionReference:
    """A lazy attribute path that names a function: `api.admin.users.get`."""

    __slots__ = ("_segments", "_visibility")

    def __init__(self, visibility: str, segments: tuple[str, ...] = ()) -> None:
        self._visibility = visibility
        self._segments = segments

    def __getattr__(self, name: str) -> FunctionReference:
        if name.startswith("__"):
            raise AttributeError(name)
        return FunctionReference(self._visibility, (*self._segments, name))

    @property
    def path(self) -> str:
        """The function path, "dir/module:name"."""
        if len(self._segments) < 2:
            raise ValueError(
                f"{self._visibility}.{'.'.join(self._segments)} does not name a function; "
                f"write {self._visibility}.module.function"
            )
        return "/".join(self._segments[:-1]) + ":" + self._segments[-1]

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"{self._visibility}.{'.'.join(self._segments)}"


api = FunctionReference("api")
internal = FunctionReference("internal")


# ASCII paths up to this long are remembered (a client's path is its own text: other
# ones are canonicalised each time, so that the cache holds at most ~0.3 MB).
CACHED_PATH_CHARS = 256


def canonical_path(path: str) -> str:
    """Canonicalise a client path: strip `.js` from the module, default name `default`.

    Remembered for the last 1,024 short ASCII paths: the same path gives the same string
    object, so the many live queries of one function share one copy."""
    if len(path) > CACHED_PATH_CHARS or not path.isascii():
        return _canonical(path)
    return _canonical_cached(path)


def _canonical(path: str) -> str:
    if ":" in path:
        module, name = path.rsplit(":", 1)
        if not module.endswith(".js"):
            return path  # already canonical
    else:
        module, name = path, "default"
    if module.endswith(".js"):
        module = module[:-3]
    return f"{module}:{name}"


_canonical_cached = functools.lru_cache(maxsize=1024)(_canonical)


def ref_path(ref: Any) -> str:
    """The path of any accepted reference: FunctionReference, RegisteredFunction or str."""
    if isinstance(ref, FunctionReference):
        return ref.path
    if isinstance(ref, RegisteredFunction):
        if ref.path is None:
            raise ValueError(
                f"{ref.name} is not registered (is its module in the functions folder?)"
            )
        return ref.path
    if isinstance(ref, str):
        return canonical_path(ref)
    raise TypeError(
        f"Expected a function reference (api.module.fn, the function, or 'module:fn'), "
        f"got {type(ref).__name__}"
    )
