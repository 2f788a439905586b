"""parse_authorization: anonymous, bearer tokens, the admin key and acting-as identities."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.auth import (
    AuthenticationError,
    AuthVerifier,
    Principal,
    UserIdentity,
    parse_authorization,
    parse_providers,
)

from .helpers import claims, mint, public_pem

ADMIN_KEY = "convect-admin|0123456789abcdef"
ISSUER = "https://auth.example.com"


@pytest.fixture
async def verifier(rsa_key: Any) -> AsyncIterator[AuthVerifier]:
    provider = {"type": "customJwt", "issuer": ISSUER, "key": public_pem(rsa_key)}
    v = AuthVerifier(parse_providers([{**provider, "algorithm": "RS256"}]))
    yield v
    await v.aclose()


def acting_as(attributes: dict[str, Any]) -> str:
    """What the npm client's `setAdminAuth(key, identity)` sends: standard base64 of JSON."""
    return base64.b64encode(json.dumps(attributes).encode()).decode()


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_no_authorization_header_is_anonymous(header: str | None) -> None:
    principal = await parse_authorization(header, admin_key=ADMIN_KEY, verifier=None)
    assert principal == Principal(identity=None, is_admin=False)


async def test_a_bearer_token_gives_the_user_identity(verifier: AuthVerifier, rsa_key: Any) -> None:
    token = mint(rsa_key, "RS256", claims(ISSUER, role="member"))
    principal = await parse_authorization(f"Bearer {token}", admin_key=ADMIN_KEY, verifier=verifier)
    assert principal.is_admin is False
    assert principal.identity is not None
    assert principal.identity.token_identifier == f"{ISSUER}|user-1"
    assert principal.identity["role"] == "member"


async def test_a_bad_bearer_token_is_rejected(verifier: AuthVerifier) -> None:
    with pytest.raises(AuthenticationError, match="Could not parse JWT payload") as info:
        await parse_authorization("Bearer not-a-jwt", admin_key=ADMIN_KEY, verifier=verifier)
    assert info.value.code == "InvalidAuthHeader"
    with pytest.raises(AuthenticationError, match="Header must begin with `bearer `"):
        await parse_authorization("Bearer ", admin_key=ADMIN_KEY, verifier=verifier)


async def test_a_bearer_token_without_configured_providers_is_rejected(rsa_key: Any) -> None:
    token = mint(rsa_key, "RS256", claims(ISSUER))
    with pytest.raises(AuthenticationError, match=r"\(no providers configured\)") as info:
        await parse_authorization(f"Bearer {token}", admin_key=ADMIN_KEY, verifier=None)
    assert token not in str(info.value) and info.value.code == "NoAuthProvider"


async def test_the_admin_key_gives_an_admin_without_identity() -> None:
    principal = await parse_authorization(f"Convex {ADMIN_KEY}", admin_key=ADMIN_KEY, verifier=None)
    assert principal == Principal(identity=None, is_admin=True)


async def test_the_admin_key_with_an_identity_acts_as_that_user() -> None:
    attributes = {"subject": "u1", "issuer": ISSUER, "name": "Ada", "role": "editor"}
    header = f"Convex {ADMIN_KEY}:{acting_as(attributes)}"
    principal = await parse_authorization(header, admin_key=ADMIN_KEY, verifier=None)
    assert principal.is_admin is True
    assert principal.identity == UserIdentity.from_dict(attributes)
    assert principal.identity is not None
    assert principal.identity.token_identifier == f"{ISSUER}|u1"
    assert principal.identity.role == "editor"


@pytest.mark.parametrize(
    "credentials",
    ["wrong-key", ADMIN_KEY + "x", ADMIN_KEY[:-1], f"wrong:{acting_as({'subject': 's'})}"],
)
async def test_a_wrong_admin_key_is_rejected(credentials: str) -> None:
    with pytest.raises(AuthenticationError, match="Invalid admin key") as info:
        await parse_authorization(f"Convex {credentials}", admin_key=ADMIN_KEY, verifier=None)
    assert ADMIN_KEY not in str(info.value)


async def test_an_admin_header_is_rejected_when_no_admin_key_is_set() -> None:
    with pytest.raises(AuthenticationError, match="not enabled"):
        await parse_authorization(f"Convex {ADMIN_KEY}", admin_key=None, verifier=None)


@pytest.mark.parametrize(
    ("suffix", "match"),
    [
        ("%%%not-base64%%%", "acting-as identity"),
        (base64.b64encode(b"not json").decode(), "acting-as identity"),
        (acting_as(["a list"]), "JSON object"),  # type: ignore[arg-type]
        (acting_as({"name": "no subject"}), "subject"),
    ],
)
async def test_a_bad_acting_as_identity_is_rejected(suffix: str, match: str) -> None:
    with pytest.raises(AuthenticationError, match=match):
        await parse_authorization(
            f"Convex {ADMIN_KEY}:{suffix}", admin_key=ADMIN_KEY, verifier=None
        )


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "garbage"])
async def test_an_unsupported_authorization_scheme_is_rejected(header: str) -> None:
    with pytest.raises(AuthenticationError, match="Unsupported Authorization header"):
        await parse_authorization(header, admin_key=ADMIN_KEY, verifier=None)
