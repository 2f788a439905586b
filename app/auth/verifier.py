"""`AuthVerifier`: JWT verification against the configured providers."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

from app.auth.errors import INVALID_AUTH_HEADER, NO_AUTH_PROVIDER, AuthenticationError
from app.auth.identity import UserIdentity
from app.auth.jwks import JsonCache
from app.auth.providers import CustomJwtProvider, OidcProvider, Provider, normalize_issuer

__all__ = ["AuthVerifier", "no_provider_message", "token_expiry", "without_providers"]

MAX_TOKEN_CHARS = 64 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_CACHE_SECONDS = 300.0
UNPARSABLE = (
    "Could not parse JWT payload. Check that the token is a valid JWT format with three "
    "base64-encoded parts separated by dots."
)
NO_ISSUER = (
    "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim that "
    "matches one of your configured auth providers."
)
NO_KID = "Could not decode token. JWT may be missing a 'kid' (key ID) header."


def _invalid(message: str) -> AuthenticationError:
    return AuthenticationError(message, INVALID_AUTH_HEADER)


REDACTED_NO_PROVIDER = "No auth provider found matching the given token"


def no_provider_message(providers: Sequence[Provider], *, redact: bool = False) -> str:
    """Convex's text for a token no configured provider takes, naming the providers
    (`redact`, in prod: not naming them, as Convex does)."""
    if redact:
        return REDACTED_NO_PROVIDER
    if not providers:
        return (
            "No auth provider found matching the given token (no providers configured). "
            "Check functions/auth_config.py."
        )
    return (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        "audience match one of your configured providers: "
        f"[{', '.join(p.convex_name() for p in providers)}]"
    )


class AuthVerifier:
    """Verifies JWTs of the configured providers and turns them into `UserIdentity`s.

    Keys are fetched lazily (OIDC discovery, then JWKS) and cached per URL; a token
    with an unknown `kid` triggers a refetch at most once per `jwks_min_refetch_s`.
    Verified tokens are remembered (until `exp`, at most five minutes), so a client
    sending the same token on every request pays for one signature check.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        http: httpx.AsyncClient | None = None,
        leeway_s: float = 5.0,
        jwks_min_refetch_s: float = 30.0,
        jwks_max_age_s: float | None = 3600.0,
        cache_size: int = 1024,
        redact: bool = False,
    ) -> None:
        """Verify tokens of `providers`; `http` is used (not closed) when given.

        `redact` (prod): rejections do not name the configured providers or the token's
        `kid`, as Convex's texts in prod do not.
        """
        self._providers = tuple(providers)
        self._redact = redact
        self._by_issuer: dict[str, list[Provider]] = {}
        for provider in self._providers:
            self._by_issuer.setdefault(provider.issuer, []).append(provider)
        self._owns_http = http is None
        self._http = (
            http if http is not None else httpx.AsyncClient(timeout=10.0, follow_redirects=True)
        )
        self._leeway_s = leeway_s
        self._jwks = JsonCache(
            self._http, min_refetch_s=jwks_min_refetch_s, max_age_s=jwks_max_age_s, what="JWKS"
        )
        self._discovery = JsonCache(
            self._http,
            min_refetch_s=jwks_min_refetch_s,
            max_age_s=None,
            what="OpenID configuration",
        )
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[UserIdentity, float]] = OrderedDict()

    @property
    def providers(self) -> tuple[Provider, ...]:
        """The configured providers."""
        return self._providers

    async def verify(self, token: str) -> UserIdentity:
        """The identity of a valid token; `AuthenticationError` for anything else."""
        if not isinstance(token, str):
            raise _invalid("The token must be a string")
        token = token.strip()
        cached = self._cached(token)
        if cached is not None:
            return cached
        header, claims = _read_unverified(token)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise _invalid(NO_ISSUER)
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise _invalid("Malformed token: its header has no 'alg'")
        if alg.lower() == "none":
            raise _invalid("Unsigned tokens (alg 'none') are not accepted")
        if "crit" in header:
            raise _invalid("Tokens with critical header extensions are not supported")
        provider = self._select(issuer, alg, claims.get("aud"))
        if isinstance(provider, CustomJwtProvider) and provider.broken is not None:
            raise _invalid(provider.broken)
        if alg not in provider.algorithms:
            raise _invalid(
                f"Token algorithm {_show(alg)} is not allowed for {provider.describe()}: "
                f"expected {' or '.join(provider.algorithms)}"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _invalid("Malformed token: its 'kid' is not a string")
        if kid is None and isinstance(provider, CustomJwtProvider) and provider.has_jwks:
            raise _invalid(_undecodable(None, self._redact))  # a JWKS key is found by `kid`
        keys = await self._keys(provider, alg, kid)
        payload = self._decode(token, provider, alg, keys, kid, claims)
        try:
            identity = UserIdentity.from_claims(payload)
        except ValueError as e:
            raise _invalid(f"Invalid token: {e}") from None
        self._remember(token, identity, payload.get("exp"))
        return identity

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AuthVerifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _select(self, issuer: str, alg: str, aud: Any) -> Provider:
        """The provider of this issuer whose `application_id` (if any) is in the token's
        audience, as Convex picks it; `NoAuthProvider` when there is none."""
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        candidates = [
            p
            for p in self._by_issuer.get(normalize_issuer(issuer), [])
            if p.application_id is None or p.application_id in audiences
        ]
        if not candidates:
            raise AuthenticationError(
                no_provider_message(self._providers, redact=self._redact), NO_AUTH_PROVIDER
            )
        return max(candidates, key=lambda p: alg in p.algorithms)

    async def _keys(self, provider: Provider, alg: str, kid: str | None) -> list[Any]:
        if isinstance(provider, CustomJwtProvider):
            if provider.secret is not None:
                return [provider.secret]
            if provider.key is not None:
                return [provider.key]
            if provider.jwks is not None:
                return self._require(
                    _matching(provider.jwks, alg, kid), provider, kid, self._redact
                )
            url = provider.jwks_url
        else:
            url = await self._jwks_uri(provider)
        if url is None:  # parse_providers never builds such a provider
            raise _invalid(f"{provider.describe()} has no key source")
        document = await self._jwks.get(url, accept=lambda d: bool(_matching(d, alg, kid)))
        return self._require(_matching(document, alg, kid), provider, kid, self._redact)

    async def _jwks_uri(self, provider: OidcProvider) -> str:
        document = await self._discovery.get(provider.discovery_url)
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise _invalid(
                f"The OpenID configuration of {provider.domain} has no usable 'jwks_uri'"
            )
        return uri

    @staticmethod
    def _require(
        keys: list[Any], provider: Provider, kid: str | None, redact: bool = False
    ) -> list[Any]:
        if not keys:
            if isinstance(provider, CustomJwtProvider):
                raise _invalid(_undecodable(kid, redact))
            which = f"with kid {_show(kid)} " if kid is not None else ""
            raise _invalid(
                f"No {provider.algorithms[0]}-compatible signing key {which}"
                f"in the JWKS of {provider.describe()}"
            )
        return keys

    def _decode(
        self,
        token: str,
        provider: Provider,
        alg: str,
        keys: list[Any],
        kid: str | None,
        claims: dict[str, Any],
    ) -> dict[str, Any]:
        options: Any = {
            "require": ["exp", "iss", "sub"],
            "verify_aud": provider.application_id is not None,
        }
        for i, key in enumerate(keys):
            try:
                return jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=provider.application_id,
                    issuer=(provider.issuer, provider.issuer + "/"),
                    leeway=self._leeway_s,
                    options=options,
                )
            except jwt.InvalidSignatureError:
                if i + 1 < len(keys):
                    continue  # a token without `kid`: try the next compatible key
                if isinstance(provider, CustomJwtProvider):
                    raise _invalid(_undecodable(kid, self._redact)) from None
                raise _invalid("Invalid token: its signature is invalid") from None
            except jwt.PyJWTError as e:
                raise _invalid(_message(e, provider, claims)) from None
        raise _invalid("Invalid token: no key to verify it")  # pragma: no cover

    def _cached(self, token: str) -> UserIdentity | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        identity, until = entry
        if time.time() >= until:
            del self._verified[token]
            return None
        self._verified.move_to_end(token)
        return identity

    def _remember(self, token: str, identity: UserIdentity, exp: Any) -> None:
        if self._cache_size <= 0 or not isinstance(exp, int | float):
            return
        until = min(float(exp), time.time() + _CACHE_SECONDS)
        self._verified[token] = (identity, until)
        while len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)


