"""UserIdentity: fields from claims, item and attribute access, dict round trips."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from app.auth import AuthVerifier, UserIdentity, parse_providers

from .helpers import Issuer, claims, mint, public_jwk

FULL_CLAIMS: dict[str, Any] = {
    "iss": "https://auth.example.com",
    "sub": "user-42",
    "aud": "my-app",
    "exp": 2_000_000_000,
    "iat": 1_700_000_000,
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "nickname": "ada",
    "preferred_username": "ada.l",
    "profile": "https://example.com/ada",
    "picture": "https://example.com/ada.png",
    "email": "ada@example.com",
    "email_verified": True,
    "gender": "female",
    "birthdate": "1815-12-10",
    "zoneinfo": "Europe/London",
    "locale": "en-GB",
    "phone_number": "+44 20 0000 0000",
    "phone_number_verified": False,
    "address": {"country": "UK"},
    "updated_at": 1_700_000_000,
    "role": "admin",
    "org": {"id": "o1", "teams": ["a", "b"]},
}


def test_standard_claims_become_convex_fields() -> None:
    identity = UserIdentity.from_claims(FULL_CLAIMS)
    assert identity.token_identifier == "https://auth.example.com|user-42"
    assert identity.subject == "user-42"
    assert identity.issuer == "https://auth.example.com"
    assert identity.name == "Ada Lovelace"
    assert identity.given_name == "Ada"
    assert identity.family_name == "Lovelace"
    assert identity.nickname == "ada"
    assert identity.preferred_username == "ada.l"
    assert identity.profile_url == "https://example.com/ada"
    assert identity.picture_url == "https://example.com/ada.png"
    assert identity.email == "ada@example.com"
    assert identity.email_verified is True
    assert identity.gender == "female"
    assert identity.birthday == "1815-12-10"
    assert identity.timezone == "Europe/London"
    assert identity.language == "en-GB"
    assert identity.phone_number == "+44 20 0000 0000"
    assert identity.phone_number_verified is False
    assert identity.address == {"country": "UK"}
    assert identity.updated_at == 1_700_000_000


def test_to_dict_uses_convex_camel_case_names_and_keeps_custom_claims() -> None:
    d = UserIdentity.from_claims(FULL_CLAIMS).to_dict()
    assert d["tokenIdentifier"] == "https://auth.example.com|user-42"
    assert d["pictureUrl"] == "https://example.com/ada.png"
    assert d["profileUrl"] == "https://example.com/ada"
    assert d["emailVerified"] is True
    assert d["phoneNumberVerified"] is False
    assert d["birthday"] == "1815-12-10"
    assert d["role"] == "admin"
    assert d["org"] == {"id": "o1", "teams": ["a", "b"]}
    for token_claim in ("iss", "sub", "aud", "exp", "iat", "picture", "email_verified"):
        assert token_claim not in d


def test_missing_optional_fields_are_none_and_absent_from_the_dict() -> None:
    identity = UserIdentity.from_claims({"iss": "https://i", "sub": "s"})
    assert identity.email is None
    assert identity.to_dict() == {
        "tokenIdentifier": "https://i|s",
        "subject": "s",
        "issuer": "https://i",
    }
    with pytest.raises(KeyError):
        identity["email"]
    assert identity.get("email", "none") == "none"
    assert "email" not in identity


def test_claims_are_reachable_by_item_and_attribute_access() -> None:
    identity = UserIdentity.from_claims(FULL_CLAIMS)
    assert identity["role"] == "admin"
    assert identity.role == "admin"
    assert identity["tokenIdentifier"] == identity.token_identifier
    assert identity["email"] == "ada@example.com"
    assert identity["pictureUrl"] == "https://example.com/ada.png"
    assert identity["given_name"] == "Ada"
    assert identity.get("role") == "admin"
    assert identity.get("missing", 7) == 7
    assert "role" in identity
    with pytest.raises(AttributeError, match="no field or claim 'missing'"):
        _ = identity.missing
    with pytest.raises(KeyError):
        identity["missing"]


def test_a_custom_claim_cannot_override_the_token_identifier_or_subject() -> None:
    identity = UserIdentity.from_claims(
        {"iss": "https://i", "sub": "s", "tokenIdentifier": "forged", "subject": "other"}
    )
    assert identity.token_identifier == "https://i|s"
    assert identity["tokenIdentifier"] == "https://i|s"
    assert identity.to_dict()["subject"] == "s"


def test_an_identity_is_immutable() -> None:
    identity = UserIdentity.from_claims(FULL_CLAIMS)
    with pytest.raises(AttributeError):
        identity.email = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        identity.custom_claims["role"] = "user"  # type: ignore[index]
    identity.to_dict()["org"]["teams"].append("c")
    assert identity["org"] == {"id": "o1", "teams": ["a", "b"]}


def test_from_dict_inverts_to_dict_and_equality_follows_content() -> None:
    identity = UserIdentity.from_claims(FULL_CLAIMS)
    again = UserIdentity.from_dict(identity.to_dict())
    assert again == identity
    assert hash(again) == hash(identity)
    assert again.role == "admin"
    assert len({identity, again}) == 1
    assert UserIdentity.from_claims({**FULL_CLAIMS, "role": "user"}) != identity
    assert pickle.loads(pickle.dumps(identity)) == identity


def test_tokens_differing_only_in_time_claims_give_equal_identities() -> None:
    a = UserIdentity.from_claims({**FULL_CLAIMS, "iat": 1, "exp": 2})
    b = UserIdentity.from_claims({**FULL_CLAIMS, "iat": 3, "exp": 4})
    assert a == b


def test_from_dict_computes_the_token_identifier_when_absent() -> None:
    identity = UserIdentity.from_dict({"subject": "s", "issuer": "https://i", "name": "N"})
    assert identity.token_identifier == "https://i|s"
    assert identity.name == "N"


@pytest.mark.parametrize(
    "data", [{}, {"subject": "s"}, {"issuer": "i"}, {"subject": 1, "issuer": "i"}]
)
def test_from_dict_needs_a_subject_and_an_issuer(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"subject|issuer"):
        UserIdentity.from_dict(data)


def test_an_integer_beyond_64_bits_in_a_claim_is_kept() -> None:
    identity = UserIdentity.from_claims({"iss": "https://i", "sub": "s", "big": 2**70})
    assert identity.big == 2**70
    assert hash(identity) == hash(UserIdentity.from_dict(identity.to_dict()))


async def test_a_verified_token_gives_the_identity_with_its_custom_claims(
    issuer: Issuer, rsa_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    payload = claims(domain, sub="u-7", email="u7@example.com", role="editor", picture="https://p")
    async with AuthVerifier(parse_providers([{"domain": domain, "application_id": "my-app"}])) as v:
        identity = await v.verify(mint(rsa_key, "RS256", payload, kid="k1"))
    assert identity.token_identifier == f"{domain}|u-7"
    assert identity.email == "u7@example.com"
    assert identity["email"] == "u7@example.com"
    assert identity.picture_url == "https://p"
    assert identity["role"] == "editor"
    assert identity.role == "editor"
    assert identity.to_dict() == {
        "tokenIdentifier": f"{domain}|u-7",
        "subject": "u-7",
        "issuer": domain,
        "email": "u7@example.com",
        "pictureUrl": "https://p",
        "role": "editor",
    }
