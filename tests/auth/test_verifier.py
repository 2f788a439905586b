"""AuthVerifier against real keys and a real local HTTP identity provider."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import urllib.parse
from typing import Any

import pytest

from app.auth import AuthenticationError, AuthVerifier, UserIdentity, parse_providers

from .helpers import (
    Issuer,
    b64url,
    claims,
    hs256_by_hand,
    mint,
    public_jwk,
    public_pem,
    raw_token,
)

RS256_HEADER = b64url(b'{"alg": "RS256"}')
ISS_ONLY = b64url(b'{"iss": "https://x.example.com"}')
SECRET = b"0123456789abcdef0123456789abcdef-hs256"


def verifier(*providers: dict[str, Any], **kwargs: Any) -> AuthVerifier:
    return AuthVerifier(parse_providers(list(providers)), **kwargs)


async def rejected(v: AuthVerifier, token: str, match: str) -> AuthenticationError:
    """Assert the token is refused with a message matching `match` that never holds the token."""
    result: UserIdentity | None = None
    with pytest.raises(AuthenticationError, match=match) as info:
        result = await v.verify(token)
    assert result is None
    assert not token or token not in str(info.value)
    return info.value


# --- accepted tokens --------------------------------------------------------------------


async def test_an_rs256_token_of_an_oidc_issuer_is_verified_through_discovery(
    issuer: Issuer, rsa_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain + "/", "application_id": "my-app"}) as v:
        identity = await v.verify(mint(rsa_key, "RS256", claims(domain), kid="k1"))
    assert identity.subject == "user-1"
    assert identity.token_identifier == f"{domain}|user-1"
    assert issuer.hits("/.well-known/openid-configuration") == 1
    assert issuer.hits("/jwks.json") == 1


async def test_an_oidc_token_whose_iss_has_a_trailing_slash_is_accepted(
    issuer: Issuer, rsa_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain, "applicationID": "my-app"}) as v:
        identity = await v.verify(mint(rsa_key, "RS256", claims(domain + "/"), kid="k1"))
    assert identity.issuer == domain + "/"


async def test_an_oidc_token_with_a_list_audience_containing_the_application_id_is_accepted(
    issuer: Issuer, ec_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(ec_key, "ec1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        token = mint(ec_key, "ES256", claims(domain, aud=["other", "my-app"]), kid="ec1")
        assert (await v.verify(token)).subject == "user-1"


async def test_an_es256_custom_jwt_is_verified_with_a_jwks_url(issuer: Issuer, ec_key: Any) -> None:
    jwks_url = issuer.serve_jwks(public_jwk(ec_key, "ec1", "ES256"))
    provider = {
        "type": "customJwt",
        "issuer": issuer.url,
        "jwks": jwks_url,
        "algorithm": "ES256",
        "application_id": "my-app",
    }
    async with verifier(provider) as v:
        identity = await v.verify(mint(ec_key, "ES256", claims(issuer.url), kid="ec1"))
    assert identity.token_identifier == f"{issuer.url}|user-1"


@pytest.mark.parametrize("encoding", ["base64", "url-encoded"])
async def test_a_custom_jwt_is_verified_with_a_data_url_jwks(rsa_key: Any, encoding: str) -> None:
    document = json.dumps({"keys": [public_jwk(rsa_key, "k1")]})
    if encoding == "base64":
        jwks = (
            "data:text/plain;charset=utf-8;base64," + base64.b64encode(document.encode()).decode()
        )
    else:
        jwks = "data:application/json," + urllib.parse.quote(document)
    provider = {"type": "customJwt", "issuer": "https://auth.example.com", "jwks": jwks}
    async with verifier({**provider, "algorithm": "RS256"}) as v:
        token = mint(rsa_key, "RS256", claims("https://auth.example.com", aud=None), kid="k1")
        assert (await v.verify(token)).subject == "user-1"


async def test_a_custom_jwt_is_verified_with_an_inline_jwks_dict(ed_key: Any) -> None:
    provider = {
        "type": "customJwt",
        "issuer": "https://auth.example.com",
        "jwks": {"keys": [public_jwk(ed_key, "ed1")]},
        "algorithm": "EdDSA",
    }
    async with verifier(provider) as v:
        token = mint(ed_key, "EdDSA", claims("https://auth.example.com"), kid="ed1")
        assert (await v.verify(token)).subject == "user-1"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
async def test_a_custom_jwt_is_verified_with_a_pem_public_key(
    rsa_key: Any, ed_key: Any, alg: str
) -> None:
    key = ed_key if alg == "EdDSA" else rsa_key
    provider = {
        "type": "customJwt",
        "issuer": "https://pem.example.com",
        "key": public_pem(key),
        "algorithm": alg,
        "application_id": "my-app",
    }
    async with verifier(provider) as v:
        identity = await v.verify(mint(key, alg, claims("https://pem.example.com")))
    assert identity.issuer == "https://pem.example.com"


async def test_an_hs256_token_is_verified_with_an_explicit_secret() -> None:
    provider = {"type": "customJwt", "issuer": "https://hs.example.com", "secret": SECRET.decode()}
    async with verifier(provider) as v:
        identity = await v.verify(mint(SECRET, "HS256", claims("https://hs.example.com")))
    assert identity.subject == "user-1"


async def test_a_custom_jwt_without_application_id_accepts_any_audience(rsa_key: Any) -> None:
    provider = {
        "type": "customJwt",
        "issuer": "https://pem.example.com",
        "key": public_pem(rsa_key),
        "algorithm": "RS256",
    }
    async with verifier(provider) as v:
        for aud in ("anything", ["a", "b"], None):
            token = mint(rsa_key, "RS256", claims("https://pem.example.com", aud=aud))
            assert (await v.verify(token)).subject == "user-1"


async def test_a_token_expired_within_the_leeway_is_accepted(rsa_key: Any) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}, leeway_s=5.0) as v:
        token = mint(rsa_key, "RS256", claims("https://x.example.com", exp=int(time.time()) - 2))
        assert (await v.verify(token)).subject == "user-1"


async def test_a_rotated_key_is_accepted_after_the_jwks_is_refetched(
    issuer: Issuer, rsa_key: Any, rsa_key2: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "old"))
    async with verifier({"domain": domain, "application_id": "my-app"}, jwks_min_refetch_s=0) as v:
        await v.verify(mint(rsa_key, "RS256", claims(domain), kid="old"))
        assert issuer.hits("/jwks.json") == 1
        issuer.serve_jwks(public_jwk(rsa_key, "old"), public_jwk(rsa_key2, "new"))
        identity = await v.verify(mint(rsa_key2, "RS256", claims(domain, sub="u2"), kid="new"))
        assert identity.subject == "u2"
        assert issuer.hits("/jwks.json") == 2
        # The old key still verifies, from the cache.
        await v.verify(mint(rsa_key, "RS256", claims(domain, sub="u3"), kid="old"))
        assert issuer.hits("/jwks.json") == 2
        assert issuer.hits("/.well-known/openid-configuration") == 1


async def test_a_hundred_concurrent_verifications_fetch_discovery_and_jwks_once(
    issuer: Issuer, idp: Any, rsa_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    tokens = [mint(rsa_key, "RS256", claims(domain, sub=f"u{i}"), kid="k1") for i in range(100)]
    idp.delay_s = 0.05
    try:
        async with verifier({"domain": domain, "application_id": "my-app"}) as v:
            identities = await asyncio.gather(*(v.verify(t) for t in tokens))
    finally:
        idp.delay_s = 0.0
    assert [i.subject for i in identities] == [f"u{i}" for i in range(100)]
    assert issuer.hits("/.well-known/openid-configuration") == 1
    assert issuer.hits("/jwks.json") == 1


async def test_an_oidc_token_without_kid_is_verified_against_each_compatible_key(
    issuer: Issuer, rsa_key: Any, rsa_key2: Any, ec_key: Any
) -> None:
    domain = issuer.serve_oidc(
        public_jwk(ec_key, "ec"), public_jwk(rsa_key, "a"), public_jwk(rsa_key2, "b")
    )
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        assert (await v.verify(mint(rsa_key2, "RS256", claims(domain)))).subject == "user-1"


async def test_a_custom_jwt_without_kid_is_refused_when_the_provider_has_a_jwks(
    issuer: Issuer, rsa_key: Any
) -> None:
    # As Convex: a JWKS key is found by the token's `kid`.
    jwks = issuer.serve_jwks(public_jwk(rsa_key, "a"))
    provider = {"type": "customJwt", "issuer": issuer.url, "jwks": jwks, "algorithm": "RS256"}
    async with verifier(provider) as v:
        error = await rejected(v, mint(rsa_key, "RS256", claims(issuer.url)), "missing a 'kid'")
    assert str(error) == "Could not decode token. JWT may be missing a 'kid' (key ID) header."
    assert error.code == "InvalidAuthHeader"


# --- rejected tokens --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_an_unsigned_alg_none_token_is_rejected(rsa_key: Any, alg: str) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}) as v:
        token = raw_token({"alg": alg, "typ": "JWT"}, claims("https://x.example.com"))
        await rejected(v, token, "alg 'none'")


async def test_an_hs256_token_signed_with_the_public_key_pem_is_rejected(
    issuer: Issuer, rsa_key: Any
) -> None:
    pem = public_pem(rsa_key)
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    providers = [
        {
            "type": "customJwt",
            "issuer": "https://pem.example.com",
            "key": pem,
            "algorithm": "RS256",
        },
        {"domain": domain, "application_id": "my-app"},
    ]
    async with AuthVerifier(parse_providers(providers)) as v:
        for iss in ("https://pem.example.com", domain):
            forged = hs256_by_hand(pem.encode(), {"alg": "HS256", "kid": "k1"}, claims(iss))
            await rejected(v, forged, "algorithm 'HS256' is not allowed")
    assert issuer.hits("/jwks.json") == 0  # refused before any key was fetched


async def test_an_hs256_token_is_rejected_when_no_secret_is_configured(
    issuer: Issuer, rsa_key: Any
) -> None:
    jwks = issuer.serve_jwks(public_jwk(rsa_key, "k1"))
    provider = {"type": "customJwt", "issuer": issuer.url, "jwks": jwks, "algorithm": "RS256"}
    async with verifier(provider) as v:
        token = mint(SECRET, "HS256", claims(issuer.url), kid="k1")
        await rejected(v, token, "algorithm 'HS256' is not allowed.*expected RS256")


async def test_a_token_of_another_asymmetric_algorithm_is_rejected(
    issuer: Issuer, rsa_key: Any, ec_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"), public_jwk(ec_key, "ec1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        await rejected(
            v, mint(rsa_key, "PS256", claims(domain), kid="k1"), "'PS256' is not allowed"
        )


async def test_an_expired_token_is_rejected(rsa_key: Any) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}) as v:
        payload = claims("https://x.example.com", exp=int(time.time()) - 60)
        error = await rejected(
            v, mint(rsa_key, "RS256", payload), "Token expired 6[01] seconds ago"
        )
    assert str(error).startswith("Could not validate token: ")
    assert error.code == "InvalidAuthHeader"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_a_token_not_yet_valid_is_rejected(rsa_key: Any, claim: str) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}) as v:
        payload = claims("https://x.example.com", **{claim: int(time.time()) + 120})
        error = await rejected(
            v, mint(rsa_key, "RS256", payload), "Token will be valid in 1(19|20) seconds"
        )
    assert error.code == "InvalidAuthHeader"


@pytest.mark.parametrize("aud", ["other-app", ["a", "b"], None])
async def test_a_token_for_another_audience_is_rejected(
    issuer: Issuer, rsa_key: Any, aud: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        token = mint(rsa_key, "RS256", claims(domain, aud=aud), kid="k1")
        error = await rejected(v, token, "No auth provider found matching the given token")
    assert error.code == "NoAuthProvider"
    assert f"[OIDC(domain={domain}, app_id=my-app)]" in str(error)


async def test_a_token_with_a_wrong_issuer_is_rejected(issuer: Issuer, rsa_key: Any) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        for iss in (domain + "/other", domain + "//", "https://evil.example.com"):
            token = mint(rsa_key, "RS256", claims(iss), kid="k1")
            await rejected(v, token, "No auth provider found matching the given token.*issuer")
        payload = claims(domain)
        del payload["iss"]
        await rejected(
            v, mint(rsa_key, "RS256", payload, kid="k1"), r"Missing issuer claim \('iss'\)"
        )


async def test_a_token_for_an_unconfigured_issuer_is_rejected(ec_key: Any) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "ES256"}
    async with verifier({**provider, "key": public_pem(ec_key)}) as v:
        token = mint(ec_key, "ES256", claims("https://unknown.example.com"))
        error = await rejected(v, token, "No auth provider found matching the given token")
    assert str(error) == (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        "audience match one of your configured providers: "
        "[CustomJWT(issuer=https://x.example.com, app_id=none)]"
    )
    assert error.code == "NoAuthProvider"


async def test_a_token_signed_by_another_key_claiming_the_issuer_is_rejected(
    issuer: Issuer, rsa_key: Any, rsa_key2: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        token = mint(rsa_key2, "RS256", claims(domain), kid="k1")
        await rejected(v, token, "signature is invalid")


async def test_a_token_with_a_tampered_payload_is_rejected(issuer: Issuer, rsa_key: Any) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        token = mint(rsa_key, "RS256", claims(domain, role="user"), kid="k1")
        assert (await v.verify(token))["role"] == "user"
        header, _, signature = token.split(".")
        payload = b64url(json.dumps(claims(domain, role="admin")).encode())
        await rejected(v, f"{header}.{payload}.{signature}", "signature is invalid")


@pytest.mark.parametrize(
    ("token", "match"),
    [
        ("", "Could not parse JWT payload"),
        ("garbage", "Could not parse JWT payload"),
        ("abc.def", "Could not parse JWT payload"),
        ("a.b.c.d.e", "JWE"),
        ("!!!.???.xyz", "header is not base64url"),
        (f"{b64url(b'not json')}.{b64url(b'{}')}.sig", "header is not base64url JSON"),
        (f"{b64url(b'[1]')}.{b64url(b'{}')}.sig", "header is not a JSON object"),
        (f"{RS256_HEADER}.@@@.sig", "Could not parse JWT payload"),
        (f"{RS256_HEADER}.{b64url(b'{}')}.si+g", "signature is not base64url"),
        (f"{b64url(b'{}')}.{b64url(b'{}')}.sig", "Missing issuer claim"),
        (f"{b64url(b'{}')}.{ISS_ONLY}.sig", "no 'alg'"),
        ("x" * 70000, "longer than"),
    ],
)
async def test_a_malformed_token_is_rejected(rsa_key: Any, token: str, match: str) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}) as v:
        await rejected(v, token, match)


@pytest.mark.parametrize("claim", ["sub", "exp"])
async def test_a_token_missing_a_required_claim_is_rejected(rsa_key: Any, claim: str) -> None:
    provider = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier({**provider, "key": public_pem(rsa_key)}) as v:
        token = mint(rsa_key, "RS256", claims("https://x.example.com", **{claim: None}))
        await rejected(v, token, f"no '{claim}' claim")


async def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval(
    issuer: Issuer, rsa_key: Any
) -> None:
    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    provider = {"domain": domain, "application_id": "my-app"}
    async with verifier(provider, jwks_min_refetch_s=30) as v:
        await v.verify(mint(rsa_key, "RS256", claims(domain), kid="k1"))
        for _ in range(5):
            token = mint(rsa_key, "RS256", claims(domain), kid="nope")
            await rejected(v, token, "No RS256-compatible signing key with kid 'nope'")
        assert issuer.hits("/jwks.json") == 1

    async with verifier(provider, jwks_min_refetch_s=1.0) as v:
        await v.verify(mint(rsa_key, "RS256", claims(domain), kid="k1"))
        assert issuer.hits("/jwks.json") == 2
        await rejected(v, mint(rsa_key, "RS256", claims(domain), kid="nope"), "kid 'nope'")
        assert issuer.hits("/jwks.json") == 2  # fetched just now: no refetch yet
        await asyncio.sleep(1.05)
        unknown = [
            mint(rsa_key, "RS256", claims(domain, sub=f"u{i}"), kid="nope") for i in range(10)
        ]
        results = await asyncio.gather(*(v.verify(t) for t in unknown), return_exceptions=True)
        assert all(isinstance(r, AuthenticationError) for r in results)
        assert issuer.hits("/jwks.json") == 3  # ten concurrent misses, one refetch


async def test_a_jwks_key_for_another_algorithm_is_not_used(issuer: Issuer, rsa_key: Any) -> None:
    jwks = issuer.serve_jwks(public_jwk(rsa_key, "k1", alg="RS512"))
    provider = {"type": "customJwt", "issuer": issuer.url, "jwks": jwks, "algorithm": "RS256"}
    async with verifier(provider) as v:
        await rejected(
            v, mint(rsa_key, "RS256", claims(issuer.url), kid="k1"), "header is 'k1', does this key"
        )


# --- key fetching failures --------------------------------------------------------------


async def test_a_jwks_that_cannot_be_fetched_gives_a_clear_error(
    issuer: Issuer, rsa_key: Any
) -> None:
    jwks = issuer.url + "/missing-jwks.json"
    provider = {"type": "customJwt", "issuer": issuer.url, "jwks": jwks, "algorithm": "RS256"}
    async with verifier(provider) as v:
        token = mint(rsa_key, "RS256", claims(issuer.url), kid="k1")
        await rejected(v, token, "Could not fetch the JWKS from .*missing-jwks.json: HTTP 404")
        await rejected(v, token, "Could not fetch the JWKS")
    assert issuer.hits("/missing-jwks.json") == 1  # failures are not retried within the interval


async def test_an_unreachable_oidc_issuer_gives_a_clear_error(rsa_key: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    domain = f"http://127.0.0.1:{port}"
    async with verifier({"domain": domain, "application_id": "my-app"}) as v:
        token = mint(rsa_key, "RS256", claims(domain), kid="k1")
        await rejected(v, token, "Could not fetch the OpenID configuration from .*ConnectError")


async def test_a_discovery_document_without_jwks_uri_gives_a_clear_error(
    issuer: Issuer, rsa_key: Any
) -> None:
    issuer.serve("/.well-known/openid-configuration", {"issuer": issuer.url})
    async with verifier({"domain": issuer.url, "application_id": "my-app"}) as v:
        token = mint(rsa_key, "RS256", claims(issuer.url), kid="k1")
        await rejected(v, token, "has no usable 'jwks_uri'")


async def test_a_jwks_that_is_not_json_gives_a_clear_error(
    issuer: Issuer, idp: Any, rsa_key: Any
) -> None:
    idp.routes[issuer.prefix + "/jwks.json"] = (200, b"<html>")
    provider = {
        "type": "customJwt",
        "issuer": issuer.url,
        "jwks": issuer.url + "/jwks.json",
        "algorithm": "RS256",
    }
    async with verifier(provider) as v:
        token = mint(rsa_key, "RS256", claims(issuer.url), kid="k1")
        await rejected(v, token, "JWKS from .* is not valid JSON")


async def test_a_verifier_given_an_http_client_leaves_it_open(issuer: Issuer, rsa_key: Any) -> None:
    import httpx

    domain = issuer.serve_oidc(public_jwk(rsa_key, "k1"))
    async with httpx.AsyncClient() as http:
        v = verifier({"domain": domain, "application_id": "my-app"}, http=http)
        await v.verify(mint(rsa_key, "RS256", claims(domain), kid="k1"))
        await v.aclose()
        assert not http.is_closed


async def test_a_signed_token_whose_claim_is_no_text_is_refused_not_crashed() -> None:
    # Properly signed, so only the claim is wrong: the caller gets a 401, not a 500.
    provider = {"type": "customJwt", "issuer": "https://hs.example.com", "secret": SECRET.decode()}
    async with verifier(provider) as v:
        token = mint(SECRET, "HS256", claims("https://hs.example.com", team="\ud800 alone"))
        await rejected(v, token, "Invalid token: a claim of the identity is not valid text")


async def test_a_signed_token_with_an_integer_beyond_64_bits_works() -> None:
    provider = {"type": "customJwt", "issuer": "https://hs.example.com", "secret": SECRET.decode()}
    async with verifier(provider) as v:
        identity = await v.verify(mint(SECRET, "HS256", claims("https://hs.example.com", n=2**70)))
    assert identity.n == 2**70
    assert identity.canonical_json.startswith("{") and str(2**70) in identity.canonical_json


async def test_a_provider_with_a_broken_data_url_jwks_fails_only_its_own_tokens(
    rsa_key: Any,
) -> None:
    broken = {
        "type": "customJwt",
        "issuer": "https://broken.example.com",
        "jwks": "data:application/json;base64,!!!",
        "algorithm": "RS256",
    }
    working = {"type": "customJwt", "issuer": "https://x.example.com", "algorithm": "RS256"}
    async with verifier(broken, {**working, "key": public_pem(rsa_key)}) as v:
        token = mint(rsa_key, "RS256", claims("https://broken.example.com"), kid="k1")
        error = await rejected(v, token, "Invalid JWKS data URL")
        assert error.code == "InvalidAuthHeader"
        good = mint(rsa_key, "RS256", claims("https://x.example.com"))
        assert (await v.verify(good)).subject == "user-1"


async def test_in_prod_a_rejection_names_neither_the_providers_nor_the_kid(
    issuer: Issuer, rsa_key: Any
) -> None:
    jwks = issuer.serve_jwks(public_jwk(rsa_key, "a"))
    provider = {"type": "customJwt", "issuer": issuer.url, "jwks": jwks, "algorithm": "RS256"}
    async with verifier(provider, redact=True) as v:
        other = await rejected(v, mint(rsa_key, "RS256", claims("https://x.test")), "matching")
        assert str(other) == "No auth provider found matching the given token"
        assert other.code == "NoAuthProvider"
        kid = await rejected(v, mint(rsa_key, "RS256", claims(issuer.url), kid="k9"), "match")
        assert "k9" not in str(kid) and kid.code == "InvalidAuthHeader"
        bare = await rejected(v, mint(rsa_key, "RS256", claims(issuer.url)), "missing a 'kid'")
        assert str(bare).endswith("or the JWT signature is invalid.")