def without_providers(token: str) -> AuthenticationError:
    """What a token gets where no provider is configured: Convex reads it first (a
    malformed token or one without `iss` is named as such), then finds no provider."""
    _, claims = _read_unverified(token.strip())
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        return _invalid(NO_ISSUER)
    return AuthenticationError(no_provider_message(()), NO_AUTH_PROVIDER)


def token_expiry(token: str) -> float | None:
    """When a (verified) token expires: its `exp` claim in seconds, or None without one."""
    try:
        _, claims = _read_unverified(token.strip())
    except AuthenticationError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _read_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, without checking anything else."""
    if not token:
        raise _invalid(UNPARSABLE)
    if len(token) > MAX_TOKEN_CHARS:
        raise _invalid(f"Malformed token: longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise _invalid("Encrypted tokens (JWE) are not supported")
    if len(parts) != 3:
        raise _invalid(UNPARSABLE)
    header = _json_part(parts[0], "header")
    payload = _json_part(parts[1], "payload")
    if not _B64URL.fullmatch(parts[2]):
        raise _invalid("Malformed token: its signature is not base64url")
    return header, payload


def _json_part(part: str, what: str) -> dict[str, Any]:
    """One JSON part of a token; a payload that cannot be read gets Convex's text."""
    try:
        if not part or not _B64URL.fullmatch(part):
            raise ValueError(f"Malformed token: its {what} is not base64url")
        try:
            value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (binascii.Error, ValueError, RecursionError):
            raise ValueError(f"Malformed token: its {what} is not base64url JSON") from None
        if not isinstance(value, dict):
            raise ValueError(f"Malformed token: its {what} is not a JSON object")
    except ValueError as e:
        raise _invalid(UNPARSABLE if what == "payload" else str(e)) from None
    return value


