"""The token cache and the login's decisions, without servers: the file
format the Rust side writes, its modes, when a refresh is due (the same
rule as the Rust side), what each device-poll answer leads to, and a
provider whose token expired with nothing to refresh it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from prism_client.auth import AuthError, CachedToken, LoginFailed, OidcTokenProvider, refresh_due
from prism_client.auth import cache
from prism_client.auth.oidc import SLOW_DOWN_STEP, Tokens, next_step

# What `serde_json::to_vec_pretty` makes of a `prism_auth::token_cache::CachedToken`.
RUST_CACHE = """{
  "issuer": "http://127.0.0.1:5556/dex",
  "client_id": "prism-cli",
  "access_token": "eyJ.access.é",
  "refresh_token": null,
  "issued_at": 1700000000,
  "expires_at": 1700000600
}"""


def test_the_rust_format_is_read_and_written_back_byte_for_byte() -> None:
    token = CachedToken.from_json(RUST_CACHE)
    assert token.issuer == "http://127.0.0.1:5556/dex"
    assert token.access_token == "eyJ.access.é"
    assert token.refresh_token is None
    assert (token.issued_at, token.expires_at) == (1700000000, 1700000600)
    assert token.to_json() == RUST_CACHE
    # Fields the Rust side may leave out default as it does.
    short = CachedToken.from_json(
        '{"issuer": "i", "client_id": "c", "access_token": "a", "issued_at": 1}'
    )
    assert short.refresh_token is None and short.expires_at is None


def test_a_file_that_is_not_a_cache_is_refused_without_quoting_it() -> None:
    for text in ("secret-token-text", '{"issuer": "i"}', '{"issuer": "i", "client_id": "c", '
                 '"access_token": 5, "issued_at": 1}'):
        with pytest.raises(AuthError) as caught:
            CachedToken.from_json(text, source="/x/token")
        assert "log in again" in str(caught.value)
        assert "secret-token-text" not in str(caught.value)
    assert "eyJ" not in repr(CachedToken.from_json(RUST_CACHE))


def test_the_cache_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".prism" / "token"
    assert cache.read(path) is None
    first = CachedToken.from_json(RUST_CACHE)
    cache.write(path, first)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = CachedToken("i", "c", "second", "r", 10, 20)
    cache.write(path, second)
    assert cache.read(path) == second
    assert [p.name for p in path.parent.iterdir()] == ["token"]


def test_refresh_is_due_near_the_end_of_a_tokens_life() -> None:
    # The Rust side's cases (auth/src/token_cache/tests.rs), same answers.
    assert not refresh_due(1000, 1600, 1539)
    assert refresh_due(1000, 1600, 1540)
    assert not refresh_due(0, 3600, 3239)
    assert refresh_due(0, 3600, 3240)
    assert not refresh_due(0, 20, 9)
    assert refresh_due(0, 20, 10)
    assert refresh_due(0, 20, 500)
    assert not refresh_due(0, None, 2**63)


def test_each_poll_answer_leads_to_the_next_step() -> None:
    tokens = Tokens("a", "r", 60)
    assert next_step(5.0, 100.0, tokens) is tokens
    assert next_step(5.0, 100.0, "authorization_pending") == 5.0
    assert next_step(5.0, 100.0, "slow_down") == 5.0 + SLOW_DOWN_STEP
    for code in ("access_denied", "expired_token", "invalid_client"):
        with pytest.raises(LoginFailed) as caught:
            next_step(5.0, 100.0, code)
        assert caught.value.reason == code
    with pytest.raises(LoginFailed) as late:
        next_step(5.0, 4.0, "authorization_pending")
    assert late.value.reason == "timed_out"


async def test_an_expired_token_without_a_refresh_token_asks_for_a_login(tmp_path: Path) -> None:
    path = tmp_path / "token"
    now = cache.unix_now()
    cache.write(path, CachedToken("http://127.0.0.1:9/x", "c", "old", None, now - 100, now - 1))
    provider = OidcTokenProvider(path)
    with pytest.raises(AuthError, match="log in again"):
        await provider()
    # A valid token with no refresh token is used until it expires.
    cache.write(path, CachedToken("http://127.0.0.1:9/x", "c", "fresh", None, now - 100, now + 5))
    assert await provider() == "fresh"
    with pytest.raises(AuthError, match="no login cached"):
        OidcTokenProvider(tmp_path / "missing")
