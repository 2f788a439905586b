"""The one error type of authentication."""

from __future__ import annotations

__all__ = ["AuthenticationError"]


class AuthenticationError(Exception):
    """A token or Authorization header was rejected; the message never contains the token."""
