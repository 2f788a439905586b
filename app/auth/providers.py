"""Auth providers: validated once at start-up from `auth_config.py` or settings."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

__all__ = [
    "CustomJwtProvider",
    "OidcProvider",
    "Provider",
    "load_providers_from_module",
    "normalize_issuer",
    "parse_providers",
    "providers_from_json",
]

OIDC_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K",
        "EdDSA",
    }
)  # fmt: skip
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1",
              "ES256K": "secp256k1"}  # fmt: skip

log = logging.getLogger("convect.auth")
_APP_ID_KEYS = ("application_id", "applicationID", "applicationId")
_OIDC_KEYS = frozenset({"type", "domain", *_APP_ID_KEYS})
_CUSTOM_KEYS = frozenset({"type", "issuer", "jwks", "key", "secret", "algorithm", *_APP_ID_KEYS})


def normalize_issuer(issuer: str) -> str:
    """An issuer without its trailing slash, so `https://x/` and `https://x` match."""
    return issuer[:-1] if issuer.endswith("/") and len(issuer) > 1 else issuer


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect issuer: keys found through its discovery document."""

    domain: str
    application_id: str
    algorithms: tuple[str, ...] = OIDC_ALGORITHMS

    @property
    def issuer(self) -> str:
        """The `iss` its tokens carry (normalized)."""
        return self.domain

    @property
    def discovery_url(self) -> str:
        """Where the OpenID configuration document lives."""
        return f"{self.domain}/.well-known/openid-configuration"

    def describe(self) -> str:
        """A short text naming the provider, for error messages."""
        return f"OIDC {self.domain} (application_id {self.application_id!r})"

    def convex_name(self) -> str:
        """The provider as Convex lists it in a `NoAuthProvider` error."""
        return f"OIDC(domain={self.domain}, app_id={self.application_id})"


@dataclass(frozen=True)
class CustomJwtProvider:
    """A custom JWT issuer: one algorithm and a JWKS URL, inline JWKS, public key or secret."""

    issuer: str
    algorithm: str
    application_id: str | None = None
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = field(default=None, compare=False)
    key: Any = field(default=None, compare=False, repr=False)
    secret: bytes | None = field(default=None, compare=False, repr=False)
    broken: str | None = field(default=None, compare=False)
    """Why its keys cannot be read (a `data:` JWKS that does not parse): its tokens fail
    with this text, as in Convex, while the other providers work."""

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms its tokens may use (just the configured one)."""
        return (self.algorithm,)

    @property
    def has_jwks(self) -> bool:
        """True when its keys are a JWKS (found by the token's `kid`)."""
        return self.jwks is not None or self.jwks_url is not None or self.broken is not None

    def describe(self) -> str:
        """A short text naming the provider, for error messages."""
        app = f", application_id {self.application_id!r}" if self.application_id else ""
        return f"customJwt {self.issuer} ({self.algorithm}{app})"

    def convex_name(self) -> str:
        """The provider as Convex lists it in a `NoAuthProvider` error."""
        return f"CustomJWT(issuer={self.issuer}, app_id={self.application_id or 'none'})"


Provider = OidcProvider | CustomJwtProvider


def parse_providers(providers: Any) -> list[Provider]:
    """Validate provider dicts (Convex's `auth.config` entries in snake_case) at start-up."""
    if providers is None:
        return []
    if not isinstance(providers, list | tuple):
        raise ValueError(f"auth providers must be a list of dicts, got {type(providers).__name__}")
    return [_parse_one(p, i) for i, p in enumerate(providers)]


def load_providers_from_module(module: ModuleType | Any) -> list[dict[str, Any]]:
    """The `providers` list of an `auth_config` module, or [] when it defines none."""
    providers = getattr(module, "providers", None)
    if providers is None:
        return []
    name = getattr(module, "__name__", "auth_config")
    if not isinstance(providers, list | tuple) or not all(isinstance(p, dict) for p in providers):
        raise ValueError(f"{name}.providers must be a list of dicts")
    return [dict(p) for p in providers]


def providers_from_json(s: str | None) -> list[dict[str, Any]]:
    """Providers from a settings JSON string: a list, or an object with a `providers` list."""
    if s is None or not s.strip():
        return []
    try:
        data = json.loads(s)
    except ValueError as e:
        raise ValueError(f"auth providers setting is not valid JSON: {e}") from None
    if isinstance(data, dict) and "providers" in data:
        data = data["providers"]
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise ValueError("auth providers setting must be a JSON list of provider objects")
    return data


def _parse_one(raw: Any, index: int) -> Provider:
    where = f"auth provider #{index}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(raw).__name__}")
    kind = raw.get("type", "oidc")
    if kind in (None, "oidc"):
        _check_keys(raw, _OIDC_KEYS, where, "an OIDC provider")
        domain = _url(raw.get("domain"), f"{where} 'domain'")
        app_id = _application_id(raw, where)
        if app_id is None:
            raise ValueError(f"{where} (OIDC {domain}) needs an 'application_id'")
        return OidcProvider(domain=normalize_issuer(domain), application_id=app_id)
    if kind in ("customJwt", "custom_jwt"):
        return _parse_custom(raw, where)
    raise ValueError(f"{where} has unknown type {kind!r}: expected 'customJwt' or none (OIDC)")


