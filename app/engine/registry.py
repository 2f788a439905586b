"""Load the app's functions folder as a package and index its functions by path."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.server.functions import RegisteredFunction
from app.server.refs import canonical_path

PACKAGE = "convect_functions"
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SKIP_DIRS = {"__pycache__", "_generated", "node_modules"}


class RegistryError(Exception):
    """The functions folder could not be loaded; the message names the file."""


@dataclass
class Registry:
    """Everything the app's folder defines."""

    folder: Path
    functions: dict[str, RegisteredFunction] = field(default_factory=dict)
    schema: Any = None
    http: Any = None
    crons: Any = None
    auth_providers: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[str, types.ModuleType] = field(default_factory=dict)

    def get(self, path: str) -> RegisteredFunction | None:
        """The function at `path` (canonicalised), public or internal."""
        return self.functions.get(canonical_path(path))

    def public(self, path: str) -> RegisteredFunction | None:
        """The public function at `path`, or None (internal ones are hidden)."""
        fn = self.get(path)
        return fn if fn is not None and fn.is_public else None


def _purge() -> None:
    for name in list(sys.modules):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            del sys.modules[name]


def _package(folder: Path) -> types.ModuleType:
    init = folder / "__init__.py"
    if init.exists():
        spec = importlib.util.spec_from_file_location(
            PACKAGE, init, submodule_search_locations=[str(folder)]
        )
        if spec is None or spec.loader is None:
            raise RegistryError(f"Cannot load {init}")
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = pkg
        spec.loader.exec_module(pkg)
        return pkg
    pkg = types.ModuleType(PACKAGE)
    pkg.__path__ = [str(folder)]
    pkg.__package__ = PACKAGE
    sys.modules[PACKAGE] = pkg
    return pkg


def module_files(folder: Path) -> list[Path]:
    """Every module file of the app, in a stable order."""
    files = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.name == "__init__.py":
            continue
        files.append(path)
    return files


def load_registry(folder: str | Path) -> Registry:
    """Import every module of `folder` (as the package `convect_functions`) and index it."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise RegistryError(f"Functions folder {root} does not exist")
    _purge()
    importlib.invalidate_caches()
    reg = Registry(folder=root)
    try:
        _package(root)
        for path in module_files(root):
            rel = path.relative_to(root).with_suffix("")
            for part in rel.parts:
                if not _MODULE_RE.match(part):
                    raise RegistryError(
                        f"{path}: module and folder names must be Python identifiers "
                        f"({part!r} is not)"
                    )
            module_name = PACKAGE + "." + ".".join(rel.parts)
            try:
                module = importlib.import_module(module_name)
            except RegistryError:
                raise
            except Exception as exc:
                raise RegistryError(f"{path}: {type(exc).__name__}: {exc}") from exc
            module_path = "/".join(rel.parts)
            reg.modules[module_path] = module
            _collect(reg, module, module_path)
    except BaseException:
        _purge()
        raise
    return reg


def _collect(reg: Registry, module: types.ModuleType, module_path: str) -> None:
    for attr, value in vars(module).items():
        if isinstance(value, RegisteredFunction) and value.module == module.__name__:
            path = f"{module_path}:{attr}"
            if value.path is not None and value.path != path:
                continue  # the same function exported twice: keep the first name
            value.path = path
            reg.functions[path] = value
    if module_path == "schema":
        reg.schema = getattr(module, "schema", None) or getattr(module, "default", None)
    elif module_path == "http":
        reg.http = getattr(module, "http", None) or getattr(module, "default", None)
    elif module_path == "crons":
        reg.crons = getattr(module, "crons", None) or getattr(module, "default", None)
    elif module_path == "auth_config":
        providers = getattr(module, "providers", [])
        if not isinstance(providers, list):
            raise RegistryError(f"{module.__file__}: `providers` must be a list of dicts")
        reg.auth_providers = providers
