"""Environment variables per deployment: stored in PostgreSQL, seen through `os.environ`."""

from app.envvars.service import EnvVars
from app.envvars.store import EnvChange, EnvVarError, parse_changes

__all__ = ["EnvChange", "EnvVarError", "EnvVars", "parse_changes"]
