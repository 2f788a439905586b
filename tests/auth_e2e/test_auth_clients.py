"""JWT identities end to end: official clients' setAuth over HTTP and WebSocket, refresh."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed

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
BROKEN = "https://broken.convect.test"
token = IDP.token


@pytest.fixture(scope="module")
def auth_server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    # A second provider whose data: JWKS does not parse: the server starts all the same
    # (as Convex) and only that issuer's tokens fail.
    broken = [{"type": "customJwt", "issuer": BROKEN, "jwks": "data:,{", "algorithm": "RS256"}]
    env = {**IDP.demo_env(), "CONVECT_AUTH_PROVIDERS": json.dumps(broken)}
    with served_app(services, "auth_e2e", DEMO, data_dir / "auth", **env) as server:
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
    assert r.json()["code"] == "InvalidAuthHeader"
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
        h.set_auth(token("erin", lifetime=-120))
        with pytest.raises(Exception, match=r"^401 InvalidAuthHeader: Could not validate token"):
            h.query("posts:whoami")
        h.set_auth(token("erin", iss="https://elsewhere.test"))
        with pytest.raises(Exception, match=r"^401 NoAuthProvider: No auth provider found"):
            h.query("posts:whoami")


async def test_an_identity_ends_on_the_socket_when_its_token_expires(
    http: httpx.AsyncClient, auth_server: ServerProcess
) -> None:
    # As Convex: an AuthError the client did not ask for (authUpdateAttempted false), the
    # socket closes, and nothing more runs as that user; the clients then fetch a new token.
    c = await SyncClient.open(auth_server.url)
    qid = await c.add("posts:whoami")
    await c.wait_query_set()
    short = token("erin", lifetime=2)
    await c.send({"type": "Authenticate", "tokenType": "User", "value": short, "baseVersion": 0})
    await c.recv_type("Transition")
    assert c.value(qid)["subject"] == "erin"
    started = time.monotonic()
    msg = await c.recv_type("AuthError", timeout=6)
    assert time.monotonic() - started < 3.5  # at `exp` (whole seconds), not later
    assert msg == {
        "type": "AuthError",
        "error": "Convex token identity expired",
        "baseVersion": 1,
        "authUpdateAttempted": False,
    }
    with pytest.raises(ConnectionClosed):
        await c.recv(timeout=5)


def test_the_npm_client_gets_a_new_token_when_the_server_ends_an_expired_one(
    auth_server: ServerProcess,
) -> None:
    # Tokens without `iat`: the client cannot schedule a refresh of its own, so it is the
    # server's AuthError at expiry that makes it fetch the next token and carry on.
    tokens = [token("frank", lifetime=3 + 4 * i, iat=None, jti=str(i)) for i in range(6)]
    out = run_script(
        "auth_expiry.mjs", env={"CONVECT_URL": auth_server.url, "TOKENS": json.dumps(tokens)}
    )
    assert out["timedOut"] == [], out
    assert out["before"]["subject"] == "frank"
    assert out["fetchesAfterExpiry"] >= 2, out  # the first token, then at least one more
    assert out["after"]["subject"] == "frank"  # still that user, on a fresh token
    assert out["authChanges"][0] is True and False not in out["authChanges"], out


async def test_an_identity_with_an_integer_beyond_64_bits_works_over_http_and_the_socket(
    http: httpx.AsyncClient, auth_server: ServerProcess
) -> None:
    # Such a claim once made every HTTP query answer 500 and the socket close 1011.
    big = token("grace", n=2**70)
    r = await _call(http, "query", "messages:list", {}, big)
    assert r.status_code == 200 and r.json()["status"] == "success"
    c = await SyncClient.open(auth_server.url)
    await c.send({"type": "Authenticate", "tokenType": "User", "value": big, "baseVersion": 0})
    qid = await c.add("messages:list")
    await c.wait_query_set()
    assert c.value(qid) == []
    await c.close()


PROVIDERS = (
    f"[CustomJWT(issuer={ISSUER}, app_id={AUDIENCE}), CustomJWT(issuer={BROKEN}, app_id=none)]"
)
NO_PROVIDER = (
    "No auth provider found matching the given token. Check that your JWT's issuer and "
    f"audience match one of your configured providers: {PROVIDERS}"
)


def _no_kid() -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 600}
    return jwt.encode(claims, IDP.key, algorithm="RS256")


def test_rejected_tokens_answer_convex_s_codes_and_texts_through_the_npm_clients(
    auth_server: ServerProcess,
) -> None:
    http_cases = {
        "two parts": "abc.def",
        "no iss": token(iss=None),
        "expired": token(lifetime=-120),
        "nbf ahead": token(nbf=int(time.time()) + 300),
        "iat ahead": token(iat=int(time.time()) + 300),
        "no kid": _no_kid(),
        "unknown kid": jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
            IDP.key,
            algorithm="RS256",
            headers={"kid": "k9"},
        ),
        "unknown issuer": token(iss="https://elsewhere.test"),
        "wrong aud": token(aud="another-app"),
        "no aud": token(aud=None),
        "broken provider": token(iss=BROKEN, aud=None),
    }
    socket_cases = {k: http_cases[k] for k in ("expired", "no kid", "unknown issuer")}
    out = run_script(
        "auth_errors.mjs",
        env={
            "CONVECT_URL": auth_server.url,
            "HTTP_CASES": json.dumps(http_cases),
            "SOCKET_CASES": json.dumps(socket_cases),
        },
        timeout=120,
    )
    seen = {name: json.loads(text) for name, text in out["http"].items()}
    invalid = "InvalidAuthHeader"
    assert seen["two parts"] == {
        "code": invalid,
        "message": "Could not parse JWT payload. Check that the token is a valid JWT format "
        "with three base64-encoded parts separated by dots.",
    }
    assert seen["no iss"] == {
        "code": invalid,
        "message": "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' "
        "claim that matches one of your configured auth providers.",
    }
    assert seen["expired"]["code"] == invalid
    assert re.fullmatch(
        r"Could not validate token: Token expired 1(19|2[01]) seconds ago",
        seen["expired"]["message"],
    ), seen["expired"]
    for ahead in ("nbf ahead", "iat ahead"):
        assert seen[ahead]["code"] == invalid
        assert re.fullmatch(
            r"Could not validate token: Token will be valid in 29\d seconds",
            seen[ahead]["message"],
        ), seen[ahead]
    assert seen["no kid"] == {
        "code": invalid,
        "message": "Could not decode token. JWT may be missing a 'kid' (key ID) header.",
    }
    assert seen["unknown kid"] == {
        "code": invalid,
        "message": "Could not decode token. The JWT's 'kid' (key ID) header is 'k9', does "
        "this key match any key in the provider's JWKS?",
    }
    for name in ("unknown issuer", "wrong aud", "no aud"):
        assert seen[name] == {"code": "NoAuthProvider", "message": NO_PROVIDER}, name
    assert seen["broken provider"]["code"] == invalid
    assert seen["broken provider"]["message"].startswith("Invalid JWKS response body from 'data:")
    # Over the socket: the AuthError carries the same text, and the client gives up on it.
    for name, observed in out["socket"].items():
        assert observed["changes"] == [False], (name, observed)
        # "Token expired N seconds ago": N may have grown by a second since the HTTP call
        text = re.sub(r"\d+", "N", seen[name]["message"])
        said = f"attempting to reauthenticate: {text}"
        assert any(said in re.sub(r"\d+", "N", e) for e in observed["errors"]), observed
