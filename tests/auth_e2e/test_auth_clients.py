"""JWT identities end to end: official clients' setAuth over HTTP and WebSocket, refresh."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import DEMO, truncate_all
from tests.support.servers import (
    ROOT,
    ServerProcess,
    convect_env,
    create_database,
    run_cli,
    start_server,
)
from tests.support.ws import SyncClient

ISSUER = "https://auth.convect.test"
AUDIENCE = "convect-demo"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks() -> str:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    payload = json.dumps({"keys": [jwk]}).encode()
    return "data:application/json;base64," + base64.b64encode(payload).decode()


def token(
    sub: str = "user-1", *, key: object = KEY, lifetime: float = 600, **claims: object
) -> str:
    """A signed RS256 JWT for the test issuer."""
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + int(lifetime),
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def auth_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    url = asyncio.run(create_database(services["database_url"], "auth_e2e"))
    env = convect_env(
        url,
        services["redis_url"],
        DEMO,
        data_dir / "auth",
        DEMO_JWT_ISSUER=ISSUER,
        DEMO_JWT_JWKS=_jwks(),
    )
    assert run_cli(env, "deploy").returncode == 0
    server = start_server(env, data_dir / "auth.log")
    yield server
    server.stop()


@pytest.fixture
async def http(auth_server: ServerProcess) -> httpx.AsyncClient:
    await truncate_all(auth_server.env["DATABASE_URL"], auth_server.url)
    return httpx.AsyncClient(base_url=auth_server.url, timeout=30)


async def _call(
    http: httpx.AsyncClient, kind: str, path: str, args: dict, tok: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return await http.post(f"/api/{kind}", json={"path": path, "args": args}, headers=headers)


async def test_identity_reaches_queries_and_mutations_over_http(http: httpx.AsyncClient) -> None:
    tok = token("alice", name="Alice", role="admin")
    r = await _call(http, "query", "posts:whoami", {}, tok)
    assert r.json()["value"] == {
        "subject": "alice",
        "tokenIdentifier": f"{ISSUER}|alice",
        "issuer": ISSUER,
        "name": "Alice",
        "role": "admin",
    }
    assert (await _call(http, "query", "posts:whoami", {}, None)).json()["value"] is None
    post = (await _call(http, "mutation", "posts:create", {"title": "t"}, tok)).json()["value"]
    assert (await _call(http, "query", "posts:my_posts", {}, tok)).json()["value"][0]["_id"] == post
    assert (await _call(http, "query", "posts:my_posts", {}, token("bob"))).json()["value"] == []
    denied = (await _call(http, "mutation", "posts:remove_any", {"id": post}, token("bob"))).json()
    assert denied["errorData"] == "Not authorized"
    ok = (await _call(http, "mutation", "posts:remove_any", {"id": post}, tok)).json()
    assert ok["status"] == "success"


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        token(key=OTHER_KEY),
        token(lifetime=-120),
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
            key="",
            algorithm="none",
        ),
    ],
    ids=["malformed", "wrong-key", "expired", "alg-none"],
)
async def test_bad_tokens_are_rejected_over_http_with_401_and_nothing_written(
    http: httpx.AsyncClient, bad: str
) -> None:
    r = await _call(http, "mutation", "posts:create", {"title": "t"}, bad)
    assert r.status_code == 401
    assert set(r.json()) == {"code", "message"}
    assert (await _call(http, "query", "posts:my_posts", {}, token("user-1"))).json()["value"] == []


async def test_authenticate_over_the_socket_re_runs_queries_with_the_new_identity(
    http: httpx.AsyncClient, auth_server: ServerProcess
) -> None:
    c = await SyncClient.open(auth_server.url)
    qid = await c.add("posts:whoami")
    await c.wait_query_set()
    assert c.value(qid) is None
    await c.send(
        {"type": "Authenticate", "tokenType": "User", "value": token("carol"), "baseVersion": 0}
    )
    t = await c.recv_type("Transition")
    assert t["endVersion"]["identity"] == 1
    assert c.value(qid)["subject"] == "carol"
    await c.send({"type": "Authenticate", "tokenType": "None", "baseVersion": 1})
    await c.recv_type("Transition")
    assert c.value(qid) is None
    await c.close()


def test_npm_clients_set_auth_over_http_and_socket_and_refresh_the_token(
    auth_server: ServerProcess,
) -> None:
    node = shutil.which("node")
    assert node
    tokens = [token("dave", lifetime=12, role="member", jti=str(i)) for i in range(8)]
    result = subprocess.run(
        [node, "auth_clients.mjs"],
        cwd=ROOT / "tests" / "js",
        env={
            **os.environ,
            "CONVECT_URL": auth_server.url,
            "TOKENS": json.dumps(tokens),
            "BAD": "garbage",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["timedOut"] == [], out
    assert out["httpWhoami"]["subject"] == "dave"
    assert out["socketWhoami"]["subject"] == "dave"
    assert out["authChanges"][0] is True
    assert out["fetches"] >= 3  # initial, forced refresh after confirmation, scheduled refresh
    assert out["afterRefresh"]["subject"] == "dave"
    assert out["badAuthChanges"][-1] is False


def test_pypi_client_set_auth(auth_server: ServerProcess) -> None:
    from convex import ConvexClient
    from convex.http_client import ConvexHttpClient

    from tests.support.deadline import deadline

    with deadline(30):
        h = ConvexHttpClient(auth_server.url)
        h.set_auth(token("erin"))
        assert h.query("posts:whoami")["subject"] == "erin"
        c = ConvexClient(auth_server.url)
        c.set_auth(token("erin"))
        assert c.query("posts:whoami")["subject"] == "erin"
