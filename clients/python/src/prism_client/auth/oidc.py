"""The OAuth 2.0 device authorization grant (RFC 8628) and the refresh-token
grant against an OpenID provider, found through its discovery document.

HTTP goes through the standard library in a worker thread, so logging in
needs no dependency. What to do with each answer of the token endpoint is a
pure function (`next_step`); `poll_until` only sleeps and asks.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .errors import AuthError, LoginFailed

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: RFC 8628 §3.2: the poll interval when the issuer names none.
DEFAULT_INTERVAL = 5.0
#: RFC 8628 §3.5: how much longer to wait after each `slow_down`.
SLOW_DOWN_STEP = 5.0
HTTP_TIMEOUT = 10.0


class OAuthRefusal(AuthError):
    """The endpoint answered with an OAuth error (`error` is its code)."""

    def __init__(self, url: str, status: int, error: str | None) -> None:
        self.url = url
        self.status = status
        self.error = error
        super().__init__(f"{url} answered {status}" + (f" ({error})" if error else ""))


def _request(url: str, form: dict[str, str] | None) -> Any:
    """GETs `url` (or POSTs `form` to it) and decodes the JSON answer."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        code = None
        try:
            answer = json.loads(error.read())
            code = answer.get("error") if isinstance(answer, dict) else None
        except (ValueError, OSError):
            pass
        raise OAuthRefusal(url, error.code, code if isinstance(code, str) else None) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise AuthError(f"cannot reach {url}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise AuthError(f"{url} did not answer JSON") from None


async def _http(url: str, form: dict[str, str] | None = None) -> Any:
    return await asyncio.to_thread(_request, url, form)


@dataclass(frozen=True)
class Endpoints:
    """Where an issuer takes device logins and hands out tokens."""

    issuer: str
    token: str
    device_authorization: str | None


async def discover(issuer: str) -> Endpoints:
    """Reads `issuer`'s `/.well-known/openid-configuration`; `AuthError`
    when it cannot be had or names another issuer."""
    issuer = issuer.rstrip("/")
    url = f"{issuer}/.well-known/openid-configuration"
    doc = await _http(url)
    if not isinstance(doc, dict) or not isinstance(doc.get("token_endpoint"), str):
        raise AuthError(f"{url} is not a discovery document (no token_endpoint)")
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        raise AuthError(f"{url} names the issuer {doc.get('issuer')!r}, not {issuer!r}")
    device = doc.get("device_authorization_endpoint")
    return Endpoints(
        issuer=str(doc["issuer"]),
        token=doc["token_endpoint"],
        device_authorization=device if isinstance(device, str) else None,
    )


@dataclass(frozen=True)
class DeviceAuthorization:
    """A started login: show `user_code` and `verification_uri` to the user.
    `repr` leaves out the device code, which is a secret."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    #: Seconds the codes stay valid.
    expires_in: float
    #: Seconds between polls.
    interval: float
    device_code: str

    def __repr__(self) -> str:
        return (
            f"DeviceAuthorization(user_code={self.user_code!r}, "
            f"verification_uri={self.verification_uri!r})"
        )


@dataclass(frozen=True)
class Tokens:
    """What a token endpoint handed out."""

    access_token: str
    refresh_token: str | None
    #: Seconds.
    expires_in: int | None

    def __repr__(self) -> str:
        return f"Tokens(expires_in={self.expires_in})"


def parse_tokens(url: str, answer: Any) -> Tokens:
    """The token response's fields, checked one by one (no error quotes a value)."""
    if not isinstance(answer, dict):
        raise AuthError(f"{url} did not answer a token response")
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise AuthError(f"{url} answered no access_token")
    kind = answer.get("token_type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() != "bearer"):
        raise AuthError(f"{url} answered a token_type that is not Bearer")
    refresh = answer.get("refresh_token")
    expires = answer.get("expires_in")
    return Tokens(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in=int(expires) if isinstance(expires, (int, float)) else None,
    )


async def start_device_login(endpoints: Endpoints, client_id: str, scope: str) -> DeviceAuthorization:
    """Starts a device login asking for `scope` (`offline_access` brings a
    refresh token)."""
    url = endpoints.device_authorization
    if url is None:
        raise LoginFailed("no_device_endpoint", f"{endpoints.issuer} offers no device login")
    answer = await _http(url, {"client_id": client_id, "scope": scope})
    try:
        interval = answer.get("interval")
        return DeviceAuthorization(
            user_code=str(answer["user_code"]),
            verification_uri=str(answer["verification_uri"]),
            verification_uri_complete=answer.get("verification_uri_complete"),
            expires_in=float(answer["expires_in"]),
            interval=float(interval) if interval else DEFAULT_INTERVAL,
            device_code=str(answer["device_code"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AuthError(f"{url} did not answer a device authorization") from None


#: One poll's answer: tokens, or the OAuth error code.
PollAnswer = Tokens | str


def next_step(interval: float, remaining: float, answer: PollAnswer) -> Tokens | float:
    """What to do after `answer` with `remaining` seconds left to wait: the
    tokens (done), the seconds to wait before asking again, or `LoginFailed`."""
    if isinstance(answer, Tokens):
        return answer
    if answer == "slow_down":
        interval += SLOW_DOWN_STEP
    elif answer == "access_denied":
        raise LoginFailed(answer, "the login was denied")
    elif answer == "expired_token":
        raise LoginFailed(answer, "the login's code expired before it was approved: try again")
    elif answer != "authorization_pending":
        raise LoginFailed(answer, f"the issuer refused the login ({answer})")
    if interval > remaining:
        raise LoginFailed("timed_out", "the login was not approved in time: try again")
    return interval


async def poll_until(
    interval: float,
    timeout: float,
    ask: Callable[[], Awaitable[PollAnswer]],
) -> Tokens:
    """Asks `ask` every interval (waiting one interval first, as RFC 8628
    wants) until it yields tokens, a final refusal, or `timeout` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    wait = interval
    while True:
        await asyncio.sleep(wait)
        step = next_step(wait, deadline - loop.time(), await ask())
        if isinstance(step, Tokens):
            return step
        wait = step


async def wait_for_approval(
    endpoints: Endpoints, client_id: str, login: DeviceAuthorization
) -> Tokens:
    """Polls the token endpoint until the user approves the login (or
    denies it, or its code expires)."""
    form = {"grant_type": DEVICE_CODE_GRANT, "client_id": client_id, "device_code": login.device_code}

    async def ask() -> PollAnswer:
        try:
            return parse_tokens(endpoints.token, await _http(endpoints.token, form))
        except OAuthRefusal as refusal:
            if refusal.error is None:
                raise
            return refusal.error

    return await poll_until(login.interval, login.expires_in, ask)


async def refresh(endpoints: Endpoints, client_id: str, refresh_token: str) -> Tokens:
    """New tokens for a refresh token. `OAuthRefusal` with `invalid_grant`
    when it is no longer valid: the user has to log in again."""
    form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    return parse_tokens(endpoints.token, await _http(endpoints.token, form))
