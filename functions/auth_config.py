"""Auth providers (Convex's auth.config.ts). JWTs from these issuers become identities.

The demo reads its issuer from the environment so that it runs anywhere; a real app
writes its providers here, for example:

    providers = [
        {"domain": "https://issuer.example.com", "application_id": "my-app"},  # OIDC
        {"type": "customJwt", "issuer": "https://auth.example.com",
         "jwks": "https://auth.example.com/.well-known/jwks.json",
         "algorithm": "RS256", "application_id": "my-app"},
    ]

Deployments that cannot ship code can also set CONVECT_AUTH_PROVIDERS (a JSON list).
"""

import os

providers = []
if os.environ.get("DEMO_JWT_ISSUER") and os.environ.get("DEMO_JWT_JWKS"):
    providers.append(
        {
            "type": "customJwt",
            "issuer": os.environ["DEMO_JWT_ISSUER"],
            "jwks": os.environ["DEMO_JWT_JWKS"],
            "algorithm": "RS256",
            "application_id": os.environ.get("DEMO_JWT_AUDIENCE", "convect-demo"),
        }
    )
