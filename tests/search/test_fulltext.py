"""Full-text search: relevance order, type-ahead prefixes, filters, limits, read sets."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.query import QueryDefinitionError
from tests.search.conftest import Store


async def add_notes(store: Store, notes: list[tuple[str, str]]) -> list[str]:
    """Insert (author, body) notes in order; return their ids."""

    async def run(db: Any) -> list[str]:
        return [await db.insert("notes", {"author": a, "body": b}) for a, b in notes]

    return await store.write(run)


async def search(store: Store, text: str, author: str | None = None, n: int = 100) -> list[str]:
    """Bodies of the notes a search finds, in result order."""

    def q(s: Any) -> Any:
        s = s.search("body", text)
        return s.eq("author", author) if author is not None else s

    docs = await store.query(
        lambda db: db.query("notes").with_search_index("search_body", q).take(n)
    )
    return [d["body"] for d in docs]


async def test_documents_with_more_matching_terms_rank_first(store: Store) -> None:
    await add_notes(
        store,
        [
            ("a", "the quick brown fox"),
            ("a", "a lazy dog sleeps"),
            ("a", "quick thinking"),
            ("a", "the quick brown dog jumps over the lazy fox"),
            ("a", "nothing relevant here"),
        ],
    )
    found = await search(store, "quick brown fox")
    assert found[:2] == ["the quick brown fox", "the quick brown dog jumps over the lazy fox"]
    assert found[2:] == ["quick thinking"]


async def test_more_occurrences_of_a_term_rank_higher_and_ties_go_newest_first(
    store: Store,
) -> None:
    await add_notes(
        store,
        [("a", "apple pie"), ("a", "apple apple apple"), ("a", "apple tart"), ("a", "pear")],
    )
    assert await search(store, "apple") == ["apple apple apple", "apple tart", "apple pie"]


async def test_the_last_term_matches_as_a_prefix_and_the_others_exactly(store: Store) -> None:
    await add_notes(
        store,
        [("a", "hello world"), ("a", "help wanted"), ("a", "helicopter"), ("a", "shell")],
    )
    assert sorted(await search(store, "hel")) == ["helicopter", "hello world", "help wanted"]
    assert await search(store, "hello wor") == ["hello world"]
    assert await search(store, "hel wanted") == ["help wanted"]
    assert await search(store, "HELLO") == ["hello world"]


async def test_terms_are_letters_and_digits_on_both_sides(store: Store) -> None:
    await add_notes(
        store,
        [("a", "e-mail: ann@example.com, v2.0"), ("a", "Crème brûlée à la carte"), ("a", "x")],
    )
    assert await search(store, "example") == ["e-mail: ann@example.com, v2.0"]
    assert await search(store, "mail ann") == ["e-mail: ann@example.com, v2.0"]
    assert await search(store, "v2 0") == ["e-mail: ann@example.com, v2.0"]
    assert await search(store, "brûlée") == ["Crème brûlée à la carte"]
    assert await search(store, "CRÈME") == ["Crème brûlée à la carte"]


async def test_filter_fields_narrow_the_results(store: Store) -> None:
    await add_notes(store, [("ann", "red apple"), ("bob", "green apple"), ("ann", "apple")])
    assert sorted(await search(store, "apple", author="ann")) == ["apple", "red apple"]
    assert await search(store, "apple", author="carl") == []


async def test_search_combines_with_filter_first_and_take(store: Store) -> None:
    await add_notes(store, [("ann", "one apple"), ("bob", "two apples"), ("ann", "apple")])

    async def run(db: Any) -> Any:
        q = db.query("notes").with_search_index("search_body", lambda s: s.search("body", "apple"))
        filtered = await q.filter(lambda f: f.eq(f.field("author"), "bob")).collect()
        return filtered, await q.first(), await q.take(2)

    filtered, first, two = await store.query(run)
    assert [d["body"] for d in filtered] == ["two apples"]
    assert first["body"] in {"apple", "one apple"}
    assert len(two) == 2


async def test_empty_and_symbol_only_searches_find_nothing(store: Store) -> None:
    await add_notes(store, [("a", "anything at all")])
    assert await search(store, "") == []
    assert await search(store, "  !?&|  ") == []


async def test_hostile_search_text_is_just_text(store: Store) -> None:
    await add_notes(store, [("a", "select drop table"), ("a", "plain")])
    for text in ["a' | 'b", "x & !y | (z)", "'; DROP TABLE notes; --", "drop:*", "\\ ' \""]:
        await search(store, text)
    assert await search(store, "'; DROP TABLE notes; --") == ["select drop table"]
    assert len(await store.query(lambda db: db.query("notes").collect())) == 2


async def test_a_search_returns_at_most_1024_documents(store: Store) -> None:
    await store.bulk_insert(
        "notes", [{"author": "a", "body": f"common word {i}"} for i in range(1100)], 1000.0
    )
    docs = await store.query(
        lambda db: (
            db.query("notes")
            .with_search_index("search_body", lambda s: s.search("body", "common"))
            .collect()
        )
    )
    assert len(docs) == 1024


async def test_a_search_reads_the_whole_table_for_live_queries(store: Store) -> None:
    await add_notes(store, [("a", "apple")])
    _, tx = await store.read(
        lambda db: (
            db.query("notes")
            .with_search_index("search_body", lambda s: s.search("body", "apple"))
            .collect()
        )
    )
    assert "notes" in tx.read_set.tables


@pytest.mark.parametrize(
    ("index", "fn", "message"),
    [
        ("nope", lambda s: s.search("body", "x"), "Search index notes.nope not found"),
        ("search_body", lambda s: s.search("author", "x"), "takes its search field 'body'"),
        ("search_body", lambda s: s.search("body", 3), "must be a string"),
        ("search_body", lambda s: s.eq("author", "a"), r"call q.search\(field, text\)"),
        ("search_body", lambda s: s.search("body", "x").eq("n", 1), "not a filter field"),
        ("search_body", lambda s: s.search("body", "a").search("body", "b"), "only once"),
        ("search_body", lambda s: None, "must return q.search"),
        ("search_body", lambda s: s.search("body", " ".join("w" * 17)), "at most 16"),
        ("search_body", lambda s: s.search("body", "w" * 40000), "too long"),
    ],
)
async def test_bad_search_queries_get_a_clear_error(
    store: Store, index: str, fn: Any, message: str
) -> None:
    with pytest.raises(QueryDefinitionError, match=message):
        await store.query(lambda db: db.query("notes").with_search_index(index, fn).collect())


async def test_search_on_a_table_without_search_indexes_is_refused(store: Store) -> None:
    with pytest.raises(QueryDefinitionError, match="not found"):
        await store.query(
            lambda db: (
                db.query("pages").with_search_index("x", lambda s: s.search("body", "a")).collect()
            )
        )
    with pytest.raises(QueryDefinitionError, match="only one index"):
        await store.query(
            lambda db: (
                db.query("notes")
                .with_index("by_creation_time")
                .order("desc")
                .with_search_index("search_body", lambda s: s.search("body", "a"))
                .collect()
            )
        )
