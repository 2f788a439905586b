"""sha256 digests of stored files: base64 in `_storage` (as Convex), hex where Convex uses hex.

`_storage.sha256` is standard base64 (44 characters), `storage.getMetadata` and the
ETag give hex. Documents written before migration 0008 held hex; `digest_bytes` reads
both, so serving never depends on whether that migration ran yet.
"""

from __future__ import annotations

import base64
import binascii
import re

from app.storage.errors import BadHeader, StorageError

_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def digest_bytes(value: str) -> bytes:
    """The 32 bytes of a stored sha256, given as base64 or (older documents) hex."""
    if _HEX.match(value):
        return bytes.fromhex(value)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{value[:80]!r} is not a sha256 digest")
    return raw


def as_base64(raw: bytes) -> str:
    """A digest as `_storage` stores it."""
    return base64.b64encode(raw).decode()


def as_hex(value: str) -> str:
    """A stored sha256 (base64 or hex) as hex."""
    return digest_bytes(value).hex()


def expected_digest(value: object) -> bytes | None:
    """The digest a caller asserts (`store(..., sha256=)`): hex or base64; None when absent."""
    if value is None:
        return None
    if isinstance(value, bytes) and len(value) == 32:  # from a Digest header
        return value
    if isinstance(value, str):
        try:
            return digest_bytes(value)
        except ValueError:
            pass
    raise StorageError("sha256 must be 64 hexadecimal or 44 base64 characters")


def digest_header(header: str | None) -> bytes | None:
    """The digest of a `Digest: sha-256=<base64>` request header (Convex's BadHeader if malformed)."""
    if header is None:
        return None
    value = header.strip()
    raw = b""
    if value.startswith("sha-256="):
        try:
            raw = base64.b64decode(value[len("sha-256=") :], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if len(raw) != 32:
        raise BadHeader("Bad header for digest: invalid HTTP header")
    return raw
