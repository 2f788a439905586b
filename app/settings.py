"""Settings: read once from the environment into one object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of a Convect process (DESIGN §6)."""

    model_config = SettingsConfigDict(env_prefix="CONVECT_", extra="ignore")

    functions: str = "functions"
    host: str = "127.0.0.1"
    port: int = 3210
    site_port: int = 3211
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CONVECT_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CONVECT_REDIS_URL")
    )
    data_dir: str = ".convect"
    admin_key: str | None = None
    mode: Literal["dev", "prod"] = "dev"
    public_url: str | None = None
    auth_providers: str | None = None  # JSON list, for deployments that cannot ship code

    pool_size: int = 16
    # Off: the API process runs no live-query hub (no /api/sync, no HTTP query cache);
    # commits are still logged and notified, so other processes' subscribers see them.
    live_queries: bool = True
    mutation_retries: int = 16
    max_upload_bytes: int = 1024 * 1024 * 1024
    log_level: str = "info"
    # Graceful shutdown (app/serve.py): seconds between SIGTERM and closing the listeners
    # (already draining: /readyz 503, `Connection: close`), then the bound on finishing
    # in-flight calls.
    drain_delay: float = Field(default=0.0, ge=0.0, le=300.0)
    shutdown_timeout: float = Field(default=20.0, gt=0.0, le=3600.0)

    @property
    def dev(self) -> bool:
        """True in dev mode: error detail and log lines reach clients."""
        return self.mode == "dev"

    @property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        return Path(self.data_dir).resolve()

    @property
    def base_url(self) -> str:
        """Base of URLs handed out to clients."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def site_url(self) -> str:
        """Base URL of the HTTP actions listener."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.site_port}"
