"""The deploy history: each deploy's schema and functions, and what it changed.

`convect deploy` records every run; `convect dev` records its start and each reload that
changed something. A record keeps a snapshot (the schema's plain description and each
function's kind, visibility and validators) and the difference from the record before:
tables, indexes (search and vector too) and functions added, removed or changed. The
dashboard's Schema view shows the last few.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import asyncpg
import orjson

from app.schema import SchemaDefinition
from app.values import Validator

HISTORY_LOCK = 0x64686973  # "dhis": serialises recording, so each diff has one predecessor
KEEP = 100  # records kept; older ones are deleted
INDEX_KINDS = (("indexes", "index"), ("searchIndexes", "search"), ("vectorIndexes", "vector"))

__all__ = ["changed", "diff", "lines", "recent", "record", "record_at", "snapshot"]


class FunctionLike(Protocol):
    """What a snapshot reads of a registered function."""

    @property
    def kind(self) -> str:
        """query, mutation, action or httpAction."""

    @property
    def visibility(self) -> str:
        """public or internal."""

    @property
    def args(self) -> Validator | None:
        """The args validator, if any."""

    @property
    def returns(self) -> Validator | None:
        """The returns validator, if any."""


def snapshot(
    schema: SchemaDefinition | None, functions: Mapping[str, FunctionLike]
) -> dict[str, Any]:
    """A deployment's plain description: its schema and each function's signature."""
    return {
        "schema": schema.to_json() if schema is not None else None,
        "functions": {
            path: {
                "kind": fn.kind,
                "visibility": fn.visibility,
                "args": fn.args.to_json() if fn.args is not None else None,
                "returns": fn.returns.to_json() if fn.returns is not None else None,
            }
            for path, fn in sorted(functions.items())
            if fn.kind != "httpAction"
        },
    }


def _indexes(tables: Mapping[str, Any]) -> dict[tuple[str, str, str], Any]:
    """Every index of a schema description by (table, kind, name), with its definition."""
    out: dict[tuple[str, str, str], Any] = {}
    for table, tdef in tables.items():
        staged = set(tdef.get("staged") or [])
        for key, kind in INDEX_KINDS:
            for name, definition in (tdef.get(key) or {}).items():
                if kind == "index":
                    definition = {"fields": definition}
                if name in staged:
                    definition = {**definition, "staged": True}
                out[(table, kind, name)] = definition
    return out


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """What changed from snapshot `before` (None: nothing deployed yet) to `after`."""
    old_tables = ((before or {}).get("schema") or {}).get("tables") or {}
    new_tables = (after.get("schema") or {}).get("tables") or {}
    old_idx, new_idx = _indexes(old_tables), _indexes(new_tables)
    old_fns = (before or {}).get("functions") or {}
    new_fns = after.get("functions") or {}

    def index(key: tuple[str, str, str], definition: Any) -> dict[str, Any]:
        return {"table": key[0], "kind": key[1], "name": key[2], **definition}

    return {
        "tablesAdded": sorted(set(new_tables) - set(old_tables)),
        "tablesRemoved": sorted(set(old_tables) - set(new_tables)),
        "tablesChanged": sorted(
            t
            for t in set(old_tables) & set(new_tables)
            if old_tables[t].get("validator") != new_tables[t].get("validator")
        ),
        "indexesAdded": [index(k, new_idx[k]) for k in sorted(set(new_idx) - set(old_idx))],
        "indexesRemoved": [index(k, old_idx[k]) for k in sorted(set(old_idx) - set(new_idx))],
        "indexesChanged": [
            {**index(k, new_idx[k]), "before": old_idx[k]}
            for k in sorted(set(old_idx) & set(new_idx))
            if old_idx[k] != new_idx[k]
        ],
        "functionsAdded": [
            {"path": p, "kind": new_fns[p]["kind"], "visibility": new_fns[p]["visibility"]}
            for p in sorted(set(new_fns) - set(old_fns))
        ],
        "functionsRemoved": [
            {"path": p, "kind": old_fns[p]["kind"], "visibility": old_fns[p]["visibility"]}
            for p in sorted(set(old_fns) - set(new_fns))
        ],
        "functionsChanged": [
            {
                "path": p,
                "changed": [
                    k
                    for k in ("kind", "visibility", "args", "returns")
                    if old_fns[p].get(k) != new_fns[p].get(k)
                ],
            }
            for p in sorted(set(old_fns) & set(new_fns))
            if old_fns[p] != new_fns[p]
        ],
    }


def changed(changes: Mapping[str, list[Any]]) -> bool:
    """Whether a diff names any change."""
    return any(changes.values())


def _index_text(i: Mapping[str, Any]) -> str:
    fields = i.get("fields") or [i.get("searchField") or i.get("vectorField")]
    kind = "" if i["kind"] == "index" else f"{i['kind']} "
    return f"{kind}index {i['table']}.{i['name']} ({', '.join(map(str, fields))})"


def lines(changes: Mapping[str, list[Any]]) -> list[str]:
    """A diff as short lines for a terminal ("added function messages:send", ...)."""
    out = [f"added table {t}" for t in changes.get("tablesAdded", [])]
    out += [f"removed table {t}" for t in changes.get("tablesRemoved", [])]
    out += [f"changed the fields of table {t}" for t in changes.get("tablesChanged", [])]
    out += [f"added {_index_text(i)}" for i in changes.get("indexesAdded", [])]
    out += [f"removed {_index_text(i)}" for i in changes.get("indexesRemoved", [])]
    out += [f"changed {_index_text(i)}" for i in changes.get("indexesChanged", [])]
    out += [f"added {f['kind']} {f['path']}" for f in changes.get("functionsAdded", [])]
    out += [f"removed {f['kind']} {f['path']}" for f in changes.get("functionsRemoved", [])]
    out += [
        f"changed {' and '.join(f['changed'])} of {f['path']}"
        for f in changes.get("functionsChanged", [])
    ]
    return out or ["no changes to tables, indexes or function signatures"]


async def record(
    conn: asyncpg.Connection, after: Mapping[str, Any], source: str, *, always: bool = True
) -> dict[str, Any] | None:
    """Store a deploy of snapshot `after` (from `source`: "deploy" or "dev") with what it
    changed since the last record; with `always=False`, only when something changed.
    Returns the stored record (`id`, `deployedAt` in ms, `source`, `first`, `changes`)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", HISTORY_LOCK)
        last = await conn.fetchval("SELECT snapshot FROM _convect_deploys ORDER BY id DESC LIMIT 1")
        before = orjson.loads(last) if last is not None else None
        changes = diff(before, after)
        if not always and before is not None and not changed(changes):
            return None
        row = await conn.fetchrow(
            "INSERT INTO _convect_deploys (source, first, snapshot, changes) "
            "VALUES ($1, $2, $3::jsonb, $4::jsonb) RETURNING id, deployed_at",
            source,
            before is None,
            orjson.dumps(after).decode(),
            orjson.dumps(changes).decode(),
        )
        await conn.execute("DELETE FROM _convect_deploys WHERE id <= $1", row["id"] - KEEP)
    return {
        "id": row["id"],
        "deployedAt": row["deployed_at"].timestamp() * 1000,
        "source": source,
        "first": before is None,
        "changes": changes,
    }


async def record_at(
    database_url: str, after: Mapping[str, Any], source: str, *, always: bool = True
) -> dict[str, Any] | None:
    """`record` over a connection of its own to `database_url`."""
    conn = await asyncpg.connect(database_url)
    try:
        return await record(conn, after, source, always=always)
    finally:
        await conn.close()


async def recent(conn: asyncpg.Connection, limit: int = 5) -> list[dict[str, Any]]:
    """The last `limit` deploys, newest first (as `record` returns them); none on a
    database not migrated this far."""
    try:
        rows = await conn.fetch(
            "SELECT id, deployed_at, source, first, changes FROM _convect_deploys "
            "ORDER BY id DESC LIMIT $1",
            limit,
        )
    except asyncpg.UndefinedTableError:
        return []
    return [
        {
            "id": r["id"],
            "deployedAt": r["deployed_at"].timestamp() * 1000,
            "source": r["source"],
            "first": r["first"],
            "changes": orjson.loads(r["changes"]),
        }
        for r in rows
    ]
