"""HTTP actions of the kitchen app (tests/http_actions): errors, routing, CORS, streaming."""

import hashlib

from starlette.responses import JSONResponse, PlainTextResponse

from app.server import HttpRouter, http_action
from app.values import ConvexError

http = HttpRouter(cors={"allowed_origins": ["https://app.example"]})


@http.route(path="/kitchen/boom", method="GET")
async def boom(ctx, request):
    """Fail with an exception whose text must reach clients only in dev mode."""
    raise RuntimeError("kaboom: internal detail")


@http.route(path="/kitchen/not-a-response", method="GET")
async def not_a_response(ctx, request):
    """Return something that is not a Response."""
    return {"not": "a response"}


@http.route(path="/kitchen/whoami", method="GET")
async def whoami(ctx, request):
    """The caller's identity (from a Bearer token), or null."""
    identity = await ctx.auth.get_user_identity()
    if not identity:
        return JSONResponse(None)
    return JSONResponse({"subject": identity.subject, "issuer": identity.issuer})


@http.route(path="/kitchen/digest", method="POST")
async def digest(ctx, request):
    """Hash a streamed body of any size without holding it."""
    sha = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        sha.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": sha.hexdigest()})


@http.route(path="/kitchen/only-post", method="POST")
async def only_post(ctx, request):
    """A path that takes POST only."""
    return PlainTextResponse("posted")


@http.route(path_prefix="/kitchen/prefix/", method="GET")
async def prefix(ctx, request):
    """Anything under /kitchen/prefix/."""
    return PlainTextResponse("short:" + request.url.path)


async def _deeper(ctx, request):
    return PlainTextResponse("long:" + request.url.path + "?" + request.url.query)


http.route(path_prefix="/kitchen/prefix/deeper/", method="GET", handler=http_action(_deeper))


@http.route(path="/kitchen/buffered", method="POST")
async def buffered(ctx, request):
    """Read the whole body into memory (bounded by the engine: tests/reliability)."""
    body = await request.body()
    return JSONResponse({"size": len(body)})


@http.route(path="/kitchen/record", method="POST")
async def record(ctx, request):
    """Record `<caller subject or anonymous>:<body>` as a core_events event."""
    identity = await ctx.auth.get_user_identity()
    event = f"{identity.subject if identity else 'anonymous'}:{(await request.body()).decode()}"
    await ctx.run_mutation("core_tx:record", {"event": event, "fail": "no"})
    return JSONResponse(event)


@http.route(path="/kitchen/failer_custom", method="GET")
async def failer_custom(ctx, request):
    """Convex's `failer_custom`: an uncaught ConvexError."""
    raise ConvexError("Hello world!")


@http.route(path="/kitchen/bad-storage-id", method="GET")
async def bad_storage_id(ctx, request):
    """A storage call with an id that is not one: an uncaught error like any other."""
    await ctx.storage.get("not-an-id")
    return PlainTextResponse("unreachable")


@http.route(path="/kitchen/webhook", method="POST")
async def webhook(ctx, request):
    """A webhook that reads its own Authorization header and never asks for an identity."""
    return JSONResponse({"authorization": request.headers.get("authorization")})
