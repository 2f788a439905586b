"""Fixtures for HTTP action tests: the kitchen app again, in prod mode with a JWT issuer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.conftest import KITCHEN
from tests.support.servers import ServerProcess, convect_env, start_server

ISSUER = "https://issuer.http-actions.test"
JWT_SECRET = "http-actions-test-secret-0123456789abcdef"


def make_token(subject: str, *, secret: str = JWT_SECRET, expires_in: float = 300) -> str:
    """A signed HS256 user token from the test issuer."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "iat": now, "exp": now + int(expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(scope="session")
def kitchen_prod_server(
    kitchen_server: ServerProcess, services: dict[str, str], data_dir: Path
) -> Iterator[ServerProcess]:
    """A prod-mode server of the kitchen app (same database) that trusts the test issuer."""
    providers = [{"type": "customJwt", "issuer": ISSUER, "secret": JWT_SECRET}]
    env = convect_env(
        kitchen_server.env["DATABASE_URL"],
        services["redis_url"],
        KITCHEN,
        data_dir / "kitchen-prod",
        CONVECT_MODE="prod",
        CONVECT_AUTH_PROVIDERS=json.dumps(providers),
    )
    server = start_server(env, data_dir / "kitchen-prod.log")
    yield server
    server.stop()
