"""db and schema import only downward: db -> schema -> values; nothing at call time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "app/db": ("app.db", "app.schema", "app.values"),
    "app/schema": ("app.schema", "app.values"),
}


def _app_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) of every `app.` import of a file."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            for name in names:
                if name == "app" or name.startswith("app."):
                    assert isinstance(child, ast.Import | ast.ImportFrom)
                    found.append((name, child.lineno, in_function))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_go_only_downward_and_at_module_level(folder: str) -> None:
    bad = []
    for path in sorted((ROOT / folder).glob("*.py")):
        for module, line, in_function in _app_imports(path):
            if not module.startswith(ALLOWED[folder]) or in_function:
                bad.append(f"{path.relative_to(ROOT)}:{line} {module}")
    assert bad == []


def test_importing_db_loads_nothing_above_it() -> None:
    code = (
        "import sys, pkgutil, importlib, app.db, app.schema\n"
        "for m in pkgutil.iter_modules(app.db.__path__):\n"
        "    importlib.import_module('app.db.' + m.name)\n"
        "above = sorted(m for m in sys.modules if m.startswith('app.') and not "
        "m.startswith(('app.db', 'app.schema', 'app.values')))\n"
        "print(above)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_importing_schema_loads_no_db() -> None:
    code = "import sys, app.schema; print(sorted(m for m in sys.modules if m.startswith('app.db')))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_define_schema_still_checks_table_names() -> None:
    from app.schema import define_schema, define_table

    with pytest.raises(ValueError, match="Invalid table name"):
        define_schema({"9bad": define_table()})
    with pytest.raises(ValueError, match="Invalid table name"):
        define_schema({"_storage": define_table()})
