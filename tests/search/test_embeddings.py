"""Embeddings providers: the OpenAI-compatible client, provider choice, and the demo's flow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import app.embeddings as embeddings
from app.embeddings import EmbeddingsError, EmbeddingsUnavailable, embed
from tests.search.embeddings_server import EmbeddingsServer, bag_of_words, embeddings_server
from tests.support.calls import CallFailed, action, mutation
from tests.support.servers import ROOT, convect_env, create_database, run_cli, start_server


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddingsServer]:
    """The stand-in endpoint, configured as the provider."""
    with embeddings_server() as server:
        monkeypatch.setenv("CONVECT_EMBEDDINGS", "openai")
        monkeypatch.setenv("CONVECT_EMBEDDINGS_URL", server.url)
        monkeypatch.setenv("CONVECT_EMBEDDINGS_API_KEY", "sk-test")
        embeddings.reset()
        yield server
    embeddings.reset()


async def test_the_openai_client_sends_model_input_dimensions_and_key(
    endpoint: EmbeddingsServer,
) -> None:
    vectors = await embed(["red apple", "green pear"])
    assert vectors == [bag_of_words("red apple", 384), bag_of_words("green pear", 384)]
    [request] = endpoint.requests
    assert request["path"] == "/v1/embeddings"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "text-embedding-3-small",
        "input": ["red apple", "green pear"],
        "dimensions": 384,
    }
    assert await embed([]) == []


async def test_endpoint_failures_are_clear_errors(endpoint: EmbeddingsServer) -> None:
    endpoint.fail_with = 401
    with pytest.raises(EmbeddingsError, match="answered 401"):
        await embed(["x"])
    endpoint.fail_with = None
    endpoint.wrong_length = True
    with pytest.raises(EmbeddingsError, match="not 384 numbers"):
        await embed(["x"])
    with pytest.raises(EmbeddingsError, match="list of strings"):
        await embed("x")  # type: ignore[arg-type]


async def test_without_a_provider_embed_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVECT_EMBEDDINGS", "none")
    embeddings.reset()
    with pytest.raises(EmbeddingsUnavailable, match="OPENAI_API_KEY"):
        await embed(["x"])
    monkeypatch.setenv("CONVECT_EMBEDDINGS", "bogus")
    embeddings.reset()
    with pytest.raises(EmbeddingsUnavailable, match="Unknown"):
        await embed(["x"])
    embeddings.reset()


async def test_the_demo_embeds_on_write_and_on_search_like_the_seed(
    services: dict[str, str], tmp_path: Path
) -> None:
    with embeddings_server() as server:
        url = await create_database(services["database_url"], "search_embeddings")
        env = convect_env(
            url,
            services["redis_url"],
            ROOT / "functions",
            tmp_path,
            CONVECT_EMBEDDINGS="openai",
            CONVECT_EMBEDDINGS_URL=server.url,
            CONVECT_EMBEDDINGS_API_KEY="sk-demo",
        )
        deployed = run_cli(env, "deploy")
        assert deployed.returncode == 0, deployed.stderr
        proc = start_server(env, tmp_path / "server.log")
        try:
            async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:
                for text, cat in [
                    ("cats purr and sleep all day", "pets"),
                    ("dogs bark at the mailman", "pets"),
                    ("stock markets fell sharply today", "news"),
                ]:
                    await action(client, "documents:add_text", {"text": text, "category": cat})
                found = await action(client, "documents:search", {"query": "do cats sleep"})
                assert found[0]["text"] == "cats purr and sleep all day"
                news = await action(
                    client, "documents:semanticSearch", {"query": "today", "category": "news"}
                )
                assert len(news) == 1
                server.fail_with = 500
                with pytest.raises(CallFailed, match="answered 500"):
                    await action(client, "documents:semanticSearch", {"query": "x"})
                with pytest.raises(CallFailed, match="must have 384 dimensions"):
                    await mutation(
                        client,
                        "documents:add",
                        {"text": "x", "category": "c", "embedding": [0.5] * 3},
                    )
        finally:
            proc.stop()
    assert all(r["auth"] == "Bearer sk-demo" for r in server.requests)