def _matching(jwks: Any, alg: str, kid: str | None) -> list[jwt.PyJWK]:
    """The keys of a JWKS that can verify an `alg` token with this `kid`."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        return []
    found = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        if kid is not None and jwk.get("kid") != kid:
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            continue
        try:
            found.append(jwt.PyJWK(jwk, algorithm=alg))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # a key of another type or an unusable one
    return found


def _undecodable(kid: str | None, redact: bool = False) -> str:
    """Convex's text for a custom JWT no key of the provider verifies (prod: `redact`)."""
    if redact:
        return (
            "Could not decode token. The JWT's 'kid' (key ID) header doesn't match any key in "
            "the provider's JWKS, or the JWT signature is invalid."
            if kid is not None
            else "Could not decode token. The JWT is missing a 'kid' (key ID) header, or the "
            "JWT signature is invalid."
        )
    if kid is None:
        return NO_KID
    return (
        f"Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', does this key "
        "match any key in the provider's JWKS?"
    )


def _seconds(claims: dict[str, Any], *names: str) -> int:
    """Whole seconds from now to the latest of these numeric claims (negative if past)."""
    times = [claims[n] for n in names if isinstance(claims.get(n), int | float)]
    return int(max(times) - time.time()) if times else 0


def _message(e: jwt.PyJWTError, provider: Provider, claims: dict[str, Any]) -> str:
    if isinstance(e, jwt.ExpiredSignatureError):
        return f"Could not validate token: Token expired {-_seconds(claims, 'exp')} seconds ago"
    if isinstance(e, jwt.ImmatureSignatureError):
        ahead = _seconds(claims, "nbf", "iat")
        return f"Could not validate token: Token will be valid in {ahead} seconds"
    if isinstance(e, jwt.InvalidAudienceError):
        return (
            f"Invalid token: its audience ('aud') does not include {provider.application_id!r} "
            f"of {provider.describe()}"
        )
    if isinstance(e, jwt.InvalidIssuerError):
        return f"Invalid token: its issuer does not match {provider.describe()}"
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"Invalid token: it has no {e.claim!r} claim"
    if isinstance(e, jwt.InvalidIssuedAtError):
        return "Invalid token: its 'iat' claim is not a number"
    if isinstance(e, jwt.InvalidAlgorithmError):
        return f"Invalid token: its algorithm is not allowed for {provider.describe()}"
    if isinstance(e, jwt.InvalidKeyError):
        return f"Invalid token: the key of {provider.describe()} cannot verify it"
    if isinstance(e, jwt.DecodeError):
        return "Malformed token: it could not be decoded"
    return f"Invalid token ({type(e).__name__})"


def _show(value: str | None) -> str:
    """A token-supplied string, quoted and cut short, for error messages."""
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
