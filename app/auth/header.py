"""The `Authorization` header: anonymous, `Bearer <jwt>` or `Convex <admin key>[:identity]`."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass

from app.auth.errors import INVALID_AUTH_HEADER, AuthenticationError
from app.auth.identity import UserIdentity
from app.auth.verifier import AuthVerifier, without_providers

__all__ = ["Principal", "parse_authorization"]


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a user identity (or None), and whether it holds the admin key."""

    identity: UserIdentity | None = None
    is_admin: bool = False


ANONYMOUS = Principal()


async def parse_authorization(
    header: str | None, *, admin_key: str | None, verifier: AuthVerifier | None
) -> Principal:
    """The principal of an `Authorization` header value; `AuthenticationError` if rejected."""
    if header is None or not header.strip():
        return ANONYMOUS
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        if not credentials:
            raise AuthenticationError("Header must begin with `bearer `", INVALID_AUTH_HEADER)
        if verifier is None:
            raise without_providers(credentials)
        return Principal(identity=await verifier.verify(credentials), is_admin=False)
    if scheme == "convex":
        return _admin(credentials, admin_key)
    raise AuthenticationError(
        "Unsupported Authorization header: expected 'Bearer <token>' or 'Convex <admin key>'"
    )


def _admin(credentials: str, admin_key: str | None) -> Principal:
    if not admin_key:
        raise AuthenticationError("Admin key authentication is not enabled on this server")
    if not credentials:
        raise AuthenticationError("Empty admin key in the Authorization header")
    if _same(credentials, admin_key):
        return Principal(identity=None, is_admin=True)
    key, sep, encoded = credentials.rpartition(":")
    if not sep or not _same(key, admin_key):
        raise AuthenticationError("Invalid admin key")
    return Principal(identity=_acting_as(encoded), is_admin=True)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _acting_as(encoded: str) -> UserIdentity:
    """The identity an admin acts as: base64 (standard or URL-safe) of a JSON object."""
    try:
        text = encoded.strip().replace("-", "+").replace("_", "/")
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        data = json.loads(raw)
        return UserIdentity.from_dict(data)
    except (binascii.Error, ValueError, TypeError, RecursionError) as e:
        raise AuthenticationError(
            f"Invalid acting-as identity in the admin Authorization header: {e}"
        ) from None
