"""The one error type of authentication."""

from __future__ import annotations

__all__ = ["INVALID_AUTH_HEADER", "NO_AUTH_PROVIDER", "AuthenticationError"]

INVALID_AUTH_HEADER = "InvalidAuthHeader"
NO_AUTH_PROVIDER = "NoAuthProvider"


class AuthenticationError(Exception):
    """A token or Authorization header was rejected; the message never contains the token.

    `code` is what Convex answers for it: `InvalidAuthHeader` (a token that cannot be
    read or fails its checks), `NoAuthProvider` (no configured provider takes its issuer
    and audience), or `Unauthenticated` (anything else, such as a wrong admin key).
    """

    def __init__(self, message: str, code: str = "Unauthenticated") -> None:
        super().__init__(message)
        self.code = code
