"""Functions arranged as nested modules: `admin/users:get` → tree["admin"]["users"]["get"]."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias, Union

from app.server.functions import RegisteredFunction

__all__ = ["CodegenError", "ModuleTree", "module_tree"]

ModuleTree: TypeAlias = dict[str, Union["ModuleTree", RegisteredFunction]]
"""Module path part → sub-module tree, or function name → the function."""


class CodegenError(ValueError):
    """The functions cannot be turned into client code; the message says why."""


def module_tree(functions: Iterable[RegisteredFunction]) -> ModuleTree:
    """A nested dict of module path parts, leaves the functions (sorted by path)."""
    root: ModuleTree = {}
    for fn in sorted(functions, key=lambda f: f.path or ""):
        module, _, name = (fn.path or "").partition(":")
        node = root
        for part in module.split("/"):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CodegenError(
                    f"{fn.path}: module {module!r} has the same name as function "
                    f"{child.path} ({part!r}); rename one of them"
                )
            node = child
        if name in node:
            raise CodegenError(
                f"{fn.path}: the name {name!r} is also a sub-folder of {module!r}; "
                "rename one of them"
            )
        node[name] = fn
    return root
