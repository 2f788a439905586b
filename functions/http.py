"""HTTP actions: the seed's signed webhook and `GET /api/users?id=`, and files over HTTP.

Served on the site listener (CONVECT_SITE_PORT, default 3211). Each handler gets an
action `ctx` and a Starlette `Request` and returns a Starlette `Response`.
"""

import hashlib
import hmac
import json
import os

from starlette.responses import JSONResponse, Response, StreamingResponse

from app.server import HttpRouter, api, internal

http = HttpRouter()

WEBHOOK_SECRET_ENV = "WEBHOOK_SECRET"
DEMO_WEBHOOK_SECRET = "demo-webhook-secret"  # set WEBHOOK_SECRET in any real deployment
MAX_WEBHOOK_BYTES = 1024 * 1024


def sign_webhook(body: bytes, secret: str | None = None) -> str:
    """The hex HMAC-SHA256 of a webhook body: what the sender puts in `X-Signature`."""
    key = (secret or os.environ.get(WEBHOOK_SECRET_ENV) or DEMO_WEBHOOK_SECRET).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: str | None) -> bool:
    """True when `signature` (hex, optionally `sha256=`-prefixed) signs `body`."""
    if not signature:
        return False
    given = signature.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(sign_webhook(body).encode(), given.encode())


async def _read_limited(request, limit):
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@http.route(path="/webhook", method="POST")
async def webhook(ctx, request):
    """Verify the body's HMAC signature, then record the event through a mutation."""
    body = await _read_limited(request, MAX_WEBHOOK_BYTES)
    if body is None:
        return JSONResponse({"error": "Payload too large"}, status_code=413)
    if not verify_signature(body, request.headers.get("X-Signature")):
        return Response("Unauthorized", status_code=401)
    try:
        event = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "The body is not JSON"}, status_code=400)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return JSONResponse({"error": 'Expected {"type": string, "data"?: any}'}, status_code=400)
    args = {"type": event["type"]}
    if "data" in event:
        args["data"] = event["data"]
    await ctx.run_mutation(internal.webhooks.process, args)
    return JSONResponse({"success": True})


@http.route(path="/api/users", method="GET")
async def get_user(ctx, request):
    """The user whose id is `?id=`, as JSON (`null` when there is none)."""
    user_id = request.query_params.get("id")
    if not user_id:
        return JSONResponse({"error": "Pass the user's id as ?id="}, status_code=400)
    user = await ctx.run_query(api.users.get, {"id": user_id})
    return JSONResponse(user)


@http.route(path="/files", method="POST")
async def upload_file(ctx, request):
    """Store the request body (streamed, any size up to the limit) as a file named `?name=`."""
    name = request.query_params.get("name") or "upload"
    storage_id = await ctx.storage.store(request.stream(), request.headers.get("content-type"))
    await ctx.run_mutation(internal.files._save, {"name": name, "storageId": storage_id})
    return JSONResponse({"storageId": storage_id}, status_code=201)


@http.route(path_prefix="/files/", method="GET")
async def download_file(ctx, request):
    """Stream a stored file back: `GET /files/<storage id>`."""
    blob = await ctx.storage.get(request.url.path.removeprefix("/files/"))
    if blob is None:
        return Response("Not found", status_code=404)
    return StreamingResponse(
        blob.stream(),
        media_type=blob.type or "application/octet-stream",
        headers={"Content-Length": str(blob.size)},
    )
