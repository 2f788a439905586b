"""`convect codegen`: client code from the functions folder (TypeScript types, Python client)."""

from __future__ import annotations

from pathlib import Path

from app.codegen.python_client import client_py
from app.codegen.tree import CodegenError
from app.codegen.typescript import api_dts, api_js, data_model_dts
from app.engine.registry import Registry

__all__ = ["CodegenError", "generate", "render"]


def render(registry: Registry, *, python: bool = True) -> dict[str, str]:
    """File name → content of every generated file."""
    files = {
        "api.d.ts": api_dts(registry),
        "api.js": api_js(),
        "dataModel.d.ts": data_model_dts(registry),
    }
    if python:
        files["client.py"] = client_py(registry)
    return files


def generate(registry: Registry, out: str | Path, *, python: bool = True) -> list[Path]:
    """Write the generated files into `out` (created if missing); return their paths."""
    files = render(registry, python=python)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
        written.append(path)
    return written
