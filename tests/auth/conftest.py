"""Fixtures for auth tests: real keys and a real local HTTP identity provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .helpers import Issuer, LocalIdp


@pytest.fixture(scope="session")
def idp() -> Iterator[LocalIdp]:
    server = LocalIdp()
    yield server
    server.close()


@pytest.fixture
def issuer(idp: LocalIdp) -> Issuer:
    return Issuer(idp)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()
