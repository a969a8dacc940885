"""Logging in to an OpenID provider for the proxy, RFC-018 POC 5.

    provider = await device_login("https://issuer.example")   # once; cached
    provider = OidcTokenProvider()                             # later runs
    async with PrismClient(address, token=provider) as client: ...

The token cache (`~/.prism/token`) is shared with `prism-console login`.
"""

from .cache import CachedToken, default_path, refresh_due
from .errors import AuthError, LoginFailed
from .oidc import DeviceAuthorization
from .provider import DEFAULT_CLIENT_ID, DEFAULT_SCOPE, OidcTokenProvider, device_login

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_SCOPE",
    "AuthError",
    "CachedToken",
    "DeviceAuthorization",
    "LoginFailed",
    "OidcTokenProvider",
    "default_path",
    "device_login",
    "refresh_due",
]
