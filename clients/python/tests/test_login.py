"""The device-code login (RFC 8628) against the real OpenID provider, with
access tokens that live six seconds: the token is cached in ~/.prism/token
(folder 0700, file 0600), calls through the proxy succeed with it, it is
refreshed before it expires without the app noticing, and a token cached
by `prism-console login` (the Rust side) is read and used as is."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import pytest

from oidc import CLI_CLIENT, DEV_ACCOUNT, READER, OidcProvider, auth_config, start_oidc
from prism_client import PrismClient, Unauthenticated
from prism_client.auth import (
    CachedToken,
    DeviceAuthorization,
    LoginFailed,
    OidcTokenProvider,
    device_login,
)
from prism_client.auth import cache
from proxy import Proxy, proxy_binary, start_proxy

TOKEN_TTL = 6
WAIT = 60.0
#: The cache's fields in the order the Rust side writes them.
FIELDS = ["issuer", "client_id", "access_token", "refresh_token", "issued_at", "expires_at"]


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    provider = start_oidc(access_token_ttl=TOKEN_TTL)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def auth_proxy(oidc: OidcProvider) -> Iterator[Proxy]:
    proxy = start_proxy(auth_config(oidc))
    try:
        # A token that may read `orders`: a bad one is refused before the
        # namespace is reached, which would end the wait at once.
        token = oidc.client_credentials(READER)
        proxy.wait_serving("orders", metadata=(("authorization", f"Bearer {token}"),))
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own, so ~/.prism/token is the test's."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def approver(
    oidc: OidcProvider, account: str = DEV_ACCOUNT
) -> Callable[[DeviceAuthorization], Awaitable[None]]:
    """A `show` that approves the login as `account`, as a user at the
    verification page would."""

    async def show(login: DeviceAuthorization) -> None:
        assert login.verification_uri.startswith(oidc.issuer)
        await asyncio.to_thread(oidc.approve, login.user_code, account)

    return show


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_device_login_caches_the_token_privately_and_calls_succeed(
    oidc: OidcProvider, auth_proxy: Proxy, home: Path
) -> None:
    provider = await device_login(oidc.issuer, show=approver(oidc))
    path = home / ".prism" / "token"
    assert provider.path == path
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["token"], "no temporary file left"
    saved = json.loads(path.read_text())
    assert list(saved) == FIELDS
    assert saved["issuer"] == oidc.issuer and saved["client_id"] == CLI_CLIENT
    assert saved["refresh_token"], "offline_access brings a refresh token"
    # expires_in counts from the answer, which may come a second later.
    assert TOKEN_TTL - 2 <= saved["expires_at"] - saved["issued_at"] <= TOKEN_TTL

    async with PrismClient(auth_proxy.address, namespace="orders", token=provider) as client:
        await client.keyvalue.set("login", b"dev")
        assert await client.keyvalue.get("login") == b"dev"
    # A later run finds the login in the cache.
    again = OidcTokenProvider()
    sent = await again()
    on_disk = cache.read(path)
    assert on_disk is not None and sent == on_disk.access_token


async def test_a_token_near_expiry_is_refreshed_without_the_app_noticing(
    oidc: OidcProvider, auth_proxy: Proxy, home: Path
) -> None:
    loop = asyncio.get_running_loop()
    provider = await device_login(oidc.issuer, show=approver(oidc))
    first = provider.cached
    assert first.expires_at is not None
    async with PrismClient(auth_proxy.address, namespace="orders", token=provider) as client:
        # Call on, past the first token's expiry: every call must succeed.
        deadline = loop.time() + WAIT
        calls = 0
        while cache.unix_now() <= first.expires_at + 1:
            assert loop.time() < deadline, "the first token never expired"
            await client.keyvalue.set("refresh", str(calls).encode())
            assert await client.keyvalue.get("refresh") == str(calls).encode()
            calls += 1
            await asyncio.sleep(0.25)
    assert provider.refreshes >= 1
    on_disk = cache.read(home / ".prism" / "token")
    assert on_disk is not None
    assert on_disk.access_token != first.access_token
    assert on_disk.issued_at > first.issued_at
    assert on_disk.refresh_token
    assert mode(home / ".prism" / "token") == 0o600

    # The refresh was needed: the proxy refuses the first token by now.
    async with PrismClient(auth_proxy.address, namespace="orders", token=first.access_token) as stale:
        with pytest.raises(Unauthenticated):
            await stale.keyvalue.get("refresh")


async def test_a_token_cached_by_prism_console_login_is_used(
    oidc: OidcProvider, auth_proxy: Proxy, home: Path
) -> None:
    console = proxy_binary().parent / "prism-console"
    login = await asyncio.create_subprocess_exec(
        str(console), "login", "--issuer", oidc.issuer,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert login.stdout is not None
        output = ""
        while (code := re.search(r"enter the code (\S+)", output)) is None:
            line = await asyncio.wait_for(login.stdout.readline(), WAIT)
            assert line, f"prism-console login ended without a code:\n{output}"
            output += line.decode()
        await asyncio.to_thread(oidc.approve, code.group(1))
        rest, _ = await asyncio.wait_for(login.communicate(), WAIT)
        assert login.returncode == 0, output + rest.decode()
    finally:
        if login.returncode is None:
            login.kill()
            await login.wait()

    path = home / ".prism" / "token"
    text = path.read_text()
    token = CachedToken.from_json(text)
    # Both sides write the same bytes for the same login.
    assert token.to_json() == text
    assert token.client_id == CLI_CLIENT and token.refresh_token

    provider = OidcTokenProvider()
    async with PrismClient(auth_proxy.address, namespace="orders", token=provider) as client:
        await client.keyvalue.set("from-console", b"ok")
        assert await client.keyvalue.get("from-console") == b"ok"


async def test_a_denied_login_fails(oidc: OidcProvider, home: Path) -> None:
    async def deny(login: DeviceAuthorization) -> None:
        def post() -> None:
            import urllib.parse
            import urllib.request

            form = urllib.parse.urlencode({"user_code": login.user_code, "decision": "deny"})
            urllib.request.urlopen(f"{oidc.issuer}/test/device", form.encode(), timeout=10).close()

        await asyncio.to_thread(post)

    with pytest.raises(LoginFailed) as caught:
        await device_login(oidc.issuer, show=deny)
    assert caught.value.reason == "access_denied"
    assert not (home / ".prism" / "token").exists()
