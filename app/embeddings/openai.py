"""An OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure-style proxies, local servers)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import httpx

from app.embeddings.provider import EmbeddingsError

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "text-embedding-3-small"
DEFAULT_DIMENSIONS = 384
MAX_BATCH = 512


def api_key() -> str | None:
    """The configured API key, if any."""
    for name in ("CONVECT_EMBEDDINGS_API_KEY", "OPENAI_API_KEY", "OPENAI_KEY"):
        value = os.environ.get(name)
        if value:
            return value
    return None


@dataclass
class OpenAIProvider:
    """Embeddings from `POST {url}/embeddings`."""

    url: str
    model: str
    dimensions: int
    key: str | None
    timeout: float = 30.0
    name: str = "openai"

    @classmethod
    def from_env(cls) -> OpenAIProvider:
        """Configured from CONVECT_EMBEDDINGS_* (see app.embeddings)."""
        dims = os.environ.get("CONVECT_EMBEDDINGS_DIMENSIONS", str(DEFAULT_DIMENSIONS))
        return cls(
            url=os.environ.get("CONVECT_EMBEDDINGS_URL", DEFAULT_URL).rstrip("/"),
            model=os.environ.get("CONVECT_EMBEDDINGS_MODEL", DEFAULT_MODEL),
            dimensions=int(dims),
            key=api_key(),
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        out: list[list[float]] = []
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for lo in range(0, len(texts), MAX_BATCH):
                batch = texts[lo : lo + MAX_BATCH]
                body: dict[str, Any] = {"model": self.model, "input": batch}
                if self.dimensions:
                    body["dimensions"] = self.dimensions
                try:
                    r = await client.post(f"{self.url}/embeddings", json=body, headers=headers)
                except httpx.HTTPError as exc:
                    raise EmbeddingsError(f"embeddings request failed: {exc}") from None
                if r.status_code != 200:
                    raise EmbeddingsError(
                        f"embeddings endpoint answered {r.status_code}: {r.text[:300]}"
                    )
                out += _vectors(r.json(), len(batch), self.dimensions)
        return out


def _vectors(payload: Any, count: int, dimensions: int) -> list[list[float]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise EmbeddingsError("embeddings endpoint gave an unexpected answer")
    items = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
    vectors = []
    for item in items:
        vec = item.get("embedding") if isinstance(item, dict) else None
        if (
            not isinstance(vec, list)
            or (dimensions and len(vec) != dimensions)
            or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in vec
            )
        ):
            raise EmbeddingsError(
                f"embeddings endpoint gave a vector that is not {dimensions} numbers"
            )
        vectors.append([float(x) for x in vec])
    return vectors
