"""Prompt-token counts for a remote model, without a tokenizer and without the network.

AutoGen counts tokens with tiktoken, whose encodings are downloaded on first use:
where there is no internet (most GPU clusters) that download fails, and with it the
critic's turn. A remote model's tokenizer is the server's anyway, so the server's own
count is the one to keep: `PromptTokenCounts` remembers the prompt tokens the server
reported for recent prompts, and `estimate_prompt_tokens` guesses the rest locally.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from autogen_core.models import LLMMessage

__all__ = ["CHARS_PER_TOKEN", "PromptTokenCounts", "estimate_prompt_tokens"]

CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text
_TOKENS_PER_MESSAGE = 4  # role and separators in a chat template

_Key = tuple[tuple[str, str], ...]


def _key(messages: Sequence[LLMMessage]) -> _Key:
    return tuple((type(m).__name__, str(m.content)) for m in messages)


def estimate_prompt_tokens(messages: Sequence[LLMMessage]) -> int:
    """A local estimate: one token per 4 characters of content plus 4 per message."""
    chars = sum(len(str(m.content)) for m in messages)
    return -(-chars // CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(messages)


class PromptTokenCounts:
    """The prompt tokens a server reported for the most recent prompts, by their messages."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._counts: OrderedDict[_Key, int] = OrderedDict()

    def record(self, messages: Sequence[LLMMessage], prompt_tokens: int) -> None:
        """Keep what the server counted for `messages`; zero (not reported) is ignored."""
        if prompt_tokens <= 0:
            return
        key = _key(messages)
        self._counts[key] = prompt_tokens
        self._counts.move_to_end(key)
        while len(self._counts) > self._capacity:
            self._counts.popitem(last=False)

    def get(self, messages: Sequence[LLMMessage]) -> int | None:
        """The server's count for exactly these messages, if it was reported recently."""
        return self._counts.get(_key(messages))
