"""Access: who may reach what, and how much any request can make a listener hold.

The demo app on a database of its own with a JWT provider (an RSA key of this test's):
internal functions, the admin-only stats path and other users' posts are unreachable
without the right identity on every entry point (HTTP API, REST, sync protocol); storage
ids carry 128 random bits; and the admin key is compared in constant time. Request
size limits: test_limits.py.
"""

from __future__ import annotations

import ast
import asyncio
import hmac
import re
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from app.auth import AuthenticationError
from app.auth.header import parse_authorization
from app.db import ids
from app.engine.registry import load_registry
from app.sync.socket import SyncSession
from tests.conftest import DEMO
from tests.reliability.hostile import Fingerprint
from tests.support.calls import error_text, mutation, query
from tests.support.servers import (
    ADMIN_KEY,
    ROOT,
    ServerProcess,
    emptied_client,
    served_app,
)
from tests.support.tokens import RsaIssuer, rsa_key
from tests.support.ws import SyncClient

ISSUER = "https://auth.reliability.test"
AUDIENCE = "convect-demo"
IDP = RsaIssuer(ISSUER, AUDIENCE)
OTHER_KEY = rsa_key()
ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
NOT_FOUND = "Could not find public function for"


token = IDP.token


def bearer(tok: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"} if tok else {}


@pytest.fixture(scope="module")
def server(services: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """`convect serve` of the demo app with a JWT provider, on its own database."""
    with served_app(services, "rel_access", DEMO, data_dir / "rel-access", **IDP.demo_env()) as srv:
        yield srv


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with emptied_client(server, timeout=60) as client:
        yield client


async def _socket(server: ServerProcess, tok: str | None) -> SyncClient:
    c = await SyncClient.open(server.url)
    if tok:
        await c.send({"type": "Authenticate", "tokenType": "User", "value": tok, "baseVersion": 0})
        await c.recv_type("Transition")
    return c


# ----------------------------------------------------------------- internal functions


async def test_internal_functions_are_unreachable_without_the_admin_key_on_every_entry_point(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    internal = [f for f in load_registry(DEMO).functions.values() if not f.is_public]
    assert len(internal) >= 5, [f.path for f in internal]
    secret = await mutation(http, "secrets:store", {"value": "s3cr3t"})
    fp = await Fingerprint.open(server.env["DATABASE_URL"])
    before = await fp.take()
    callers = {
        "anonymous": None,
        "user": token("mallory"),
        "user with role admin": token("mallory", role="admin"),
    }
    args = {"id": secret, "event": "x", "olderThan": 1e15, "name": "n", "storageId": "x",
            "type": "t"}  # fmt: skip
    for who, tok in callers.items():
        c = await _socket(server, tok)
        for fn in internal:
            path, kind = fn.path or "", fn.kind
            module, name = path.split(":")
            for endpoint in (f"/api/{kind}", "/api/function"):
                r = await http.post(
                    endpoint, json={"path": path, "args": args}, headers=bearer(tok)
                )
                assert r.status_code == 200, (who, path, r.text)
                assert r.json()["status"] == "error", (who, path, r.json())
                assert error_text(r.json()["errorMessage"]) == f"{NOT_FOUND} '{path}'.", who
            r = await http.post(f"/api/run/{module}/{name}", json={"args": args},
                                headers=bearer(tok))  # fmt: skip
            assert r.status_code == 404, (who, path, r.text)
            if kind == "query":
                qid = await c.add(path, args)
                await c.wait_query_set()
                assert c.results[qid]["type"] == "QueryFailed", (who, path)
                assert NOT_FOUND in c.results[qid]["errorMessage"]
            else:
                rid = c.next_request
                c.next_request += 1
                kind_msg = "Mutation" if kind == "mutation" else "Action"
                await c.send({"type": kind_msg, "requestId": rid, "udfPath": path, "args": [args]})
                response = await c.recv_type(f"{kind_msg}Response")
                assert response["success"] is False and NOT_FOUND in response["result"], (who, path)
        await c.close()
    # Wrong admin keys are refused outright; nothing above wrote anything.
    for bad in ("Convex wrong", f"Convex {ADMIN_KEY[:-1]}", f"Convex {ADMIN_KEY}x",
                f"Convex {ADMIN_KEY.upper()}", f"Convex x:{ADMIN_KEY}"):  # fmt: skip
        r = await http.post("/api/query", json={"path": "secrets:_get_secret", "args": args},
                            headers={"Authorization": bad})  # fmt: skip
        assert r.status_code == 401, (bad, r.text)
    assert await fp.take() == before
    await fp.close()
    # With the admin key, the same internal query answers (over HTTP and the socket).
    assert (await query(http, "secrets:_get_secret", {"id": secret}, headers=ADMIN))["value"] == (
        "s3cr3t"
    )
    c = await SyncClient.open(server.url)
    await c.send(
        {"type": "Authenticate", "tokenType": "Admin", "value": ADMIN_KEY, "baseVersion": 0}
    )
    qid = await c.add("secrets:_get_secret", {"id": secret})
    await c.wait_query_set()
    assert c.value(qid)["value"] == "s3cr3t"
    await c.close()


async def test_the_sync_stats_path_answers_only_the_admin_key(http: httpx.AsyncClient) -> None:
    path = "/api/debug/sync_stats"
    assert (await http.get(path)).status_code == 403
    assert (await http.get(path, headers=bearer(token("alice", role="admin")))).status_code == 403
    for bad in ("Convex wrong", f"Convex {ADMIN_KEY[:-1]}", f"Convex {ADMIN_KEY} x",
                f"Convex {ADMIN_KEY}:e30", "Basic YWRtaW46YWRtaW4="):  # fmt: skip
        assert (await http.get(path, headers={"Authorization": bad})).status_code == 401, bad
    ok = await http.get(path, headers=ADMIN)
    assert ok.status_code == 200 and "sessions" in ok.json()


# ----------------------------------------------------------------- other users' data


async def test_each_user_reads_only_their_own_posts_over_http_and_sockets(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    users = {"alice": 2, "bob": 1, "carol": 0}
    posts: dict[str, set[str]] = {u: set() for u in users}
    for user, n in users.items():
        for i in range(n):
            title = {"title": f"{user}-{i}"}
            posts[user].add(
                await mutation(http, "posts:create", title, headers=bearer(token(user)))
            )
    for _ in range(2):  # the second round may come from the HTTP query cache: still per user
        for user in users:
            mine = await query(http, "posts:my_posts", headers=bearer(token(user)))
            assert {p["_id"] for p in mine} == posts[user], user
            assert {p["author"] for p in mine} <= {user}
        assert await query(http, "posts:my_posts") == []
    # A socket signed in as bob sees bob's posts only, also after alice writes.
    c = await _socket(server, token("bob"))
    qid = await c.add("posts:my_posts")
    await c.wait_query_set()
    assert {p["_id"] for p in c.value(qid)} == posts["bob"]
    await mutation(http, "posts:create", {"title": "alice-late"}, headers=bearer(token("alice")))
    r = await c.mutation("posts:create", {"title": "bob-late"})
    assert {p["title"] for p in c.value(qid)} == {"bob-0", "bob-late"}, r
    # Re-authenticated as carol, the same subscription holds carol's (none).
    await c.send({"type": "Authenticate", "tokenType": "User", "value": token("carol"),
                  "baseVersion": 1})  # fmt: skip
    while c.version["identity"] < 2:
        await c.recv()
    await c.wait_query_set()
    assert c.value(qid) == []
    await c.close()


async def test_only_a_verified_admin_role_removes_another_users_post(
    http: httpx.AsyncClient,
) -> None:
    post = await mutation(http, "posts:create", {"title": "keep"}, headers=bearer(token("alice")))

    async def remove_as(headers: dict[str, str]) -> httpx.Response:
        return await http.post("/api/mutation", json={"path": "posts:remove_any",
                                                      "args": {"id": post}}, headers=headers)  # fmt: skip

    r = await remove_as({})
    assert r.json()["errorData"] == "Not authenticated"
    for role in (None, "user", "Admin", ["admin"], "admin ", {"admin": True}):
        claims = {} if role is None else {"role": role}
        r = await remove_as(bearer(token("bob", **claims)))
        assert r.json().get("errorData") == "Not authorized", (role, r.json())
    forged = [
        token("bob", key=OTHER_KEY, role="admin"),
        token("bob", lifetime=-120, role="admin"),
        token("bob", role="admin", aud="another-app"),
        token("bob", role="admin", iss="https://evil.example"),
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "role": "admin", "exp": 2**31},
            key="",
            algorithm="none",
        ),
    ]
    for tok in forged:
        assert (await remove_as(bearer(tok))).status_code == 401
    mine = await query(http, "posts:my_posts", headers=bearer(token("alice")))
    assert [p["_id"] for p in mine] == [post]
    assert (await remove_as(bearer(token("root", role="admin")))).json()["status"] == "success"
    assert await query(http, "posts:my_posts", headers=bearer(token("alice"))) == []


# ----------------------------------------------------------------- storage ids


def _random_part(storage_id: str) -> int:
    n = int(storage_id.translate(ids._INT32), 32) >> 4  # 176 bits: random, table, checksum
    return n >> 48


def test_storage_ids_carry_128_random_bits() -> None:
    made = [ids.new_id("_storage") for _ in range(4096)]
    assert len(set(made)) == len(made)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{35}[0g]", i) for i in made)
    assert all(ids.id_number(i) == ids.table_number("_storage") for i in made)
    parts = [_random_part(i) for i in made]
    assert all(p < 2**128 for p in parts) and max(parts).bit_length() == 128
    for bit in range(128):  # every bit is a fair coin (0.45..0.55 is over 6 sigma wide)
        ones = sum(p >> bit & 1 for p in parts)
        assert 0.45 < ones / len(parts) < 0.55, (bit, ones)
    assert parts != sorted(parts)  # not a counter or a clock


async def test_stored_file_ids_cannot_be_guessed_from_one_another(http: httpx.AsyncClient) -> None:
    stored = []
    for i in range(12):
        url = await mutation(http, "files:generate_upload_url")
        r = await http.post(
            url, content=f"file {i}".encode(), headers={"content-type": "text/plain"}
        )
        stored.append(r.json()["storageId"])
    assert len({_random_part(s) for s in stored}) == 12
    assert all(ids.id_number(s) == ids.table_number("_storage") for s in stored)
    known = set(stored)
    for s in stored:
        for pos in range(0, 34, 5):  # change one character of the random part
            digit = "0" if s[pos] != "0" else "1"
            guess = s[:pos] + digit + s[pos + 1 :]
            assert guess not in known
            r = await http.get(f"/api/storage/{guess}")
            assert r.status_code in (400, 404), (guess, r.status_code)


# ----------------------------------------------------------------- the admin key


def test_admin_keys_are_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key = "k" * 32
    with pytest.raises(AuthenticationError):
        asyncio.run(parse_authorization("Convex " + "x" * 32, admin_key=key, verifier=None))
    assert seen == [(b"x" * 32, key.encode())]
    seen.clear()
    engine = types.SimpleNamespace(settings=types.SimpleNamespace(admin_key=key))
    session = SyncSession(engine, None, None)  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError):
        session._admin({"value": "y" * 32})
    assert seen == [(b"y" * 32, key.encode())]


def test_no_code_compares_the_admin_key_with_an_operator() -> None:
    found = []
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                text = ast.unparse(node)
                # `is None` and the start-up check of its length compare nothing secret.
                if "admin_key" in text and not re.search(
                    r"\bis (not )?None\b|^len\(self\.admin_key\) < MIN_ADMIN_KEY_CHARS$", text
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert found == [], found
