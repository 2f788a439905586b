"""Upload tokens: signed, expiring, and refused when tampered with."""

from __future__ import annotations

import time

import pytest

from app.storage import InvalidUploadToken, tokens

KEY = tokens.derive_key("secret-one")


def test_a_fresh_token_verifies_and_expires_in_an_hour() -> None:
    now = time.time() * 1000
    expires = tokens.verify(KEY, tokens.sign(KEY))
    assert (
        now + tokens.UPLOAD_TOKEN_TTL_MS - 5_000
        < expires
        <= now + tokens.UPLOAD_TOKEN_TTL_MS + 5_000
    )


def test_two_tokens_differ() -> None:
    assert tokens.sign(KEY) != tokens.sign(KEY)


def test_an_expired_token_is_refused() -> None:
    token = tokens.sign(KEY, expires_ms=1000.0)
    with pytest.raises(InvalidUploadToken, match="expired"):
        tokens.verify(KEY, token)
    assert tokens.verify(KEY, token, now_ms=999.0) == 1000.0


def test_a_token_of_another_key_is_refused() -> None:
    with pytest.raises(InvalidUploadToken, match="Couldn't decode the StoreFileAuthorization"):
        tokens.verify(tokens.derive_key("secret-two"), tokens.sign(KEY))


def test_every_flipped_character_is_refused() -> None:
    token = tokens.sign(KEY)
    for i in range(len(token) - 1):  # the last character carries padding bits only in part
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(InvalidUploadToken):
            tokens.verify(KEY, flipped)


@pytest.mark.parametrize("bad", [None, "", 42, "a", "!!!!", "A" * 129, "A" * 66, b"bytes"])
def test_malformed_tokens_are_refused(bad: object) -> None:
    with pytest.raises(InvalidUploadToken):
        tokens.verify(KEY, bad)


def test_an_empty_secret_is_a_definition_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        tokens.derive_key("")