def _parse_custom(raw: Mapping[str, Any], where: str) -> CustomJwtProvider:
    _check_keys(raw, _CUSTOM_KEYS, where, "a customJwt provider")
    issuer = raw.get("issuer")
    if not isinstance(issuer, str) or not issuer.strip():
        raise ValueError(f"{where} (customJwt) needs a non-empty string 'issuer'")
    issuer = normalize_issuer(issuer.strip())
    where = f"{where} (customJwt {issuer})"
    app_id = _application_id(raw, where)
    sources = [k for k in ("jwks", "key", "secret") if raw.get(k) is not None]
    if len(sources) != 1:
        raise ValueError(
            f"{where} needs exactly one of 'jwks', 'key' or 'secret', got {sources or 'none'}"
        )
    source = sources[0]
    algorithm = raw.get("algorithm")
    if source == "secret":
        algorithm = "HS256" if algorithm is None else algorithm
        if algorithm not in HMAC_ALGORITHMS:
            raise ValueError(
                f"{where}: a 'secret' works only with HS256, HS384 or HS512, not {algorithm!r}"
            )
        return CustomJwtProvider(
            issuer=issuer,
            algorithm=algorithm,
            application_id=app_id,
            secret=_secret(raw["secret"], algorithm, where),
        )
    if algorithm is None:
        raise ValueError(f"{where} needs an 'algorithm', e.g. 'RS256' or 'ES256'")
    if algorithm in HMAC_ALGORITHMS:
        raise ValueError(
            f"{where}: {algorithm} needs an explicit 'secret' (and no 'jwks' or 'key')"
        )
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(
            f"{where}: unsupported algorithm {algorithm!r}; expected one of "
            f"{sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS)}"
        )
    if source == "key":
        return CustomJwtProvider(
            issuer=issuer,
            algorithm=algorithm,
            application_id=app_id,
            key=_public_key(raw["key"], algorithm, where),
        )
    jwks = raw["jwks"]
    if isinstance(jwks, str) and jwks.startswith("data:"):
        try:
            parsed = _check_jwks(_data_url_json(jwks, where), where, jwks)
        except BrokenJwks as e:
            log.warning("%s: its tokens will be refused", e)
            return CustomJwtProvider(
                issuer=issuer, algorithm=algorithm, application_id=app_id, broken=e.convex_text
            )
        return CustomJwtProvider(
            issuer=issuer, algorithm=algorithm, application_id=app_id, jwks=parsed
        )
    if isinstance(jwks, str):
        return CustomJwtProvider(
            issuer=issuer,
            algorithm=algorithm,
            application_id=app_id,
            jwks_url=_url(jwks, f"{where} 'jwks'"),
        )
    if isinstance(jwks, Mapping):
        return CustomJwtProvider(
            issuer=issuer, algorithm=algorithm, application_id=app_id, jwks=_check_jwks(jwks, where)
        )
    raise ValueError(f"{where}: 'jwks' must be a URL, a data: URL or a dict with 'keys'")


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} for {what}; allowed: {sorted(allowed)}")
    given = [k for k in _APP_ID_KEYS if k in raw]
    if len(given) > 1:
        raise ValueError(f"{where}: give the application id once, not as {given}")


