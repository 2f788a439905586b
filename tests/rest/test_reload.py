"""Dev reload: the REST routes and /openapi.json follow the engine's new registry."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.engine import Engine
from app.engine.registry import load_registry
from app.http.app import create_app
from app.settings import Settings
from tests.rest.helpers import V1, V2
from tests.support.apps import write_app
from tests.support.calls import error_text
from tests.support.servers import create_database


async def test_reloading_the_functions_rebuilds_the_routes_and_the_spec(
    services: dict[str, str], tmp_path: Path
) -> None:
    url = await create_database(services["database_url"], "rest_reload")
    folder = write_app(tmp_path / "app", {"notes.py": V1})
    settings = Settings(database_url=url, functions=str(folder), data_dir=str(tmp_path / "data"))
    engine = Engine(settings, load_registry(folder))
    await engine.start()
    try:
        app = create_app(engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rest") as client:

            async def call(route: str, args: dict) -> httpx.Response:
                return await client.post(f"/api/run/notes/{route}", json={"args": args})

            assert (await call("find", {"n": 1})).json()["value"] == []
            assert (await call("gone", {})).json()["value"] == 0
            assert (await call("secret", {})).status_code == 404
            before = (await client.get("/openapi.json")).json()

            write_app(folder, {"notes.py": V2})
            await engine.reload(load_registry(folder))

            stale = (await call("find", {"n": 1})).json()
            assert stale["status"] == "error"
            assert error_text(stale["errorMessage"]).startswith("ArgumentValidationError: ")
            assert (await call("find", {"n": "a", "tag": "x"})).json()["value"] == []
            assert (await call("secret", {})).json()["value"] == 1
            assert (await call("gone", {})).status_code == 404
            after = (await client.get("/openapi.json")).json()
    finally:
        await engine.stop()
    assert sorted(before["paths"]) == ["/api/run/notes/find", "/api/run/notes/gone"]
    assert sorted(after["paths"]) == ["/api/run/notes/find", "/api/run/notes/secret"]
    assert after["components"]["schemas"]["notes.find.Args"]["required"] == ["n"]
    assert app.openapi() == after
    rest_routes = [r for r in app.router.routes if getattr(r, "path", "").startswith("/api/run/")]
    assert len(rest_routes) == 2  # the old routes were replaced, not kept beside the new
