"""The CI entry point is a shell script CI runs on a clean clone: it must at least parse."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_ci_script_parses_as_bash() -> None:
    """`.ci/run` is valid bash (a broken merge once left a stray `fi` in it and CI died in 11 s)."""
    script = ROOT / ".ci" / "run"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ci_script_runs_make_test() -> None:
    """CI runs the README's test command, `make test`, as its last step."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    assert code[-1] == "make test"
