"""Write function folders (Convect apps) for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_app(folder: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path → source, dedented) into `folder`; return it."""
    for name, source in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip())
    return folder
