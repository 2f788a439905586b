"""Ids: the C-speed encode/decode agree with the base64-module reference, bit for bit."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from app.db import ids

_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_TO_STD = str.maketrans(_CROCKFORD, _STD)
_TO_CROCKFORD = str.maketrans(_STD, _CROCKFORD)


def reference_checksum(body: bytes) -> bytes:
    """Fletcher-16 as a plain loop."""
    a = b = 0
    for byte in body:
        a = (a + byte) % 255
        b = (b + a) % 255
    return bytes((a, b))


def reference_encode(raw: bytes) -> str:
    """22 bytes as the id string, through base64.b32encode."""
    return base64.b32encode(raw).decode().rstrip("=").translate(_TO_CROCKFORD)


def reference_id_number(value: object) -> int | None:
    """The table number of an id, through base64.b32decode."""
    if not isinstance(value, str) or not ids._ID_RE.match(value):
        return None
    try:
        raw = base64.b32decode(value.translate(_TO_STD) + "====")
    except (ValueError, TypeError):
        return None
    if len(raw) != 22 or reference_checksum(raw[:20]) != raw[20:]:
        return None
    return int.from_bytes(raw[16:20], "big")


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_checksum_matches_the_loop(body: bytes) -> None:
    assert ids._checksum(body) == reference_checksum(body)


@settings(max_examples=500)
@given(st.binary(min_size=16, max_size=16), st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True))
def test_new_id_is_the_base32_of_its_bytes(random_part: bytes, table: str) -> None:
    body = random_part + ids.table_number(table).to_bytes(4, "big")
    expected = reference_encode(body + reference_checksum(body))
    original = ids.os.urandom
    ids.os.urandom = lambda n: random_part  # type: ignore[assignment]
    try:
        made = ids.new_id(table)
    finally:
        ids.os.urandom = original
    assert made == expected
    assert ids.id_number(made) == ids.table_number(table)


def _variants(value: str) -> list[str]:
    out = [value, value + "\n", value.upper(), value[:-1], " " + value[1:], value + "0"]
    out += [value[:-1] + c for c in _CROCKFORD]
    out += [value[:i] + c + value[i + 1 :] for i in (0, 7, 19, 34) for c in "0az9"]
    return out


@settings(max_examples=300)
@given(st.binary(min_size=16, max_size=16), st.sampled_from(["messages", "accounts", "x"]))
def test_id_number_agrees_on_ids_and_their_corruptions(random_part: bytes, table: str) -> None:
    body = random_part + ids.table_number(table).to_bytes(4, "big")
    good = reference_encode(body + reference_checksum(body))
    for value in _variants(good):
        assert ids.id_number(value) == reference_id_number(value), value


@settings(max_examples=500)
@given(
    st.one_of(st.text(alphabet=_CROCKFORD + "ilouIO=\n ", max_size=40), st.none(), st.integers())
)
def test_id_number_agrees_on_arbitrary_input(value: object) -> None:
    assert ids.id_number(value) == reference_id_number(value)
