"""JWT identities end to end: official clients' setAuth over HTTP and WebSocket, refresh."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import DEMO
from tests.support.npm import run_script
from tests.support.servers import (
    ServerProcess,
    emptied_client,
    served_app,
)
from tests.support.tokens import RsaIssuer, rsa_key
from tests.support.ws import SyncClient

ISSUER = "https://auth.convect.test"
AUDIENCE = "convect-demo"
IDP = RsaIssuer(ISSUER, AUDIENCE)
OTHER_KEY = rsa_key()
token = IDP.token


@pytest.fixture(scope="module")
def auth_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    with served_app(services, "auth_e2e", DEMO, data_dir / "auth", **IDP.demo_env()) as server:
        yield server


@pytest.fixture
async def http(auth_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with emptied_client(auth_server) as client:
        yield client


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
    tokens = [token("dave", lifetime=12, role="member", jti=str(i)) for i in range(8)]
    out = run_script(
        "auth_clients.mjs",
        env={"CONVECT_URL": auth_server.url, "TOKENS": json.dumps(tokens), "BAD": "garbage"},
    )
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
