"""The errors of logging in and of keeping a token fresh. Their messages
never quote a token."""

from __future__ import annotations


class AuthError(Exception):
    """A login, a refresh or the token cache failed; the message says what
    to do (often: log in again)."""


class LoginFailed(AuthError):
    """The device login did not end with a token: `reason` is the OAuth
    error code (`access_denied`, `expired_token`, …) or `timed_out`."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
