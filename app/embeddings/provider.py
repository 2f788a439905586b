"""What an embeddings provider is, and its errors."""

from __future__ import annotations

from typing import Protocol


class EmbeddingsError(RuntimeError):
    """An embeddings provider failed (bad answer, HTTP error, bad input)."""


class EmbeddingsUnavailable(EmbeddingsError):
    """No embeddings provider is configured or installed."""


class Provider(Protocol):
    """Turns texts into vectors of `dimensions` numbers."""

    name: str
    dimensions: int

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...
