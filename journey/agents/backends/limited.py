"""A client that lets at most N requests through to another client at once.

`journey synth --concurrency` bounds the sessions in flight; a role's endpoint may
take fewer requests than that (a rate-limited API, a small vLLM server, a critic on a
slower machine). `ConcurrencyLimitedClient` wraps the role's client and holds an
`asyncio.Semaphore` around every request; everything else is the wrapped client's.

Limits are per wrapper, not per model: when two roles share one client (the same spec
gives one `ClientPool` client, so one embedded model), each role wraps it with its own
limit and counts only its own requests. The shared model then sees at most
`policy + critic` requests at once, and neither role can starve the other of its share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from autogen_core.models import ChatCompletionClient

from journey.agents.backends.delegating import DelegatingClient
from journey.errors import ConfigError

__all__ = ["ConcurrencyLimitedClient", "limit_requests"]


class ConcurrencyLimitedClient(DelegatingClient):
    """Delegates to `inner`, with at most `limit` requests in flight through this wrapper.

    A request is `create`, a whole `create_stream` (held until the stream ends or is
    closed) or `score_labels`. Everything else is the inner client's (`DelegatingClient`).

    Args:
        inner: The client to protect.
        limit: Requests allowed in flight at once (at least 1).

    Raises:
        ConfigError: `limit` is below 1.
    """

    def __init__(self, inner: ChatCompletionClient, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"a request limit must be at least 1, got {limit!r}")
        super().__init__(inner)
        self._limit = limit
        self._gate = asyncio.Semaphore(limit)

    def __repr__(self) -> str:
        return f"ConcurrencyLimitedClient({self.inner!r}, limit={self._limit})"

    @property
    def limit(self) -> int:
        """Requests allowed in flight at once."""
        return self._limit

    @asynccontextmanager
    async def _request(self) -> AsyncIterator[None]:
        async with self._gate:
            yield


def limit_requests(
    clients: Mapping[str, ChatCompletionClient], limits: Mapping[str, int | None]
) -> dict[str, ChatCompletionClient]:
    """Each role's client, wrapped in its own `ConcurrencyLimitedClient` where it has a limit.

    Roles without a limit (absent or None) keep their client as it is. Two roles that
    share a client get two wrappers over it, each counting its own role's requests.

    Args:
        clients: Client per role, e.g. `{"policy": ..., "critic": ...}`.
        limits: Requests in flight allowed per role; None means no limit.
    """
    out: dict[str, ChatCompletionClient] = {}
    for role, client in clients.items():
        limit = limits.get(role)
        out[role] = client if limit is None else ConcurrencyLimitedClient(client, limit)
    return out