def _application_id(raw: Mapping[str, Any], where: str) -> str | None:
    for key in _APP_ID_KEYS:
        if key in raw and raw[key] is not None:
            value = raw[key]
            if not isinstance(value, str) or not value:
                raise ValueError(f"{where}: '{key}' must be a non-empty string")
            return value
    return None


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty http(s) URL string")
    url: str = value.strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{what} must be an http(s) URL, got {url!r}")
    return url


class BrokenJwks(ValueError):
    """A `data:` or inline JWKS that cannot be used; `convex_text` is Convex's error for
    the tokens of its provider."""

    def __init__(self, message: str, convex_text: str) -> None:
        super().__init__(message)
        self.convex_text = convex_text


def _bad_body(url: str) -> str:
    shown = url if len(url) <= 200 else url[:197] + "..."
    return (
        f"Invalid JWKS response body from '{shown}'. The response is not valid JSON or "
        "doesn't match the expected JWKS format."
    )


def _data_url_json(url: str, where: str) -> Any:
    header, sep, payload = url[len("data:") :].partition(",")
    bad_url = (
        "Invalid JWKS data URL. Check that the data URL is properly formatted and contains "
        "valid base64-encoded JSON."
    )
    if not sep:
        raise BrokenJwks(f"{where}: the 'jwks' data: URL has no ',' before its data", bad_url)
    try:
        if header.split(";")[-1].strip().lower() == "base64":
            text = base64.b64decode(urllib.parse.unquote(payload), validate=True)
        else:
            text = urllib.parse.unquote_to_bytes(payload)
    except (ValueError, binascii.Error) as e:
        raise BrokenJwks(f"{where}: the 'jwks' data: URL cannot be decoded: {e}", bad_url) from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise BrokenJwks(
            f"{where}: the 'jwks' data: URL does not hold JSON: {e}", _bad_body(url)
        ) from None


def _check_jwks(jwks: Any, where: str, url: str = "") -> dict[str, Any]:
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise BrokenJwks(
            f"{where}: the JWKS must be an object with a 'keys' list", _bad_body(url or "jwks")
        )
    try:
        jwt.PyJWKSet.from_dict(dict(jwks))
    except jwt.PyJWTError as e:
        raise BrokenJwks(
            f"{where}: the JWKS has no usable key: {e}", _bad_body(url or "jwks")
        ) from None
    copied: dict[str, Any] = json.loads(json.dumps(jwks))
    return copied


def _secret(value: Any, algorithm: str, where: str) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes) or not value:
        raise ValueError(f"{where}: 'secret' must be a non-empty string or bytes")
    minimum = _HMAC_MIN_BYTES[algorithm]
    if len(value) < minimum:
        raise ValueError(f"{where}: an {algorithm} 'secret' must be at least {minimum} bytes")
    return value


def _public_key(value: Any, algorithm: str, where: str) -> Any:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        raise ValueError(f"{where}: 'key' must be a PEM public key string")
    try:
        if b"-----BEGIN CERTIFICATE-----" in value:
            key: Any = x509.load_pem_x509_certificate(value).public_key()
        else:
            key = load_pem_public_key(value)
    except ValueError as e:
        raise ValueError(f"{where}: 'key' is not a PEM public key (or certificate): {e}") from None
    family = algorithm[:2]
    if family in ("RS", "PS") and not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{where}: {algorithm} needs an RSA public key")
    if family == "ES":
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(f"{where}: {algorithm} needs an EC public key")
        if key.curve.name != _EC_CURVES[algorithm]:
            raise ValueError(
                f"{where}: {algorithm} needs a {_EC_CURVES[algorithm]} key, not {key.curve.name}"
            )
    if algorithm == "EdDSA" and not isinstance(
        key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
    ):
        raise ValueError(f"{where}: EdDSA needs an Ed25519 or Ed448 public key")
    return key
