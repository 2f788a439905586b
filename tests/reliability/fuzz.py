"""Seeded generators of hostile input: values, mutated requests, corrupted bytes.

Everything is drawn from a `random.Random`, so a failing case is reproduced by its seed
and index. Values are plain Python (serialised with the standard `json`, which also
writes NaN, integers beyond 64 bits and lone surrogates that stricter encoders refuse).
"""

from __future__ import annotations

import json
import random
from typing import Any

from tests.support.servers import ADMIN_KEY

INJECTIONS = [
    "'; DROP TABLE docs.core_things; --",
    '" OR 1=1 --',
    "core_things; SELECT pg_sleep(10)",
    'core_things"; DELETE FROM _convect_tables; --',
    "1) OR (1=1",
    "$where",
    '{"$gt": ""}',
    "../../../../etc/passwd",
    "..%2F..%2Fapi%2Fadmin",
    "%00",
    "\x00",
    "a\x00b",
    "\u202etxt.exe",
    "\ufeff",
    "${jndi:ldap://127.0.0.1:1/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "\\",
    "\\u0000",
    "\r\nX-Injected: 1",
    "pg_catalog.pg_authid",
    "_convect_secrets",
    "_storage",
    "_scheduled_functions",
    "docs.core_things",
    "NaN",
    "-0",
    "😀" * 3,
    "é" * 5,
    " ",
    "",
    "core_db:insert",
    "core_tx:record",
    "sched_funcs:bump",
]
DOLLAR_VALUES = [
    {"$integer": "garbage"},
    {"$integer": "AQAAAAAAAAA="},
    {"$bytes": "!!!"},
    {"$bytes": "AQ=="},
    {"$float": "xx"},
    {"$float": "AAAAAAAA+H8="},
    {"$set": {"balance": 1e9}},
    {"$bytes": "AQ==", "extra": 1},
    {"$gt": None},
]
HOSTILE_KEYS = ["$bad", "$integer", "_id", "_creationTime", "", "\x00", "a.b", "é", "k" * 2000,
                "'; DROP TABLE x; --", "__proto__", "constructor"]  # fmt: skip
NUMBERS = [0, -1, 2**53 + 1, -(2**63), 2**64, 10**40, 1e308, 5e-324, -0.0, 3.5, 1e-7,
           float("nan"), float("inf"), True, False]  # fmt: skip
AUTH_HEADERS = [
    None,
    "",
    "Bearer",
    "Bearer garbage",
    "Bearer " + "A" * 70_000,
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "Convex",
    "Convex wrong-key",
    "Convex " + ADMIN_KEY[:-1],
    "Convex " + ADMIN_KEY + "x",
    "Convex " + ADMIN_KEY.upper(),
    "Convex " + ADMIN_KEY + ":not-base64!",
    "Convex " + ADMIN_KEY + ":e30",  # {} as the identity: refused
    "Basic YWRtaW46YWRtaW4=",
    "Convex\t" + ADMIN_KEY[:5],
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "APPLICATION/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    None,
]


def deep(levels: int, leaf: Any = 1) -> Any:
    """`leaf` inside `levels` arrays or objects."""
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"d": value}
    return value


def hostile_scalar(rng: random.Random) -> Any:
    """One hostile leaf value."""
    pick = rng.random()
    if pick < 0.4:
        return rng.choice(INJECTIONS)
    if pick < 0.65:
        return rng.choice(NUMBERS)
    if pick < 0.75:
        return rng.choice(DOLLAR_VALUES)
    if pick < 0.8:
        return None
    if pick < 0.9:
        return "\ud800" + rng.choice(INJECTIONS)  # a lone surrogate: not valid Unicode
    return "x" * rng.choice([1_000, 100_000, 1_100_000])


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A hostile value: a leaf, a container, very deep or very wide."""
    pick = rng.random()
    if pick < 0.55 or depth > 2:
        return hostile_scalar(rng)
    if pick < 0.7:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if pick < 0.85:
        return {
            rng.choice([*HOSTILE_KEYS, "a", "table", "doc"]): hostile_value(rng, depth + 1)
            for _ in range(rng.randint(1, 3))
        }
    if pick < 0.93:
        return deep(rng.choice([63, 64, 65, 300]))
    if pick < 0.97:
        return {f"k{i}": i for i in range(rng.choice([1_000, 20_000]))}
    return list(range(rng.choice([10_000, 200_000])))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path in a JSON-like value (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(copy[head], tuple(rest), new)
    return copy


def _rename(value: Any, path: tuple[Any, ...], key: str) -> Any:
    """Rename the last key of `path` (when it names an object's field)."""
    if not path or not isinstance(path[-1], str):
        return value
    parent_path, old = path[:-1], path[-1]
    parent = value
    for p in parent_path:
        parent = parent[p]
    renamed = {(key if k == old else k): v for k, v in parent.items()}
    return _replace(value, parent_path, renamed)


def mutate(rng: random.Random, value: Any) -> Any:
    """`value` with one node replaced by a hostile value, or one field renamed."""
    path = rng.choice(_paths(value))
    if rng.random() < 0.2:
        return _rename(value, path, rng.choice(HOSTILE_KEYS))
    return _replace(value, path, hostile_value(rng))


def dumps(rng: random.Random, value: Any) -> bytes:
    """Serialise as JSON, sometimes with raw (unescaped) lone surrogates: invalid UTF-8."""
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    return text.encode("utf-8", errors="surrogatepass")


def deep_text(rng: random.Random, path: str = "core_tx:echo") -> bytes:
    """A call whose argument nests thousands of levels (too deep to build as a value)."""
    levels = rng.choice([1_000, 5_000, 100_000])
    return (f'{{"path": "{path}", "args": {{"value": '.encode() + b"[" * levels + b"1"
            + b"]" * levels + b"}}")  # fmt: skip


def corrupt(rng: random.Random, data: bytes) -> bytes:
    """A byte-level corruption: invalid UTF-8, truncation, a flipped or duplicated region."""
    pos = rng.randint(0, len(data))
    pick = rng.random()
    if pick < 0.3:
        junk = rng.choice(
            [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xc3\x28", b"\x80"]
        )
        return data[:pos] + junk + data[pos:]
    if pick < 0.5:
        return data[:pos]
    if pick < 0.7 and data:
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if pick < 0.85:
        return b"\xef\xbb\xbf" + data  # a byte order mark
    return data[:pos] + data[pos : pos + 50] * 3 + data[pos:]
