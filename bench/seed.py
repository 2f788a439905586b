"""Create, migrate and fill the benchmark database: through Convect's API as a user's
deployment is filled (`seed_through_api`, the default), or with COPY and VACUUM in the
engine's storage layout (`seed`, the "same SQL" mode)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import orjson

from app.db import migrate
from app.db.deploy import push_schema
from app.db.ids import new_id
from app.engine.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 100_000
AUTHORS = 1_000
ACCOUNTS = 100
START_BALANCE = 1_000_000.0


def author_name(i: int) -> str:
    """The name of author number `i` (the wrk scripts build the same names)."""
    return f"author-{i:04d}"


@dataclass
class Seeded:
    """What the load scripts need: the ids of the seeded documents."""

    message_ids: list[str]
    account_ids: list[str]


def database_url(base_url: str, name: str) -> str:
    """The URL of database `name` on the server of `base_url` (keeps the query string)."""
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(base_url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def create_database(base_url: str, name: str) -> str:
    """Drop and create database `name`, migrate it, push the demo schema; return its URL."""
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = database_url(base_url, name)
    migrate.upgrade(url)
    registry = load_registry(str(ROOT / "functions"))
    await push_schema(url, registry.schema)
    return url


def _message_rows(n: int, authors: int, rng: random.Random) -> tuple[list[tuple], list[str]]:
    now = time.time() * 1000.0 - n  # one document per millisecond, ending now
    rows = []
    ids = []
    for i in range(n):
        doc_id = new_id("messages")
        created = now + i
        author = author_name(rng.randrange(authors))
        doc = {
            "author": author,
            "body": f"message {i} from {author}: the quick brown fox jumps over the lazy dog",
            "_id": doc_id,
            "_creationTime": created,
        }
        rows.append((doc_id, created, orjson.dumps(doc).decode()))
        ids.append(doc_id)
    return rows, ids


def _account_rows(n: int) -> tuple[list[tuple], list[str]]:
    now = time.time() * 1000.0
    rows = []
    ids = []
    for i in range(n):
        doc_id = new_id("accounts")
        doc = {
            "owner": f"owner-{i:03d}",
            "balance": START_BALANCE,
            "_id": doc_id,
            "_creationTime": now + i,
        }
        rows.append((doc_id, now + i, orjson.dumps(doc).decode()))
        ids.append(doc_id)
    return rows, ids


async def seed(
    url: str, *, messages: int = MESSAGES, authors: int = AUTHORS, accounts: int = ACCOUNTS
) -> Seeded:
    """COPY the documents in, then VACUUM ANALYZE and CHECKPOINT so runs start settled."""
    rng = random.Random(2)
    message_rows, message_ids = _message_rows(messages, authors, rng)
    account_rows, account_ids = _account_rows(accounts)
    conn = await asyncpg.connect(url)
    try:
        cols = ["id", "creation_time", "doc"]
        await conn.copy_records_to_table(
            "messages", schema_name="docs", columns=cols, records=message_rows
        )
        await conn.copy_records_to_table(
            "accounts", schema_name="docs", columns=cols, records=account_rows
        )
        await conn.execute('VACUUM ANALYZE docs."messages"')
        await conn.execute('VACUUM ANALYZE docs."accounts"')
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return Seeded(message_ids, account_ids)


API_PARALLEL = 32  # calls in flight while seeding through the API


async def seed_through_api(
    api_url: str, *, messages: int = MESSAGES, authors: int = AUTHORS, accounts: int = ACCOUNTS
) -> Seeded:
    """Fill a running Convect through its own mutations (`messages:create`,
    `accounts:open`), several in flight, and nothing else: no COPY, no VACUUM."""
    rng = random.Random(2)
    bodies = []
    for i in range(messages):
        author = author_name(rng.randrange(authors))
        body = f"message {i} from {author}: the quick brown fox jumps over the lazy dog"
        bodies.append({"path": "messages:create", "args": {"author": author, "body": body}})
    bodies += [
        {"path": "accounts:open", "args": {"owner": f"owner-{i:03d}", "balance": START_BALANCE}}
        for i in range(accounts)
    ]
    ids: list[str] = [""] * len(bodies)
    queue = iter(enumerate(bodies))
    limits = httpx.Limits(max_connections=API_PARALLEL)
    async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for i, body in queue:
                for attempt in range(5):
                    reply = (await client.post("/api/mutation", json=body)).json()
                    if reply.get("status") == "success":
                        ids[i] = reply["value"]
                        break
                    await asyncio.sleep(0.1 * (attempt + 1))
                else:
                    raise RuntimeError(f"seeding {body['path']} failed: {reply}")

        await asyncio.gather(*(worker() for _ in range(API_PARALLEL)))
    return Seeded(ids[:messages], ids[messages:])
