"""Functions see `CONVEX_CLOUD_URL` and `CONVEX_SITE_URL` in `os.environ`, as in Convex."""

from __future__ import annotations

from app.settings import Settings
from tests.support.npm import run_script
from tests.support.servers import ServerProcess


def test_functions_see_the_deployment_urls_from_import_on(kitchen_server: ServerProcess) -> None:
    out = run_script("deployment_urls.mjs", kitchen_server.url)
    urls = {"cloud": kitchen_server.url, "site": kitchen_server.site_url}
    assert out["action"] == urls
    assert out["query"] == {
        **urls,
        "atImport": {"CONVEX_CLOUD_URL": urls["cloud"], "CONVEX_SITE_URL": urls["site"]},
    }


def test_the_public_urls_are_the_ones_functions_see() -> None:
    settings = Settings(
        public_url="https://api.example.com/", public_site_url="https://site.example.com/"
    )
    assert settings.function_environment == {
        "CONVEX_CLOUD_URL": "https://api.example.com",
        "CONVEX_SITE_URL": "https://site.example.com",
    }
    local = Settings(host="0.0.0.0", port=4000, site_port=4001)
    assert local.function_environment == {
        "CONVEX_CLOUD_URL": "http://127.0.0.1:4000",
        "CONVEX_SITE_URL": "http://127.0.0.1:4001",
    }
