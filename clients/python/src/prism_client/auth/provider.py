"""`OidcTokenProvider`: the login cache's token, refreshed with the
refresh-token grant before it expires, for `PrismClient(token=...)`; and
`device_login`, which fills the cache.

The client asks the provider before every call, so a refresh is invisible
to the app: the call that finds the token due waits for the new one. A new
login written to the cache by another process (`prism-console login`, or
another app) is picked up on the next call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from pathlib import Path
from typing import Callable

from . import cache
from .cache import CachedToken
from .errors import AuthError
from .oidc import (
    DeviceAuthorization,
    Endpoints,
    Tokens,
    discover,
    refresh,
    start_device_login,
    wait_for_approval,
)

log = logging.getLogger(__name__)

#: The public client the issuer knows Prism's command-line tools by.
DEFAULT_CLIENT_ID = "prism-cli"
#: `offline_access` brings the refresh token.
DEFAULT_SCOPE = "openid email offline_access"


def cached_token(
    issuer: str, client_id: str, tokens: Tokens, now: int, previous: CachedToken | None
) -> CachedToken:
    """What to cache for `tokens` received at `now`; a refresh answer
    without a new refresh token keeps `previous`'s."""
    return CachedToken(
        issuer=issuer,
        client_id=client_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token
        or (previous.refresh_token if previous is not None else None),
        issued_at=now,
        expires_at=now + tokens.expires_in if tokens.expires_in is not None else None,
    )


class OidcTokenProvider:
    """The bearer token of the login cached at `path` (default
    `~/.prism/token`), kept fresh. Pass it as `PrismClient(token=provider)`.

    Raises `AuthError` when there is no cache; a call fails with `AuthError`
    when the token has expired and cannot be refreshed (log in again).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else cache.default_path()
        token = cache.read(self.path)
        if token is None:
            raise AuthError(
                f"no login cached in {self.path}: log in first "
                "(prism_client.auth.device_login, or prism-console login)"
            )
        self._token = token
        self._stamp = cache.stamp(self.path)
        self._endpoints: Endpoints | None = None
        self._lock = asyncio.Lock()
        #: How many times this provider refreshed the token.
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"OidcTokenProvider(path={str(self.path)!r}, issuer={self._token.issuer!r})"

    @property
    def cached(self) -> CachedToken:
        """The cache entry the provider holds now."""
        return self._token

    async def __call__(self) -> str:
        return await self.token()

    async def token(self) -> str:
        """The access token to send now, refreshed first when it is due."""
        async with self._lock:
            self._take_new_login()
            now = cache.unix_now()
            current = self._token
            if not cache.refresh_due(current.issued_at, current.expires_at, now):
                return current.access_token
            try:
                return await self._refresh(now)
            except AuthError as error:
                if not current.expired(now):
                    log.warning("refreshing the cached token failed (%s); using it until it expires", error)
                    return current.access_token
                raise AuthError(
                    f"the cached token has expired and could not be refreshed ({error}): "
                    "log in again"
                ) from None

    def _take_new_login(self) -> None:
        """A login in another process replaced the file: take its token."""
        on_disk = cache.stamp(self.path)
        if on_disk is None or on_disk == self._stamp:
            return
        token = cache.read(self.path)
        if token is not None:
            if (token.issuer, token.client_id) != (self._token.issuer, self._token.client_id):
                self._endpoints = None
            self._token = token
        self._stamp = on_disk

    async def _refresh(self, now: int) -> str:
        current = self._token
        if current.refresh_token is None:
            raise AuthError("the login gave no refresh token")
        if self._endpoints is None:
            self._endpoints = await discover(current.issuer)
        tokens = await refresh(self._endpoints, current.client_id, current.refresh_token)
        fresh = cached_token(current.issuer, current.client_id, tokens, now, current)
        try:
            cache.write(self.path, fresh)
        except AuthError as error:
            # A cache that cannot be written costs the next process a
            # login, not this one its token.
            log.warning("cannot write the refreshed token to the cache: %s", error)
        self._stamp = cache.stamp(self.path)
        self._token = fresh
        self.refreshes += 1
        return fresh.access_token


def _show(login: DeviceAuthorization) -> None:
    print(f"To log in, open {login.verification_uri}")
    print(f"and enter the code {login.user_code}")
    if login.verification_uri_complete:
        print(f"(or open {login.verification_uri_complete})")
    print("Waiting for the approval…", flush=True)


async def device_login(
    issuer: str,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    scope: str = DEFAULT_SCOPE,
    path: Path | str | None = None,
    show: Callable[[DeviceAuthorization], object] = _show,
) -> OidcTokenProvider:
    """Logs in with the device-code flow (RFC 8628) at `issuer` (its
    endpoints read from its discovery document), caches the tokens at
    `path` (default `~/.prism/token`, where `prism-console` finds them too)
    and returns the provider over that cache.

    `show` gets the code and address to present to the user (default: print
    them); it may be async. Raises `LoginFailed` when the login is denied,
    its code expires or it is not approved in time."""
    target = Path(path) if path is not None else cache.default_path()
    endpoints = await discover(issuer)
    login = await start_device_login(endpoints, client_id, scope)
    shown = show(login)
    if inspect.isawaitable(shown):
        await shown
    tokens = await wait_for_approval(endpoints, client_id, login)
    cache.write(target, cached_token(endpoints.issuer, client_id, tokens, cache.unix_now(), None))
    provider = OidcTokenProvider(target)
    provider._endpoints = endpoints
    return provider
