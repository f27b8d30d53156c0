"""What the agents need from a model client beyond AutoGen's `ChatCompletionClient`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from autogen_core.models import ChatCompletionClient, LLMMessage

from journey.protocols import LabelScoring


@runtime_checkable
class LabelScoringClient(Protocol):
    """A client that can score fixed continuations of an assistant turn by log-probability.

    A weak model rarely writes a parseable verdict, but it can still *rank* the four
    action labels: the critic then picks the best-scoring label and generates only
    the free-text reason.
    """

    @property
    def supports_label_scoring(self) -> bool: ...

    @property
    def label_scoring(self) -> LabelScoring:
        """What a label's score is: its whole sequence's log-probability, or its first
        token's (recorded with every verdict scored this way)."""
        ...

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        """Log-probability of each label as the start of the assistant's reply.

        Args:
            messages: The conversation; the assistant turn to score comes after it.
            labels: Candidate continuations, e.g. ["continue", "backtrack", ...].
            prefix: Text the assistant turn starts with before the label, e.g. "ACTION: ".

        Returns:
            A mapping from each label to the summed log-probability of its tokens.
        """
        ...


def can_score_labels(client: ChatCompletionClient) -> bool:
    """True when `client` implements label scoring and has it switched on."""
    return isinstance(client, LabelScoringClient) and client.supports_label_scoring


@runtime_checkable
class LoadableClient(Protocol):
    """A client with a step that loads its model or starts its server (the local
    transformers client, vLLM): `load()` does it now instead of on the first request."""

    async def load(self) -> None: ...


@runtime_checkable
class RetryCounting(Protocol):
    """A client that counts the requests it had to retry (the OpenAI-compatible ones)."""

    @property
    def retry_count(self) -> int:
        """Retries so far, all causes together."""
        ...

    @property
    def retries_by_cause(self) -> Mapping[str, int]:
        """Retries so far per cause ("429", "timeout", "connection"...)."""
        ...


@runtime_checkable
class RecordingClient(Protocol):
    """A client that records every request sent to it (the scripted ones, for tests)."""

    @property
    def requests(self) -> list[list[LLMMessage]]: ...


def retry_causes(client: ChatCompletionClient) -> Mapping[str, int]:
    """The client's retries so far per cause; empty for a client that counts none."""
    return client.retries_by_cause if isinstance(client, RetryCounting) else {}


async def ensure_loaded(client: ChatCompletionClient) -> None:
    """Load (or start) the client's model now, where it has such a step.

    A model that cannot start then fails once, with its one-line reason, instead of
    once per request of a long job.

    Raises:
        ModelUnavailableError: The model could not be loaded or its server not started.
    """
    if isinstance(client, LoadableClient):
        await client.load()
