"""Where the dashboard's built browser assets live inside the package."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "static"


def asset_path(name: str) -> Path | None:
    """The file `name` under the assets folder, or None (missing, or outside the folder)."""
    if not name or name.startswith("/") or "\\" in name:
        return None
    path = (ASSETS / name).resolve()
    if ASSETS not in path.parents or not path.is_file():
        return None
    return path
