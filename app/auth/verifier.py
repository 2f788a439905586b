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

from app.auth.errors import AuthenticationError
from app.auth.identity import UserIdentity
from app.auth.jwks import JsonCache
from app.auth.providers import CustomJwtProvider, OidcProvider, Provider, normalize_issuer

__all__ = ["AuthVerifier"]

MAX_TOKEN_CHARS = 64 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_CACHE_SECONDS = 300.0


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
    ) -> None:
        """Verify tokens of `providers`; `http` is used (not closed) when given."""
        self._providers = tuple(providers)
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
            raise AuthenticationError("The token must be a string")
        token = token.strip()
        cached = self._cached(token)
        if cached is not None:
            return cached
        header, claims = _read_unverified(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise AuthenticationError("Malformed token: its header has no 'alg'")
        if alg.lower() == "none":
            raise AuthenticationError("Unsigned tokens (alg 'none') are not accepted")
        if "crit" in header:
            raise AuthenticationError("Tokens with critical header extensions are not supported")
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise AuthenticationError("The token has no issuer ('iss' claim)")
        provider = self._select(issuer, alg, claims.get("aud"))
        if alg not in provider.algorithms:
            raise AuthenticationError(
                f"Token algorithm {_show(alg)} is not allowed for {provider.describe()}: "
                f"expected {' or '.join(provider.algorithms)}"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("Malformed token: its 'kid' is not a string")
        keys = await self._keys(provider, alg, kid)
        payload = self._decode(token, provider, alg, keys)
        try:
            identity = UserIdentity.from_claims(payload)
        except ValueError as e:
            raise AuthenticationError(f"Invalid token: {e}") from None
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
        candidates = self._by_issuer.get(normalize_issuer(issuer))
        if not candidates:
            configured = ", ".join(sorted(self._by_issuer)) or "none"
            raise AuthenticationError(
                "No auth provider found matching the given token: its issuer "
                f"{_show(issuer)} is not configured (configured issuers: {configured})"
            )
        if len(candidates) == 1:
            return candidates[0]
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []

        def rank(p: Provider) -> tuple[bool, bool]:
            aud_ok = p.application_id is None or p.application_id in audiences
            return (alg in p.algorithms, aud_ok)

        return max(candidates, key=rank)

    async def _keys(self, provider: Provider, alg: str, kid: str | None) -> list[Any]:
        if isinstance(provider, CustomJwtProvider):
            if provider.secret is not None:
                return [provider.secret]
            if provider.key is not None:
                return [provider.key]
            if provider.jwks is not None:
                return self._require(_matching(provider.jwks, alg, kid), provider, kid)
            url = provider.jwks_url
        else:
            url = await self._jwks_uri(provider)
        if url is None:  # parse_providers never builds such a provider
            raise AuthenticationError(f"{provider.describe()} has no key source")
        document = await self._jwks.get(url, accept=lambda d: bool(_matching(d, alg, kid)))
        return self._require(_matching(document, alg, kid), provider, kid)

    async def _jwks_uri(self, provider: OidcProvider) -> str:
        document = await self._discovery.get(provider.discovery_url)
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise AuthenticationError(
                f"The OpenID configuration of {provider.domain} has no usable 'jwks_uri'"
            )
        return uri

    @staticmethod
    def _require(keys: list[Any], provider: Provider, kid: str | None) -> list[Any]:
        if not keys:
            which = f"with kid {_show(kid)} " if kid is not None else ""
            raise AuthenticationError(
                f"No {provider.algorithms[0]}-compatible signing key {which}"
                f"in the JWKS of {provider.describe()}"
            )
        return keys

    def _decode(self, token: str, provider: Provider, alg: str, keys: list[Any]) -> dict[str, Any]:
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
                raise AuthenticationError("Invalid token: its signature is invalid") from None
            except jwt.PyJWTError as e:
                raise AuthenticationError(_message(e, provider)) from None
        raise AuthenticationError("Invalid token: no key to verify it")  # pragma: no cover

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
        raise AuthenticationError("Malformed token: it is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError(f"Malformed token: longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise AuthenticationError("Encrypted tokens (JWE) are not supported")
    if len(parts) != 3:
        raise AuthenticationError(
            f"Malformed token: expected 3 dot-separated parts, got {len(parts)}"
        )
    header = _json_part(parts[0], "header")
    payload = _json_part(parts[1], "payload")
    if not _B64URL.fullmatch(parts[2]):
        raise AuthenticationError("Malformed token: its signature is not base64url")
    return header, payload


def _json_part(part: str, what: str) -> dict[str, Any]:
    if not part or not _B64URL.fullmatch(part):
        raise AuthenticationError(f"Malformed token: its {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise AuthenticationError(f"Malformed token: its {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise AuthenticationError(f"Malformed token: its {what} is not a JSON object")
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


def _message(e: jwt.PyJWTError, provider: Provider) -> str:
    if isinstance(e, jwt.ExpiredSignatureError):
        return "Invalid token: it has expired"
    if isinstance(e, jwt.ImmatureSignatureError):
        return "Invalid token: it is not yet valid (its 'nbf' or 'iat' is in the future)"
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
