"""Requests and tokens per minute to one endpoint, at most: `RateLimitedClient`.

A spec's `rpm=N` and `tpm=N` bound what one endpoint is sent per minute: requests, and
prompt + completion tokens. `ClientPool` hands out one limiter per endpoint and limits,
so the roles and sessions that share an endpoint share its window. The window slides:
a request starts only while fewer than `rpm` requests started in the last 60 s and the
tokens of the requests answered in the last 60 s are under `tpm`; otherwise it waits,
first come first served, until the oldest of them leaves the window. A request's tokens
are known only once it is answered, so requests already in flight when `tpm` fills may
pass it; over any longer stretch it holds.

A server that says how much it has left (`x-ratelimit-remaining-*` and
`x-ratelimit-reset-*` headers) is obeyed by the OpenAI client itself, with or without
these options (`_openai_rate_headers`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from autogen_core.models import ChatCompletionClient, CreateResult

from journey.agents.backends.delegating import DelegatingClient
from journey.errors import ConfigError

__all__ = ["WINDOW_SECONDS", "RateLimitedClient", "RateWindow"]

WINDOW_SECONDS = 60.0
"""The window `rpm` and `tpm` count over."""


class RateWindow:
    """The last minute of one endpoint's requests, and the wait before the next one.

    Args:
        rpm: Requests that may start in any 60 s; None: no limit.
        tpm: Prompt + completion tokens of the requests answered in any 60 s; None: no limit.
        clock: The time source (tests pass a fake one).
        sleep: How to wait (tests pass one that moves the fake clock).

    Raises:
        ConfigError: a limit below 1.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        for name, limit in (("rpm", rpm), ("tpm", tpm)):
            if limit is not None and limit < 1:
                raise ConfigError(f"{name} must be at least 1, got {limit!r}")
        self.rpm, self.tpm = rpm, tpm
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._answered: deque[tuple[float, int]] = deque()
        self._turn = asyncio.Lock()
        self.waits = 0
        """Requests that had to wait."""
        self.waited = 0.0
        """Seconds they waited, in all."""

    def __repr__(self) -> str:
        return f"RateWindow(rpm={self.rpm!r}, tpm={self.tpm!r})"

    def delay(self) -> float:
        """Seconds until the next request may start (0: now)."""
        now = self._clock()
        while self._starts and self._starts[0] <= now - WINDOW_SECONDS:
            self._starts.popleft()
        while self._answered and self._answered[0][0] <= now - WINDOW_SECONDS:
            self._answered.popleft()
        until = now
        if self.rpm is not None and len(self._starts) >= self.rpm:
            until = self._starts[-self.rpm] + WINDOW_SECONDS
        if self.tpm is not None:
            used = sum(tokens for _, tokens in self._answered)
            for at, tokens in self._answered:  # the oldest leave first
                if used < self.tpm:
                    break
                used -= tokens
                until = max(until, at + WINDOW_SECONDS)
        return max(until - now, 0.0)

    async def acquire(self) -> None:
        """Wait until a request may start, and count it as started."""
        async with self._turn:
            delay = self.delay()
            if delay > 0:
                self.waits += 1
            while delay > 0:
                self.waited += delay
                await self._sleep(delay)
                delay = self.delay()
            self._starts.append(self._clock())

    def answered(self, tokens: int) -> None:
        """Count an answered request's prompt + completion tokens."""
        if self.tpm is not None and tokens > 0:
            self._answered.append((self._clock(), tokens))


class RateLimitedClient(DelegatingClient):
    """`inner`, its requests started no faster than `window` allows."""

    def __init__(self, inner: ChatCompletionClient, window: RateWindow) -> None:
        super().__init__(inner)
        self.window = window

    def __repr__(self) -> str:
        return f"RateLimitedClient({self.inner!r}, {self.window!r})"

    @asynccontextmanager
    async def _request(self) -> AsyncIterator[None]:
        await self.window.acquire()
        yield

    def _answered(self, result: CreateResult) -> None:
        self.window.answered(result.usage.prompt_tokens + result.usage.completion_tokens)
