"""Helpers for auth tests: a real local HTTP identity provider and token minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


class LocalIdp:
    """A tiny HTTP server on 127.0.0.1 serving JSON documents and counting hits per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: Counter[str] = Counter()
        self.delay_s = 0.0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.hits[self.path] += 1
                if idp.delay_s:
                    time.sleep(idp.delay_s)
                status, body = idp.routes.get(self.path, (404, b'{"error": "not found"}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, document: Any, status: int = 200) -> str:
        """Serve `document` as JSON at `path`; returns its full URL."""
        self.routes[path] = (status, json.dumps(document).encode())
        return self.base_url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Issuer:
    """One test's issuer: a unique URL prefix on the local server."""

    def __init__(self, idp: LocalIdp) -> None:
        self.idp = idp
        self.prefix = f"/iss-{uuid.uuid4().hex[:12]}"
        self.url = idp.base_url + self.prefix

    def serve(self, path: str, document: Any, status: int = 200) -> str:
        """Serve a JSON document under this issuer; returns its URL."""
        return self.idp.serve(self.prefix + path, document, status)

    def hits(self, path: str) -> int:
        """How many GET requests reached `path` under this issuer."""
        return self.idp.hits[self.prefix + path]

    def serve_jwks(self, *jwks: dict[str, Any], path: str = "/jwks.json") -> str:
        """Serve a JWKS holding these keys; returns its URL."""
        return self.serve(path, {"keys": list(jwks)})

    def serve_oidc(self, *jwks: dict[str, Any]) -> str:
        """Serve a discovery document and its JWKS; returns the issuer URL (the domain)."""
        jwks_uri = self.serve_jwks(*jwks)
        self.serve(
            "/.well-known/openid-configuration",
            {"issuer": self.url, "jwks_uri": jwks_uri, "id_token_signing_alg_values_supported": []},
        )
        return self.url


def public_jwk(private_key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key, with `kid` (and `alg` when given)."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk["kid"] = kid
    jwk["use"] = "sig"
    if alg:
        jwk["alg"] = alg
    return jwk


def public_pem(private_key: Any) -> str:
    """The SubjectPublicKeyInfo PEM of a private key's public half."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(iss: str, aud: str | list[str] | None = "my-app", **extra: Any) -> dict[str, Any]:
    """Valid claims for `iss` (five minutes left), overridable by `extra`."""
    now = int(time.time())
    out: dict[str, Any] = {"iss": iss, "sub": "user-1", "iat": now, "exp": now + 300}
    if aud is not None:
        out["aud"] = aud
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def mint(key: Any, alg: str, payload: dict[str, Any], kid: str | None = None) -> str:
    """A signed compact JWT."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWT assembled by hand (for tokens pyjwt refuses to make)."""
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        ]
    )


def hs256_by_hand(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """An HS256 token signed with any bytes as the secret (even a public key PEM)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"
