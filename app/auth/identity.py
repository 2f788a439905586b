"""`UserIdentity`: who is calling, as built from verified JWT claims."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import orjson

__all__ = ["UserIdentity"]

# (attribute name, Convex camelCase name, OIDC claim name) of the standard fields.
_STANDARD: tuple[tuple[str, str, str], ...] = (
    ("subject", "subject", "sub"),
    ("issuer", "issuer", "iss"),
    ("name", "name", "name"),
    ("given_name", "givenName", "given_name"),
    ("family_name", "familyName", "family_name"),
    ("nickname", "nickname", "nickname"),
    ("preferred_username", "preferredUsername", "preferred_username"),
    ("profile_url", "profileUrl", "profile"),
    ("picture_url", "pictureUrl", "picture"),
    ("email", "email", "email"),
    ("email_verified", "emailVerified", "email_verified"),
    ("gender", "gender", "gender"),
    ("birthday", "birthday", "birthdate"),
    ("timezone", "timezone", "zoneinfo"),
    ("language", "language", "locale"),
    ("phone_number", "phoneNumber", "phone_number"),
    ("phone_number_verified", "phoneNumberVerified", "phone_number_verified"),
    ("address", "address", "address"),
    ("updated_at", "updatedAt", "updated_at"),
)
_OPTIONAL = _STANDARD[2:]
_CAMEL_TO_ATTR = {camel: attr for attr, camel, _ in _STANDARD} | {
    "tokenIdentifier": "token_identifier"
}
_ATTR_NAMES = frozenset(_CAMEL_TO_ATTR.values())
# Registered JWT claims that describe the token, not the user: never custom claims.
_TOKEN_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
_STANDARD_CLAIMS = frozenset(claim for _, _, claim in _STANDARD) | _TOKEN_CLAIMS


class UserIdentity:
    """An immutable caller identity: standard OIDC fields plus the token's custom claims."""

    __slots__ = ("_custom", "_fields", "_key")

    _fields: dict[str, Any]
    _custom: Mapping[str, Any]
    _key: bytes

    token_identifier: str
    subject: str
    issuer: str
    name: str | None
    given_name: str | None
    family_name: str | None
    nickname: str | None
    preferred_username: str | None
    profile_url: str | None
    picture_url: str | None
    email: str | None
    email_verified: bool | None
    gender: str | None
    birthday: str | None
    timezone: str | None
    language: str | None
    phone_number: str | None
    phone_number_verified: bool | None
    address: Any
    updated_at: Any

    def __init__(
        self,
        *,
        subject: str,
        issuer: str,
        token_identifier: str | None = None,
        custom_claims: Mapping[str, Any] | None = None,
        **standard: Any,
    ) -> None:
        """Build an identity; prefer `from_claims` or `from_dict`."""
        unknown = set(standard) - _ATTR_NAMES
        if unknown:
            raise TypeError(f"UserIdentity got unknown fields: {sorted(unknown)}")
        if not isinstance(subject, str) or not subject:
            raise ValueError("UserIdentity needs a non-empty string subject")
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("UserIdentity needs a non-empty string issuer")
        if token_identifier is None:
            token_identifier = f"{issuer}|{subject}"
        elif not isinstance(token_identifier, str):
            raise ValueError("UserIdentity tokenIdentifier must be a string")
        fields: dict[str, Any] = {
            "token_identifier": token_identifier,
            "subject": subject,
            "issuer": issuer,
        }
        for attr, _, _ in _OPTIONAL:
            value = standard.get(attr)
            fields[attr] = copy.deepcopy(value) if value is not None else None
        custom = {str(k): copy.deepcopy(v) for k, v in (custom_claims or {}).items()}
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_custom", MappingProxyType(custom))
        object.__setattr__(self, "_key", _canonical(self.to_dict()))

    @property
    def canonical_json(self) -> str:
        """The identity as sorted JSON text: equal identities, equal text."""
        text: str = self._key.decode()
        return text

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> UserIdentity:
        """Build the identity of a verified JWT payload (`sub` and `iss` required)."""
        standard = {
            attr: claims[claim] for attr, _, claim in _OPTIONAL if claims.get(claim) is not None
        }
        custom = {k: v for k, v in claims.items() if k not in _STANDARD_CLAIMS}
        subject: Any = claims.get("sub")
        issuer: Any = claims.get("iss")
        return cls(
            subject=subject,
            issuer=issuer,
            custom_claims=custom,
            **standard,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserIdentity:
        """Inverse of `to_dict`: camelCase standard keys, every other key a custom claim."""
        if not isinstance(data, Mapping):
            raise ValueError("a user identity must be a JSON object")
        standard: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for key, value in data.items():
            attr = _CAMEL_TO_ATTR.get(key)
            if attr is None:
                custom[key] = value
            elif value is not None:
                standard[attr] = value
        subject, issuer = standard.pop("subject", None), standard.pop("issuer", None)
        return cls(subject=subject, issuer=issuer, custom_claims=custom, **standard)

    def to_dict(self) -> dict[str, Any]:
        """The Convex-style dict: camelCase standard fields (when set) and custom claims."""
        out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in self._custom.items()}
        out["tokenIdentifier"] = self._fields["token_identifier"]
        for attr, camel, _ in _STANDARD:
            value = self._fields[attr]
            if value is not None:
                out[camel] = copy.deepcopy(value)
        return out

    def __convex_value__(self) -> dict[str, Any]:
        """As a Convex value (returned from a function, stored): `to_dict()`, as in Convex."""
        return self.to_dict()

    @property
    def custom_claims(self) -> Mapping[str, Any]:
        """The token's claims that are not standard ones, read-only."""
        return self._custom

    def get(self, key: str, default: Any = None) -> Any:
        """Item lookup with a default, like `dict.get`."""
        try:
            return self[key]
        except KeyError:
            return default

    def __getitem__(self, key: str) -> Any:
        attr = _CAMEL_TO_ATTR.get(key)
        if attr is not None and self._fields[attr] is not None:
            return self._fields[attr]
        if key in self._custom:
            return self._custom[key]
        if key in _ATTR_NAMES and self._fields[key] is not None:
            return self._fields[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: standard fields, then custom claims.
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            fields = object.__getattribute__(self, "_fields")
            custom = object.__getattribute__(self, "_custom")
        except AttributeError:
            raise AttributeError(name) from None
        if name in fields:
            return fields[name]
        if name in custom:
            return custom[name]
        raise AttributeError(f"UserIdentity has no field or claim {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("UserIdentity is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("UserIdentity is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserIdentity):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"UserIdentity(token_identifier={self._fields['token_identifier']!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_dict, (self.to_dict(),))


def _canonical(data: dict[str, Any]) -> bytes:
    """The identity as sorted JSON text (UTF-8); ValueError for a claim that is no text
    (a string with a lone surrogate). Integers beyond 64 bits are kept."""
    try:  # an exact-size copy: orjson's own result holds a ~4 KiB buffer
        return bytes(memoryview(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)))
    except TypeError:  # an integer beyond 64 bits, or a lone surrogate
        pass
    try:
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ValueError(
            "a claim of the identity is not valid text (it holds a lone surrogate)"
        ) from None


def _from_dict(data: dict[str, Any]) -> UserIdentity:
    return UserIdentity.from_dict(data)
