"""Settings: read once from the environment into one object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_KEY_CHARS = 32  # a prod admin key shorter than this is refused


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
    public_site_url: str | None = None  # the HTTP actions' public URL (CONVEX_SITE_URL)
    auth_providers: str | None = None  # JSON list, for deployments that cannot ship code
    # Prod: /metrics answers only the admin key unless this is on (a scraper inside the
    # cluster that cannot send it; the k8s base turns it on, /metrics is not routed out).
    metrics_public: bool = False

    pool_size: int = 16
    # A call waits at most this long for a database connection, then fails as overloaded
    # (HTTP 503, retryable) instead of queueing without bound.
    pool_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    # Both listeners: a request head must arrive within header_timeout of the connection
    # (or the request) starting; an idle keep-alive connection closes after keep_alive_timeout.
    header_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    keep_alive_timeout: float = Field(default=5.0, ge=1.0, le=600.0)
    # Bounds a hostile client meets and an ordinary app never does (README, docs/reliability.md).
    max_socket_queries: int = Field(default=4096, ge=1)  # live queries on one sync socket
    max_sockets: int = Field(default=20_000, ge=1)  # sync sockets one API process serves
    max_socket_mutations: int = Field(default=1024, ge=1)  # mutations waiting on one socket
    max_socket_mutation_bytes: int = Field(default=64 * 1024 * 1024, ge=1)  # their arguments
    max_queued_bytes: int = Field(default=512 * 1024 * 1024, ge=1)  # sends queued, all sockets
    query_cache_bytes: int = Field(default=128 * 1024 * 1024, ge=0)  # HTTP query cache
    # Consistent reads (/api/query_ts, /api/query_at_ts): each timestamp handed out is a
    # PostgreSQL snapshot held open this long, at most this many at a time (a connection each).
    consistent_read_window: float = Field(default=30.0, gt=0.0, le=3600.0)
    consistent_read_snapshots: int = Field(default=8, ge=0, le=1000)
    # Seconds between a process's looks for staged indexes to build in the background.
    index_build_poll: float = Field(default=2.0, gt=0.0, le=3600.0)
    # Off: the API process runs no live-query hub (no /api/sync, no HTTP query cache);
    # commits are still logged and notified, so other processes' subscribers see them.
    live_queries: bool = True
    mutation_retries: int = 16
    # Mutations that read only by id and write what they read commit as one statement
    # with a version check instead of a SERIALIZABLE transaction (docs/architecture.md,
    # "Optimistic mutations"); off: every mutation that reads runs SERIALIZABLE.
    optimistic_mutations: bool = True
    # Wall-clock limits on one call (README "Time limits"): queries and mutations
    # (retries and database waits included), actions and HTTP actions (Convex: 10 minutes
    # in its Node.js runtime). A handler is stopped at its next await past the limit.
    function_timeout: float = Field(default=30.0, gt=0.0, le=3600.0)
    action_timeout: float = Field(default=600.0, gt=0.0, le=86_400.0)
    # Where client-called actions run (README "Where actions run"): "api" in the API
    # process that received the call, "worker" on the `convect worker` processes (the API
    # waits for the outcome); a call no worker takes within action_start_timeout fails.
    run_actions: Literal["api", "worker"] = "api"
    action_start_timeout: float = Field(default=10.0, gt=0.0, le=3600.0)
    max_upload_bytes: int = 1024 * 1024 * 1024
    # Where file bytes live (docs/storage.md): PostgreSQL, or an S3-compatible object store
    # (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as every AWS SDK reads).
    storage: Literal["postgres", "s3"] = "postgres"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = None  # MinIO, R2, GCS: the store's S3 API address
    # proxy: files stream through Convect (Range, ETag); redirect: 302 to a presigned URL.
    s3_downloads: Literal["proxy", "redirect"] = "proxy"
    s3_url_ttl: int = Field(default=300, ge=1, le=7 * 24 * 3600)  # presigned URL lifetime, s
    # The storage sweep (docs/storage.md): every interval (s; 0 = never), one API process
    # removes objects older than min_age (s) whose file is gone, and unfinished uploads.
    storage_sweep_interval: float = Field(default=3600.0, ge=0.0, le=7 * 24 * 3600)
    storage_sweep_min_age: float = Field(default=24 * 3600.0, ge=1.0, le=365 * 24 * 3600)
    log_level: str = "info"
    # Graceful shutdown (app/serve.py): seconds between SIGTERM and closing the listeners
    # (already draining: /readyz 503, `Connection: close`), then the bound on finishing
    # in-flight calls.
    drain_delay: float = Field(default=0.0, ge=0.0, le=300.0)
    shutdown_timeout: float = Field(default=20.0, gt=0.0, le=3600.0)

    def prod_problems(self) -> list[str]:
        """Why these settings may not serve in prod mode (empty when they may)."""
        if self.mode != "prod":
            return []
        if not self.admin_key:
            return ["CONVECT_ADMIN_KEY is required in prod mode"]
        if len(self.admin_key) < MIN_ADMIN_KEY_CHARS:
            return [
                f"CONVECT_ADMIN_KEY must be at least {MIN_ADMIN_KEY_CHARS} characters in prod "
                f"mode (it has {len(self.admin_key)}); e.g. `openssl rand -hex 32`"
            ]
        return []

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
        if self.public_site_url:
            return self.public_site_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.site_port}"

    @property
    def function_environment(self) -> dict[str, str]:
        """What Convex puts in every function's environment: `CONVEX_CLOUD_URL` (the API)
        and `CONVEX_SITE_URL` (HTTP actions)."""
        return {"CONVEX_CLOUD_URL": self.base_url, "CONVEX_SITE_URL": self.site_url}
