"""`convect codegen` and the spec follow the functions: edit a validator, regenerate, compare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.codegen import CodegenError, generate, render
from app.engine.registry import Registry, load_registry
from app.http.openapi import build_spec
from app.server import query
from tests.rest.helpers import BARE, V1, V2
from tests.support.apps import write_app
from tests.support.servers import ROOT


def snapshot(folder: Path) -> tuple[dict, dict[str, str]]:
    registry = load_registry(folder)
    return build_spec(registry), render(registry)


def test_changing_validators_changes_the_spec_and_the_generated_types(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"notes.py": V1})
    spec1, files1 = snapshot(app)
    write_app(app, {"notes.py": V2})
    spec2, files2 = snapshot(app)

    args1 = spec1["components"]["schemas"]["notes.find.Args"]
    args2 = spec2["components"]["schemas"]["notes.find.Args"]
    assert args1["properties"]["n"]["x-convex-type"] == "float64"
    assert args2["properties"] == {"n": {"type": "string"}, "tag": {"const": "x"}}
    assert args2["required"] == ["n"]
    returns2 = spec2["components"]["schemas"]["notes.find.Returns"]
    assert returns2["items"]["x-convex-type"] == "int64"
    assert spec2["paths"]["/api/run/notes/find"]["post"]["description"].startswith(
        "Find notes by name."
    )
    assert "/api/run/notes/secret" not in spec1["paths"]
    assert "/api/run/notes/secret" in spec2["paths"]
    assert spec1["info"]["version"] != spec2["info"]["version"]

    assert '"n": number;' in files1["api.d.ts"]
    assert '"n": string;\n      "tag"?: "x";\n    }, Array<bigint>>' in files2["api.d.ts"]
    assert 'FunctionReference<"query", "internal", {}, any>' in files1["api.d.ts"]
    assert 'FunctionReference<"query", "public", {}, any>' in files2["api.d.ts"]
    assert "def find(self, *, n: builtins.float) -> Any:" in files1["client.py"]
    assert (
        "def find(self, *, n: builtins.str, tag: Literal['x'] | _Unset = UNSET) "
        "-> builtins.list[builtins.int]:" in files2["client.py"]
    )
    assert "def secret(" not in files1["client.py"]
    assert "def secret(self) -> Any:" in files2["client.py"]


def test_the_same_functions_give_the_same_output(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"notes.py": V1})
    assert snapshot(app) == snapshot(app)


def codegen_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "codegen", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_writes_into_the_functions_folder_by_default(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", BARE)
    result = codegen_cli("--functions", str(app))
    assert result.returncode == 0, result.stderr
    out = app / "_generated"
    assert sorted(p.name for p in out.iterdir()) == [
        "api.d.ts",
        "api.js",
        "client.py",
        "dataModel.d.ts",
    ]
    assert (out / "api.d.ts").read_text() == render(load_registry(app))["api.d.ts"]
    assert "export type DataModel = AnyDataModel;" in (out / "dataModel.d.ts").read_text()
    # The generated client beside the functions is not loaded as a functions module.
    assert sorted(load_registry(app).functions) == ["notes:get", "sub/deep:put"]


def test_the_cli_takes_an_output_folder_and_can_skip_python(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", BARE)
    result = codegen_cli("--functions", str(app), "--out", str(tmp_path / "out"), "--no-python")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "api.d.ts",
        "api.js",
        "dataModel.d.ts",
    ]
    assert not (app / "_generated").exists()


def test_a_function_named_like_a_module_folder_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    async def handler(ctx: object, args: dict) -> int:
        return 1

    registry = Registry(folder=tmp_path)
    for path in ("admin:users", "admin/users:get"):
        fn = query(args={})(handler)
        fn.path = path
        registry.functions[path] = fn
    with pytest.raises(CodegenError, match="rename one of them"):
        generate(registry, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_module_beside_a_folder_of_the_same_name_is_a_clear_cli_error(tmp_path: Path) -> None:
    source = "from app.server import query\n\n@query(args={})\nasync def NAME(ctx, args):\n    return 1\n"
    app = write_app(
        tmp_path / "app",
        {
            "admin.py": source.replace("NAME", "users"),
            "admin/users.py": source.replace("NAME", "get"),
        },
    )
    result = codegen_cli("--functions", str(app), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "admin/users.py" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_broken_functions_folder_is_a_clear_cli_error(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"bad.py": "raise RuntimeError('boom')\n"})
    result = codegen_cli("--functions", str(app))
    assert result.returncode == 1
    assert "bad.py" in result.stderr and "boom" in result.stderr
    assert not (app / "_generated").exists()
