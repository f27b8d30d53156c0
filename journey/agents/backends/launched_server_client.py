"""A client of a model server journey launched itself (`vllm:`, `llama:`).

Both servers are child processes the client holds a share of: requests wait until the
server is ready (or `load()` waits up front), a request that fails because the server
died says so at once with its log instead of being retried, and `close()` (or the
client's collection, or exit) gives the share back, which stops the server when it was
the last.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from journey.agents.backends.openai_compat import DUMMY_API_KEY, OpenAICompatibleClient
from journey.errors import ConfigError

__all__ = ["LaunchedServer", "LaunchedServerClient"]

_T = TypeVar("_T")


class LaunchedServer(Protocol):
    """What the client needs of a server it launched."""

    @property
    def running(self) -> bool: ...

    async def wait_until_ready(self, timeout: float) -> None:
        """Return once the server answers; raise `ModelUnavailableError` (quoting its
        log) if it exited or was not ready within `timeout` seconds of its start."""
        ...


class LaunchedServerClient(OpenAICompatibleClient):
    """An OpenAI-compatible client of a server it holds a share of.

    Args:
        server: The server, acquired for this client.
        release: Gives the share back; called on close, on collection, at exit, or here
            if the client cannot be built.
        model: The model name requests carry.
        base_url: The server's `/v1` URL.
        start_timeout: Seconds from the server's start after which waiting for it fails.
        **client_options: `OpenAICompatibleClient` options (timeout, logprobs, ...).

    Raises:
        ConfigError: An option is out of range.
    """

    def __init__(
        self,
        server: LaunchedServer,
        release: Callable[[], object],
        *,
        model: str,
        base_url: str,
        start_timeout: float,
        **client_options: Any,
    ) -> None:
        try:
            if start_timeout <= 0:
                raise ConfigError(f"start_timeout must be positive, got {start_timeout!r}")
            super().__init__(model, api_key=DUMMY_API_KEY, base_url=base_url, **client_options)
        except BaseException:
            release()
            raise
        self.server = server
        self._start_timeout = start_timeout
        self._release = weakref.finalize(self, release)  # also runs at exit

    async def load(self) -> None:
        """Wait until the server is ready (the first request would wait anyway).

        Raises:
            ModelUnavailableError: The server exited or was not ready within start_timeout;
                the message quotes its log's last lines.
        """
        await self.server.wait_until_ready(self._start_timeout)

    async def _before_request(self) -> None:
        await self.load()

    async def _with_retries(self, call: Callable[[], Awaitable[_T]]) -> _T:
        async def checked() -> _T:
            try:
                return await call()
            except Exception:
                if not self.server.running:  # died under the request: no use retrying
                    await self.load()  # raises, naming its exit code and log
                raise

        return await super()._with_retries(checked)

    async def close(self) -> None:
        try:
            await super().close()
        finally:  # the share goes back even if closing the HTTP client failed
            await asyncio.to_thread(self._release)  # may wait out the server's grace period
