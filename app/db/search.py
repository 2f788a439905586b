"""Search and vector index support for the document store (see issue 6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.db.query import QueryDefinitionError, QuerySpec

if TYPE_CHECKING:
    from app.db.catalog import Catalog
    from app.db.database import DatabaseReader


class SearchHooks:
    """Extra columns written beside a document, and search execution."""

    def columns_for(
        self, catalog: Catalog, table: str, doc: dict[str, Any]
    ) -> tuple[list[str], list[Any]]:
        """Columns (tsvector / vector) derived from a document on write."""
        return [], []

    async def run_search(
        self, db: DatabaseReader, spec: QuerySpec, limit: int | None
    ) -> list[dict[str, Any]]:
        """Run a full-text search query."""
        raise QueryDefinitionError("Full-text search is not available in this build yet.")


def build_search(catalog: Catalog, spec: QuerySpec, index: str, fn: Any) -> QuerySpec:
    """Describe a `with_search_index` query."""
    raise QueryDefinitionError("Full-text search is not available in this build yet.")
