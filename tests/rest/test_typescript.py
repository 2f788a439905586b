"""`convect codegen` TypeScript output, checked by `tsc` (npm typescript) against npm `convex`.

The fixtures in tests/js/tsc/ call the demo, kitchen and porting apps through the generated
`api`; lines marked `// error` must fail to compile, and nothing else may.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.codegen import generate
from app.engine.registry import load_registry
from tests.conftest import DEMO, KITCHEN
from tests.rest.helpers import BARE
from tests.support.apps import write_app
from tests.support.npm import JS, run_script
from tests.support.servers import ROOT

FIXTURES = JS / "tsc"
PORTING = ROOT / "tests" / "apps" / "porting"
TSC = JS / "node_modules" / ".bin" / "tsc"
CANARY = "demo/_generated/canary.d.ts"
_ERROR = re.compile(r"^(?P<file>[^\s(]+)\((?P<line>\d+),\d+\): error (?P<code>TS\d+): (?P<text>.*)")


@dataclass
class TscRun:
    """What one `tsc --noEmit` run over the project said."""

    returncode: int
    output: str
    errors: dict[str, set[int]]  # file → lines with an error


def marked_lines(path: Path) -> set[int]:
    """Lines of a fixture carrying the `// error` marker."""
    lines = path.read_text().splitlines()
    return {i for i, line in enumerate(lines, start=1) if line.rstrip().endswith("// error")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TypeScript project: the fixtures, generated code beside them, the npm packages."""
    root = tmp_path_factory.mktemp("tsc")
    shutil.copytree(FIXTURES, root, dirs_exist_ok=True)
    (root / "node_modules").symlink_to(JS / "node_modules", target_is_directory=True)
    generate(load_registry(DEMO), root / "demo" / "_generated", python=False)
    generate(load_registry(KITCHEN), root / "kitchen" / "_generated", python=False)
    generate(load_registry(PORTING), root / "porting" / "_generated", python=False)
    (root / CANARY).write_text('export declare const x: NoSuchType<"query">;\n')
    bare = write_app(tmp_path_factory.mktemp("bare-app"), BARE)
    generate(load_registry(bare), root / "bare" / "_generated", python=False)
    return root


@pytest.fixture(scope="module")
def tsc(project: Path) -> TscRun:
    result = subprocess.run(
        [str(TSC), "-p", str(project), "--pretty", "false"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    errors: dict[str, set[int]] = {}
    for line in result.stdout.splitlines():
        m = _ERROR.match(line)
        if m:
            errors.setdefault(m["file"], set()).add(int(m["line"]))
    return TscRun(result.returncode, result.stdout + result.stderr, errors)


def test_typescript_is_installed_from_npm() -> None:
    version = subprocess.run([str(TSC), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("Version 5.")


def test_the_generated_declarations_and_correct_calls_compile(tsc: TscRun) -> None:
    clean = [f for f in tsc.errors if not f.endswith("/wrong.ts") and f != CANARY]
    assert clean == [], tsc.output


@pytest.mark.parametrize("app", ["demo", "kitchen", "bare", "porting"])
def test_calls_with_wrong_argument_or_result_types_fail_to_compile(
    tsc: TscRun, project: Path, app: str
) -> None:
    expected = marked_lines(project / app / "wrong.ts")
    assert len(expected) >= 4
    assert tsc.returncode != 0
    assert tsc.errors.get(f"{app}/wrong.ts") == expected, tsc.output


def test_tsc_checks_declaration_files_too(tsc: TscRun) -> None:
    # A broken .d.ts beside the generated ones is reported: they are type-checked, not skipped.
    assert tsc.errors.get(CANARY) == {1}, tsc.output


async def test_the_generated_api_js_drives_the_official_client(
    demo: httpx.AsyncClient, project: Path
) -> None:
    out = run_script(project / "demo" / "call.mjs", str(demo.base_url).rstrip("/"), cwd=project)
    assert out["bodies"] == ["typed"]
    assert isinstance(out["id"], str)
