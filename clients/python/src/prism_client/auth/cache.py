"""The login's token cache, `~/.prism/token`, shared with `prism-console login`.

The file is the JSON the Rust side (`prism_auth::token_cache`) writes, field
for field and byte for byte: issuer, client id, access and refresh token,
and when it was issued and expires (Unix seconds), pretty-printed with two
spaces. A token saved by either side is used by the other.

It lives in a folder of mode 0700 and is written as a temporary file of mode
0600 renamed over the old one: never half-written, never readable by anyone
else, not even for a moment.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuthError


def default_path() -> Path:
    """`$HOME/.prism/token`."""
    home = os.environ.get("HOME")
    if not home:
        raise AuthError("HOME is not set: cannot find the token cache (~/.prism/token)")
    return Path(home) / ".prism" / "token"


def unix_now() -> int:
    """Now in whole Unix seconds, as the cache counts."""
    return int(time.time())


def refresh_due(issued_at: int, expires_at: int | None, now: int) -> bool:
    """Whether a token issued at `issued_at` and expiring at `expires_at`
    should be refreshed at `now` (Unix seconds): when less than a tenth of
    its life is left, or less than 60 s, but never before half of its life
    has passed, so short-lived tokens are not refreshed on every call. The
    same rule as the Rust side's, so both refresh at the same moment."""
    if expires_at is None:
        return False
    lifetime = max(expires_at - issued_at, 0)
    margin = max(lifetime // 10, min(60, lifetime // 2))
    return now + margin >= expires_at


@dataclass(frozen=True)
class CachedToken:
    """What a login leaves behind. `repr` never shows the tokens."""

    issuer: str
    client_id: str
    access_token: str
    refresh_token: str | None
    #: Unix seconds.
    issued_at: int
    #: Unix seconds; None when the issuer did not say.
    expires_at: int | None

    def __repr__(self) -> str:
        return (
            f"CachedToken(issuer={self.issuer!r}, client_id={self.client_id!r}, "
            f"issued_at={self.issued_at}, expires_at={self.expires_at}, "
            f"refresh_token={'yes' if self.refresh_token else 'no'})"
        )

    def expired(self, now: int) -> bool:
        """True once `now` is at or past its expiry."""
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        """The cache file's text, exactly as the Rust side writes it."""
        return json.dumps(
            {
                "issuer": self.issuer,
                "client_id": self.client_id,
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "issued_at": self.issued_at,
                "expires_at": self.expires_at,
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str, *, source: str = "the token cache") -> CachedToken:
        """Parses a cache file; `AuthError` (never quoting its content) when
        it is not one."""
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as error:
            raise AuthError(
                f"{source} is not a token cache (line {error.lineno}, column {error.colno}): "
                "log in again"
            ) from None

        def field(name: str, kind: type, *, optional: bool = False) -> Any:
            value = data.get(name) if isinstance(data, dict) else None
            if value is None and optional:
                return None
            if not isinstance(value, kind) or isinstance(value, bool):
                raise AuthError(f"{source} is not a token cache ({name}): log in again")
            return value

        return cls(
            issuer=field("issuer", str),
            client_id=field("client_id", str),
            access_token=field("access_token", str),
            refresh_token=field("refresh_token", str, optional=True),
            issued_at=field("issued_at", int),
            expires_at=field("expires_at", int, optional=True),
        )


def read(path: Path) -> CachedToken | None:
    """The cache at `path`; None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AuthError(f"cannot read {path}: {error.strerror}") from None
    return CachedToken.from_json(text, source=str(path))


def write(path: Path, token: CachedToken) -> None:
    """Writes `token` to `path`: the folder made with mode 0700 if missing,
    the file replaced atomically by a temporary file created with mode 0600."""
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = folder / f".{path.name}.{os.getpid()}.{time.time_ns()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(token.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise AuthError(f"cannot write {path}: {error.strerror}") from None


def stamp(path: Path) -> tuple[int, int] | None:
    """Modification time and length: enough to notice a rewritten file."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
