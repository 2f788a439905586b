"""HTTP routes of file storage on the API listener: upload URLs and file serving."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.db import ids
from app.http.responses import JSONResponse
from app.storage.backend import BlobMissing
from app.storage.configured import s3_primary
from app.storage.digest import as_hex, digest_bytes, digest_header
from app.storage.errors import (
    FileNotFound,
    FileTooLarge,
    InvalidStoragePath,
    StorageError,
    StorageUnavailable,
)
from app.storage.ranges import RangeNotSatisfiable, etag_matches, parse_range
from app.storage.service import StorageService, check_content_type

log = logging.getLogger("convect.storage")
CACHE_CONTROL = "private, max-age=2592000"  # Convex's: a storage id never changes content
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Length, Digest, Range, If-None-Match",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, Digest",
    "Access-Control-Max-Age": "86400",
}


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message}, status_code=status, headers={**CORS, **headers}
    )


def _storage_error(exc: StorageError) -> JSONResponse:
    return _error(exc.status, exc.code, str(exc))


def _preflight() -> Response:
    return Response(status_code=204, headers=CORS)


# A stored file is the uploader's content on the API's origin: never a page that runs.
FILE_CSP = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"
)
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/x-javascript",
        "text/xsl",
    }
)


def is_active(content_type: str) -> bool:
    """True for types a browser renders as a document or runs (HTML, SVG, XML, scripts)."""
    essence = content_type.split(";")[0].strip().lower()
    return essence in ACTIVE_TYPES or essence.endswith(("+xml", "+html"))


def make_upload_endpoint(service: StorageService) -> Any:
    """POST /api/storage/upload?token=...: the body is the file; replies `{"storageId"}`."""

    async def upload(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight()
        try:
            service.check_token(request.query_params.get("token"))
            content_type = check_content_type(request.headers.get("content-type"))
            length = request.headers.get("content-length")
            if length is not None:
                if not length.isascii() or not length.isdigit():
                    raise StorageError(f"Invalid Content-Length {length[:40]!r}")
                if int(length) > service.limit:
                    raise FileTooLarge(
                        f"The file ({int(length)} bytes) exceeds the upload limit of "
                        f"{service.limit} bytes"
                    )
            expected = digest_header(request.headers.get("digest"))
            await service.claim_token(request.query_params.get("token"))
            storage_id = await service.store(request.stream(), content_type, sha256=expected)
        except StorageError as exc:
            return _storage_error(exc)
        except ClientDisconnect:
            log.info("upload abandoned by the client; nothing was stored")
            return Response(status_code=400)
        return JSONResponse({"storageId": storage_id}, headers=CORS)

    return upload


def make_file_endpoint(service: StorageService) -> Any:
    """GET/HEAD /api/storage/{id}: the file, with ETag, Digest, caching and Range support."""

    async def serve(request: Request) -> Response:
        if request.method == "OPTIONS":
            return _preflight()
        try:
            storage_id = check_path(request.path_params["storage_id"])
            doc = await service.document(storage_id)
            if doc is None:
                raise FileNotFound(f"File {storage_id} not found")
        except StorageError as exc:
            return _storage_error(exc)
        size = int(doc["size"])
        digest = digest_bytes(doc["sha256"])
        etag = f'"{as_hex(doc["sha256"])}"'
        headers = {
            **CORS,
            "ETag": etag,
            "Digest": "sha-256=" + base64.b64encode(digest).decode(),
            "Cache-Control": CACHE_CONTROL,
            "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": FILE_CSP,
        }
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        content_type = doc.get("contentType") or "application/octet-stream"
        headers["Content-Type"] = content_type
        if is_active(content_type):  # would run in the API's origin if shown inline
            headers["Content-Disposition"] = "attachment"
        start, stop, status = 0, size, 200
        if_range = request.headers.get("if-range")
        if (if_range is None or if_range.strip() == etag) and size > 0:
            # An empty file has no byte to range over: Convex answers it whole (200).
            try:
                wanted = parse_range(request.headers.get("range"), size)
            except RangeNotSatisfiable as exc:
                return _error(
                    416, "RangeNotSatisfiable", str(exc), **{"Content-Range": f"bytes */{size}"}
                )
            if wanted is not None:
                start, stop, status = wanted.start, wanted.stop, 206
                headers["Content-Range"] = wanted.content_range(size)
        headers["Content-Length"] = str(stop - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        s3 = s3_primary(service.backend)
        settings = service.engine.settings
        if (
            s3 is not None
            and settings.s3_downloads == "redirect"
            and size > 0
            and not await service.in_postgres(storage_id)  # not moved yet: served here
        ):
            url = await s3.presigned_url(
                storage_id, settings.s3_url_ttl, content_type, headers.get("Content-Disposition")
            )
            return Response(
                status_code=302,
                headers={**CORS, "Location": url, "Cache-Control": "private, no-store"},
            )
        stream = service.read(storage_id, start, stop)
        try:  # the first piece before the status line: a store that is down answers 503
            first = await anext(stream, None)
        except StorageUnavailable as exc:
            return _storage_error(exc)
        except BlobMissing:
            return _storage_error(FileNotFound(f"File {storage_id} not found"))
        return StreamingResponse(_chained(first, stream), status, headers)

    return serve


def check_path(value: str) -> str:
    """The storage id in a file URL's path (Convex's InvalidStoragePath if it is none)."""
    if ids.is_id_for(value, "_storage"):
        return value
    raise InvalidStoragePath(
        f'Invalid storage path: "{value[:100]}". Please use `storage.getUrl(storageId: '
        'Id<"_storage">)` to generate a valid URL to retrieve files. See '
        "https://docs.convex.dev/file-storage/serve-files for more details"
    )


async def _chained(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first
    async for piece in rest:
        yield piece


def storage_routes(service: StorageService) -> list[Route]:
    """The storage routes of the API listener."""
    return [
        Route("/api/storage/upload", make_upload_endpoint(service), methods=["POST", "OPTIONS"]),
        Route(
            "/api/storage/{storage_id}",
            make_file_endpoint(service),
            methods=["GET", "HEAD", "OPTIONS"],
        ),
    ]
