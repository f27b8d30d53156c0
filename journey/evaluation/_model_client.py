"""Who closes an evaluation's model client: whoever made it.

`EvalRunner`, `PairsSampler` and `CriticEvalRunner` each take a client from the caller
(a test's fake, a Ray worker's client kept across units) or build one from their spec.
A client given is the caller's: it outlives the run and is not closed here. A client
built here is closed when the run is done with it, whatever way the run ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from autogen_core.models import ChatCompletionClient

__all__ = ["model_client"]


@asynccontextmanager
async def model_client(
    given: ChatCompletionClient | None, build: Callable[[], ChatCompletionClient]
) -> AsyncIterator[ChatCompletionClient]:
    """The client to use: `given` as it is, else one `build` makes, closed on leaving.

    Args:
        given: The caller's client (None: there is none); never closed here.
        build: Makes the client when none is given (e.g. `EvalOptions.client`).
    """
    client = build() if given is None else given
    try:
        yield client
    finally:
        if given is None:
            await client.close()
