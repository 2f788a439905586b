"""A real S3 API for tests and benches: moto's server, started as a local process.

`S3Server` runs `moto_server` on a free port (no internet); `bucket_env` is the
environment that points a Convect process at one of its buckets; `objects` looks at
the bucket from outside, as the tests' witness.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import httpx

from tests.support.servers import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "convect-test", "AWS_SECRET_ACCESS_KEY": "convect-test-secret"}


@dataclass
class S3Server:
    """One moto S3 server process."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """The endpoint URL (CONVECT_S3_ENDPOINT_URL)."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A synchronous botocore S3 client for this server."""
        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self, name: str) -> None:
        """Create a bucket (an existing one is kept)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the store dies at once (and forgets everything)."""
        self.proc.kill()
        self.proc.wait()


def start_s3(log_path: Path, port: int | None = None) -> S3Server:
    """Start moto's S3 server and wait until it answers."""
    port = port or free_port()
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = S3Server(proc, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto exited with {proc.returncode}: {log_path.read_text()}")
        try:
            httpx.get(server.url, timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("moto's S3 server did not start")


def bucket_env(server: S3Server, bucket: str, **extra: str) -> dict[str, str]:
    """Environment that stores a Convect deployment's files in `bucket` on `server`."""
    return {
        "CONVECT_STORAGE": "s3",
        "CONVECT_S3_BUCKET": bucket,
        "CONVECT_S3_ENDPOINT_URL": server.url,
        "CONVECT_S3_PREFIX": "files",
        **CREDENTIALS,
        **extra,
    }


def client_for(env: dict[str, str]) -> Any:
    """A synchronous botocore S3 client for the store of a deployment's environment."""
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=env["CONVECT_S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _keys(env: dict[str, str]) -> list[str]:
    client = client_for(env)
    prefix = env.get("CONVECT_S3_PREFIX", "").strip("/")
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=env["CONVECT_S3_BUCKET"], Prefix=f"{prefix}/" if prefix else ""
    ):
        keys += [o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])]
    return keys


async def objects(env: dict[str, str]) -> list[str]:
    """The storage ids that have an object in the deployment's bucket."""
    return await asyncio.to_thread(_keys, env)


def _uploads(env: dict[str, str]) -> int:
    client = client_for(env)
    return len(client.list_multipart_uploads(Bucket=env["CONVECT_S3_BUCKET"]).get("Uploads", []))


async def uploads_in_progress(env: dict[str, str]) -> int:
    """How many multipart uploads are open in the deployment's bucket."""
    return await asyncio.to_thread(_uploads, env)
