"""Authentication: JWT providers, user identities and the Authorization header."""

from app.auth.errors import INVALID_AUTH_HEADER, NO_AUTH_PROVIDER, AuthenticationError
from app.auth.header import Principal, parse_authorization
from app.auth.identity import UserIdentity
from app.auth.providers import (
    CustomJwtProvider,
    OidcProvider,
    Provider,
    load_providers_from_module,
    parse_providers,
    providers_from_json,
)
from app.auth.verifier import (
    AuthVerifier,
    no_provider_message,
    token_expiry,
    without_providers,
)

__all__ = [
    "INVALID_AUTH_HEADER",
    "NO_AUTH_PROVIDER",
    "no_provider_message",
    "token_expiry",
    "without_providers",
    "AuthVerifier",
    "AuthenticationError",
    "CustomJwtProvider",
    "OidcProvider",
    "Principal",
    "Provider",
    "UserIdentity",
    "load_providers_from_module",
    "parse_authorization",
    "parse_providers",
    "providers_from_json",
]
