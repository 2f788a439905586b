"""HTTP routes of file storage on the API listener: upload URLs and file serving."""

from __future__ import annotations

import base64
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.http.responses import JSONResponse
from app.storage.errors import FileNotFound, FileTooLarge, StorageError
from app.storage.ranges import RangeNotSatisfiable, etag_matches, parse_range
from app.storage.service import StorageService, check_content_type, check_storage_id

log = logging.getLogger("convect.storage")
CACHE_CONTROL = "private, max-age=2592000, immutable"  # a storage id never changes content
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Length, Range, If-None-Match",
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
            await service.claim_token(request.query_params.get("token"))
            storage_id = await service.store(request.stream(), content_type)
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
            storage_id = check_storage_id(request.path_params["storage_id"])
            doc = await service.document(storage_id)
            if doc is None:
                raise FileNotFound(f"File {storage_id} does not exist (or was deleted)")
        except StorageError as exc:
            return _storage_error(exc)
        size = int(doc["size"])
        etag = f'"{doc["sha256"]}"'
        headers = {
            **CORS,
            "ETag": etag,
            "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(doc["sha256"])).decode(),
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
        if if_range is None or if_range.strip() == etag:
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
        return StreamingResponse(service.read(storage_id, start, stop), status, headers)

    return serve


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
