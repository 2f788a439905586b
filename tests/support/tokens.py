"""A JWT identity provider of the tests' own: an RSA key, its JWKS, RS256 tokens."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class RsaIssuer:
    """Signs RS256 tokens (key id `k1`) for `issuer` and `audience`."""

    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = rsa_key()

    @property
    def jwks(self) -> str:
        """The public key as a JWKS document in a data: URL."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="k1", alg="RS256", use="sig")
        payload = json.dumps({"keys": [jwk]}).encode()
        return "data:application/json;base64," + base64.b64encode(payload).decode()

    def demo_env(self) -> dict[str, str]:
        """The settings under which the demo app (functions/) trusts this issuer."""
        return {"DEMO_JWT_ISSUER": self.issuer, "DEMO_JWT_JWKS": self.jwks}

    def token(
        self, sub: str = "user-1", *, key: Any = None, lifetime: float = 600, **claims: Any
    ) -> str:
        """A token for `sub`, signed with this issuer's key (or `key`); `claims` are added
        to (or replace) the standard ones (None leaves one out)."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + int(lifetime),
        }
        payload = {k: v for k, v in {**body, **claims}.items() if v is not None}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": "k1"})
