"""Retries of requests to an OpenAI-compatible server, and the error that ends them.

A retryable fault (`_openai_faults.is_retryable`) is tried again after an exponential
backoff with jitter, or after the wait the server asked for (`Retry-After`), either
capped at `max_backoff`. A request whose server said a rate-limit count is spent waits
for its reset first (`_openai_rate_headers`). A transport fault that ends the attempts,
retryable or not, becomes one `ModelUnavailableError` naming the model, the base URL and
the fault, never the API key; any other exception passes through as it was raised.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from journey.agents.backends._openai_faults import (
    describe_fault,
    fault_cause,
    is_retryable,
    is_transport_fault,
    retry_after,
)
from journey.agents.backends._openai_rate_headers import ServerRateLimits
from journey.errors import ModelUnavailableError

__all__ = ["RetriedRequests"]

_T = TypeVar("_T")


class RetriedRequests:
    """Requests sent with retries; a mixin of `OpenAICompatibleClient`, which sets the
    attributes below (`retry_count` and `retries_by_cause` start at zero)."""

    _model: str
    _base_url: str
    _timeout: float
    _max_retries: int
    _backoff_base: float
    _max_backoff: float
    _secret: str
    retry_count: int
    retries_by_cause: dict[str, int]
    server_limits: ServerRateLimits

    async def _before_request(self) -> None:
        """Runs before every request; a subclass that starts its own server waits here
        until the server is ready (a server that cannot start raises, without retries)."""

    async def _with_retries(self, call: Callable[[], Awaitable[_T]]) -> _T:
        await self._before_request()
        if (pause := self.server_limits.delay()) > 0:  # the server said a count is spent
            await asyncio.sleep(pause)
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception(is_retryable),
                before_sleep=self._count_retry,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    return await call()
        except Exception as exc:
            if is_transport_fault(exc):
                raise self._unavailable(exc, attempts) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        server_wait = retry_after(exc)
        if server_wait is not None:
            return min(max(server_wait, 0.0), self._max_backoff)
        backoff = min(self._backoff_base * 2.0 ** (state.attempt_number - 1), self._max_backoff)
        return backoff * random.uniform(0.5, 1.0)  # jitter spreads out clients hit together

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        cause = fault_cause(exc) if exc is not None else "unknown"
        self.retry_count += 1
        self.retries_by_cause[cause] = self.retries_by_cause.get(cause, 0) + 1

    def _unavailable(self, exc: BaseException, attempts: int | None) -> ModelUnavailableError:
        """One line for the user; `attempts` is None for a fault in the middle of a stream."""
        if attempts is None:
            what = "failed mid-stream"
        elif not is_retryable(exc):
            what = "rejected the request"
        else:
            what = f"unavailable after {attempts} attempt{'s' if attempts != 1 else ''}"
        detail = describe_fault(exc, self._timeout)
        if self._secret:
            detail = detail.replace(self._secret, "***")
        return ModelUnavailableError(f"model {self._model!r} at {self._base_url} {what}: {detail}")
