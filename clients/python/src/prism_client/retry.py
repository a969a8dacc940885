"""When a failed call is tried again: exponential backoff with full jitter,
only for idempotent calls, only on UNAVAILABLE, never past the call's deadline.

`RetryPolicy.delay` is a pure function of the attempt and a random draw so it
can be tested without waiting.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from .errors import Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts the first try; 1 turns retries off."""

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff:
            raise ValueError(
                "initial_backoff must be > 0 and max_backoff >= initial_backoff, got "
                f"{self.initial_backoff} and {self.max_backoff}"
            )

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (0 for the first retry)."""
        return min(self.max_backoff, self.initial_backoff * self.multiplier**retry)

    def delay(self, retry: int, draw: float) -> float:
        """Full jitter: a uniform share (`draw` in [0, 1)) of the ceiling, so
        clients that failed together do not come back together."""
        return self.ceiling(retry) * draw


NO_RETRY = RetryPolicy(max_attempts=1)


async def call_with_retry(
    attempt: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    timeout: float,
    idempotent: bool,
    draw: Callable[[], float] = random.random,
) -> T:
    """Runs `attempt(remaining_seconds)` until it succeeds, fails with an error
    that is not retried, runs out of attempts, or the next wait would end
    after the deadline (`timeout` seconds from now)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    retry = 0
    while True:
        try:
            return await attempt(max(deadline - loop.time(), 0.001))
        except Unavailable:
            if not idempotent or retry + 1 >= policy.max_attempts:
                raise
            wait = policy.delay(retry, draw())
            if loop.time() + wait >= deadline:
                raise
            retry += 1
            await asyncio.sleep(wait)
