"""Who closes an evaluation's model client: whoever made it; and how a job loads it.

`EvalRunner`, `PairsSampler` and `CriticEvalRunner` each take a client from the caller
(a test's fake, a Ray worker's client kept across units) or build one from their spec.
A client given is the caller's: it outlives the run and is not closed here. A client
built here is closed when the run is done with it, whatever way the run ends.

`EvalRunner` and `PairsSampler` then load their one model the same way before the first
request, and ask it only through their accounts (`accounted_model`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from autogen_core.models import ChatCompletionClient

from journey.agents.backends.base import ensure_loaded
from journey.runs.request_accounts import RequestAccounts

__all__ = ["accounted_model", "model_client"]


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


@asynccontextmanager
async def accounted_model(
    given: ChatCompletionClient | None,
    build: Callable[[], ChatCompletionClient],
    accounts: RequestAccounts,
    role: str,
) -> AsyncIterator[ChatCompletionClient]:
    """The model loaded now, asked through `accounts` as `role`: a model that cannot load
    fails once, before any request, and every request is cached, metered and budgeted.

    Args:
        given: The caller's client (None: there is none); never closed here.
        build: Makes the client when none is given (e.g. `EvalOptions.client`); it is
            closed on leaving.
        accounts: The job's cache, meter and budget.
        role: The model's role, as the accounts name it (`MODEL_ROLE`).

    Raises:
        ModelUnavailableError: The model could not be loaded or its server not started.
    """
    async with model_client(given, build) as model:
        await ensure_loaded(model)
        yield accounts.wrap(role, model)
