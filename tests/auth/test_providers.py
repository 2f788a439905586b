"""parse_providers and the ways providers are loaded: validation at start-up."""

from __future__ import annotations

import base64
import json
import types
from typing import Any

import pytest

from app.auth import (
    CustomJwtProvider,
    OidcProvider,
    load_providers_from_module,
    parse_providers,
    providers_from_json,
)

from .helpers import public_jwk, public_pem

CUSTOM = {"type": "customJwt", "issuer": "https://auth.example.com"}
SECRET = "s" * 32


def test_an_oidc_provider_is_parsed_with_its_domain_normalized() -> None:
    [p] = parse_providers([{"domain": "https://issuer.example.com/", "application_id": "my-app"}])
    assert p == OidcProvider(domain="https://issuer.example.com", application_id="my-app")
    assert p.issuer == "https://issuer.example.com"
    assert p.discovery_url == "https://issuer.example.com/.well-known/openid-configuration"
    assert p.algorithms == ("RS256", "ES256")


@pytest.mark.parametrize("alias", ["application_id", "applicationID", "applicationId"])
def test_convex_spellings_of_the_application_id_are_accepted(alias: str) -> None:
    [p] = parse_providers([{"domain": "https://i.example.com", alias: "app"}])
    assert p.application_id == "app"
    [c] = parse_providers([{**CUSTOM, "secret": SECRET, alias: "app"}])
    assert c.application_id == "app"


def test_custom_jwt_providers_are_parsed_for_each_key_source(rsa_key: Any) -> None:
    jwks = {"keys": [public_jwk(rsa_key, "k1")]}
    data_url = (
        "data:application/json;base64," + base64.b64encode(json.dumps(jwks).encode()).decode()
    )
    parsed = parse_providers(
        [
            {**CUSTOM, "jwks": "https://auth.example.com/jwks.json", "algorithm": "RS256"},
            {**CUSTOM, "jwks": data_url, "algorithm": "RS256"},
            {**CUSTOM, "jwks": jwks, "algorithm": "RS256"},
            {**CUSTOM, "key": public_pem(rsa_key), "algorithm": "PS256"},
            {**CUSTOM, "secret": SECRET},
        ]
    )
    assert all(isinstance(p, CustomJwtProvider) for p in parsed)
    url, data, inline, pem, secret = parsed
    assert isinstance(url, CustomJwtProvider) and url.jwks_url and url.application_id is None
    assert isinstance(data, CustomJwtProvider) and data.jwks == jwks
    assert isinstance(inline, CustomJwtProvider) and inline.jwks == jwks
    assert (
        isinstance(pem, CustomJwtProvider) and pem.key is not None and pem.algorithms == ("PS256",)
    )
    assert isinstance(secret, CustomJwtProvider) and secret.algorithm == "HS256"


