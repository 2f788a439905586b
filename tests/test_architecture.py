"""Imports run one way: each part of `app/` imports only the layers below it (docs/architecture.md).

Read with `ast`, so a violation fails here whether or not that import ever runs, and
imports under `TYPE_CHECKING` count too (a type-only upward import is still a cycle a
reader has to untangle).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# Bottom to top. A part may import the parts of lower layers, never those of its own
# layer (except the pairs in PEERS) or higher ones.
LAYERS: list[set[str]] = [
    {"values", "auth", "settings", "memory"},
    {"schema", "embedded", "embeddings"},
    {"db"},
    {"server"},  # what app authors import
    {"engine"},  # not public: Engine, execute(), the registry
    {
        "storage",
        "scheduler",
        "sync",
        "codegen",
        "devlog",
        "logconfig",
        "dataio",
        "envvars",
        "logstream",
        "dashboard",
    },
    {"admin"},  # Convex's `_system/...` functions
    {"http"},
    {"compose", "serve"},
    {"devserver"},
    {"cli"},
    {"__main__"},
]
# export/import carry files (storage's service) and, on request, environment variables
PEERS = {("dataio", "storage"), ("dataio", "envvars")}
# Modules that import parts of the app lazily inside functions, and why.
LAZY_IMPORTS_ALLOWED = {
    "cli": "each subcommand imports only what it runs, so `convect --help` starts fast",
    "embeddings": "a provider's heavy dependencies load only when it is chosen",
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def _rank(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"app/{part} is in no layer of tests/test_architecture.py")


def _imports() -> list[tuple[str, str, int, bool]]:
    """(importing module, imported part, line, inside a function) for every app import."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), str(path))
        in_function: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        in_function.add(id(inner))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target == "app" or target.startswith("app."):
                    found.append((module, _part(target), node.lineno, id(node) in in_function))
    return found


def test_every_part_of_app_is_in_a_layer() -> None:
    parts = {p.stem for p in APP.glob("*.py")} | {p.parent.name for p in APP.glob("*/__init__.py")}
    for part in parts - {"__init__"}:
        _rank(part)


def test_imports_only_go_down_the_layers() -> None:
    wrong = []
    for module, target, line, _ in _imports():
        source = _part(module)
        if source == target or target == "app":
            continue
        if (source, target) in PEERS:
            continue
        if _rank(target) >= _rank(source):
            wrong.append(f"{module}:{line} imports app.{target}")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_the_parts_of_app_have_no_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, target, _, _ in _imports():
        source = _part(module)
        if source != target and target != "app":
            graph[source].add(target)
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in visiting:
            cycle = [*visiting[visiting.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        visiting.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_no_import_of_the_app_hides_inside_a_function() -> None:
    lazy = [
        f"{module}:{line} imports app.{target} inside a function"
        for module, target, line, inside in _imports()
        if inside and _part(module) not in LAZY_IMPORTS_ALLOWED
    ]
    assert not lazy, "\n".join(lazy)


def test_the_checks_see_a_wrong_import() -> None:
    """The layer table itself: db importing the engine would be refused."""
    assert _rank("engine") > _rank("db")
    assert _rank("http") > _rank("sync") > _rank("engine") > _rank("server") > _rank("db")
    assert _rank("values") == _rank("auth") == 0
