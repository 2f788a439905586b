"""Fetching and caching JSON documents (OIDC discovery, JWKS) over HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.auth.errors import INVALID_AUTH_HEADER, AuthenticationError

__all__ = ["JsonCache"]

logger = logging.getLogger(__name__)

_MAX_DOCUMENT_BYTES = 1 << 20


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    value: Any = None
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # monotonic time of the last attempt
    error: str | None = None  # message of the last failed attempt


class JsonCache:
    """JSON documents by URL, fetched once; refetched on demand, at most once per interval.

    One `asyncio.Lock` per URL: concurrent callers needing the same document share a
    single fetch.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        min_refetch_s: float,
        max_age_s: float | None,
        what: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Cache documents fetched with `http`; `what` names them in error messages."""
        self._http = http
        self._min_refetch_s = min_refetch_s
        self._max_age_s = max_age_s
        self._what = what
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    async def get(self, url: str, accept: Callable[[Any], bool] = lambda _: True) -> Any:
        """The document at `url`; refetched when `accept(cached)` is false or it is too old.

        A refetch happens at most once per `min_refetch_s` per URL; in between, the cached
        document is returned as it is (the caller then reports what is missing).
        """
        entry = self._entries.get(url)
        if entry is None:
            entry = self._entries[url] = _Entry()
        if self._usable(entry, accept):
            return entry.value
        async with entry.lock:
            if self._usable(entry, accept):
                return entry.value
            now = self._clock()
            if entry.attempted_at is not None and now - entry.attempted_at < self._min_refetch_s:
                if entry.fetched_at is None:
                    raise AuthenticationError(
                        entry.error or f"Could not fetch the {self._what}", INVALID_AUTH_HEADER
                    )
                return entry.value
            entry.attempted_at = now
            try:
                entry.value = await self._fetch(url)
            except AuthenticationError as e:
                entry.error = str(e)
                if entry.fetched_at is None:
                    raise
                logger.warning("%s; keeping the cached copy", e)
                return entry.value
            entry.fetched_at = self._clock()
            entry.error = None
            return entry.value

    def _usable(self, entry: _Entry, accept: Callable[[Any], bool]) -> bool:
        if entry.fetched_at is None:
            return False
        if self._max_age_s is not None and self._clock() - entry.fetched_at > self._max_age_s:
            return False
        return accept(entry.value)

    async def _fetch(self, url: str) -> Any:
        what = f"{self._what} from {url}"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as e:
            raise AuthenticationError(
                f"Could not fetch the {what}: {type(e).__name__}: {e}",
                INVALID_AUTH_HEADER,
            ) from None
        if response.status_code != 200:
            raise AuthenticationError(
                f"Could not fetch the {what}: HTTP {response.status_code}", INVALID_AUTH_HEADER
            )
        if len(response.content) > _MAX_DOCUMENT_BYTES:
            raise AuthenticationError(f"The {what} is larger than 1 MiB", INVALID_AUTH_HEADER)
        try:
            document = response.json()
        except ValueError:
            raise AuthenticationError(
                f"The {what} is not valid JSON", INVALID_AUTH_HEADER
            ) from None
        if not isinstance(document, dict):
            raise AuthenticationError(f"The {what} is not a JSON object", INVALID_AUTH_HEADER)
        logger.debug("fetched the %s", what)
        return document