@pytest.mark.parametrize(
    ("provider", "match"),
    [
        ("https://x", "must be a dict"),
        ({"application_id": "a"}, "'domain' must be a non-empty http"),
        ({"domain": "issuer.example.com", "application_id": "a"}, "must be an http"),
        ({"domain": "https://i.example.com"}, "needs an 'application_id'"),
        ({"domain": "https://i.example.com", "application_id": ""}, "non-empty string"),
        ({"domain": "https://i", "aplication_id": "a"}, "unknown keys \\['aplication_id'\\]"),
        ({"domain": "https://i", "application_id": "a", "jwks": "https://j"}, "unknown keys"),
        ({"domain": "https://i", "application_id": "a", "applicationID": "b"}, "once"),
        ({"type": "saml", "domain": "https://i"}, "unknown type 'saml'"),
        ({"type": "customJwt", "jwks": "https://j", "algorithm": "RS256"}, "needs a non-empty"),
        ({**CUSTOM, "algorithm": "RS256"}, "exactly one of 'jwks', 'key' or 'secret'"),
        ({**CUSTOM, "jwks": "https://j", "secret": SECRET}, "exactly one of"),
        ({**CUSTOM, "jwks": "https://j"}, "needs an 'algorithm'"),
        ({**CUSTOM, "jwks": "https://j", "algorithm": "HS256"}, "HS256 needs an explicit 'secret'"),
        ({**CUSTOM, "jwks": "https://j", "algorithm": "none"}, "unsupported algorithm 'none'"),
        ({**CUSTOM, "jwks": "ftp://j", "algorithm": "RS256"}, "must be an http"),
        ({**CUSTOM, "jwks": ["https://j"], "algorithm": "RS256"}, "'jwks' must be a URL"),
        ({**CUSTOM, "jwks": {"keys": []}, "algorithm": "RS256"}, "no usable key"),
        ({**CUSTOM, "jwks": {"k": 1}, "algorithm": "RS256"}, "'keys' list"),
        ({**CUSTOM, "key": "not a pem", "algorithm": "RS256"}, "not a PEM public key"),
        ({**CUSTOM, "secret": SECRET, "algorithm": "RS256"}, "only with HS256"),
        ({**CUSTOM, "secret": "short"}, "at least 32 bytes"),
        ({**CUSTOM, "secret": "s" * 40, "algorithm": "HS384"}, "at least 48 bytes"),
    ],
)
def test_an_invalid_provider_is_refused_with_a_clear_message(provider: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_providers([provider])


@pytest.mark.parametrize(
    ("jwks", "text"),
    [
        ("data:application/json;base64,!!!", "Invalid JWKS data URL"),
        ("data:application/json", "Invalid JWKS data URL"),
        ("data:application/json,not-json", "Invalid JWKS response body from 'data:"),
        ("data:application/json,%7B%7D", "Invalid JWKS response body from 'data:"),
    ],
)
def test_an_unusable_data_url_jwks_leaves_the_provider_broken_not_the_config(
    jwks: str, text: str
) -> None:
    # As Convex: the deployment starts; only that issuer's tokens fail, with this text.
    other = {"type": "customJwt", "issuer": "https://ok.example.com", "secret": SECRET}
    broken, ok = parse_providers([{**CUSTOM, "jwks": jwks, "algorithm": "RS256"}, other])
    assert isinstance(broken, CustomJwtProvider) and broken.broken is not None
    assert broken.broken.startswith(text)
    assert isinstance(ok, CustomJwtProvider) and ok.broken is None


def test_a_pem_key_of_the_wrong_type_for_the_algorithm_is_refused(
    rsa_key: Any, ec_key: Any, ed_key: Any
) -> None:
    with pytest.raises(ValueError, match="RS256 needs an RSA public key"):
        parse_providers([{**CUSTOM, "key": public_pem(ec_key), "algorithm": "RS256"}])
    with pytest.raises(ValueError, match="ES256 needs an EC public key"):
        parse_providers([{**CUSTOM, "key": public_pem(rsa_key), "algorithm": "ES256"}])
    with pytest.raises(ValueError, match="ES384 needs a secp384r1 key"):
        parse_providers([{**CUSTOM, "key": public_pem(ec_key), "algorithm": "ES384"}])
    with pytest.raises(ValueError, match="EdDSA needs an Ed25519"):
        parse_providers([{**CUSTOM, "key": public_pem(rsa_key), "algorithm": "EdDSA"}])
    [p] = parse_providers([{**CUSTOM, "key": public_pem(ed_key), "algorithm": "EdDSA"}])
    assert p.algorithms == ("EdDSA",)


def test_the_error_names_the_provider_by_position() -> None:
    good = {"domain": "https://i.example.com", "application_id": "a"}
    with pytest.raises(ValueError, match="auth provider #1"):
        parse_providers([good, {"domain": "https://j.example.com"}])


def test_providers_must_be_a_list() -> None:
    assert parse_providers(None) == []
    with pytest.raises(ValueError, match="must be a list"):
        parse_providers({"domain": "https://i"})


def test_providers_are_read_from_an_auth_config_module() -> None:
    module = types.ModuleType("auth_config")
    assert load_providers_from_module(module) == []
    module.providers = [{"domain": "https://i.example.com", "application_id": "a"}]  # type: ignore[attr-defined]
    assert load_providers_from_module(module) == module.providers  # type: ignore[attr-defined]
    module.providers = {"domain": "x"}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"auth_config\.providers must be a list of dicts"):
        load_providers_from_module(module)


def test_providers_are_read_from_settings_json() -> None:
    provider = {"domain": "https://i.example.com", "application_id": "a"}
    assert providers_from_json(None) == []
    assert providers_from_json("  ") == []
    assert providers_from_json(json.dumps([provider])) == [provider]
    assert providers_from_json(json.dumps({"providers": [provider]})) == [provider]
    with pytest.raises(ValueError, match="not valid JSON"):
        providers_from_json("[{")
    with pytest.raises(ValueError, match="JSON list of provider objects"):
        providers_from_json('"https://i.example.com"')
