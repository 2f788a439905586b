"""Upload tokens: short-lived, HMAC-signed, carried in the upload URL's query string.

A token is base64url(version | expiry ms | nonce | HMAC-SHA256 of the first three), signed
with a key derived from the deployment's secret, so every process of a deployment
accepts the tokens of every other one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time

from app.storage.errors import ExpiredUploadToken, InvalidUploadToken

INVALID = "Couldn't decode the StoreFileAuthorization token"  # Convex's text

VERSION = 1
UPLOAD_TOKEN_TTL_MS = 60 * 60 * 1000  # one hour, as Convex's upload URLs
_BODY = struct.Struct(">BQ8s")
_SIG_BYTES = 32
_TOKEN_BYTES = _BODY.size + _SIG_BYTES
MAX_TOKEN_CHARS = 128


def derive_key(secret: str | bytes) -> bytes:
    """The signing key for upload tokens, from the deployment's storage secret."""
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the storage secret is empty")
    return hmac.new(raw, b"convect upload token v1", hashlib.sha256).digest()


def sign(key: bytes, *, expires_ms: float | None = None) -> str:
    """A new upload token that expires at `expires_ms` (default: an hour from now)."""
    if expires_ms is None:
        expires_ms = time.time() * 1000 + UPLOAD_TOKEN_TTL_MS
    body = _BODY.pack(VERSION, max(0, int(expires_ms)), os.urandom(8))
    sig = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + sig).decode().rstrip("=")


def verify(key: bytes, token: object, *, now_ms: float | None = None) -> float:
    """Check a token's signature and expiry; return its expiry (ms) or raise."""
    return verified(key, token, now_ms=now_ms)[0]


def verified(key: bytes, token: object, *, now_ms: float | None = None) -> tuple[float, bytes]:
    """`verify`, and the token's signed body: one per token, whatever its text (a key for
    remembering that it was used)."""
    if not isinstance(token, str) or not token:
        raise InvalidUploadToken(INVALID)
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidUploadToken(INVALID)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidUploadToken(INVALID) from None
    if len(raw) != _TOKEN_BYTES:
        raise InvalidUploadToken(INVALID)
    body, sig = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(sig, hmac.new(key, body, hashlib.sha256).digest()):
        raise InvalidUploadToken(INVALID)
    version, expires, _nonce = _BODY.unpack(body)
    if version != VERSION:
        raise InvalidUploadToken(INVALID)
    now = time.time() * 1000 if now_ms is None else now_ms
    if expires <= now:
        raise ExpiredUploadToken("Store File Authorization expired")
    return float(expires), body
