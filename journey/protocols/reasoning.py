"""Separating a reasoning model's thoughts from its answer.

Reasoning models (DeepSeek-R1 and its distills, QwQ, Qwen3 in thinking mode, the
o-series) think before they answer. Their thoughts may quote a verdict they later
reject ("a first guess would be VERDICT: correct"), so verdicts, steps and final
answers are read from the answer part only. The thoughts come in one of these forms:

- a `reasoning_content` field beside the content (vLLM's reasoning parsers,
  DeepSeek's API), which AutoGen's OpenAI client hands over as `CreateResult.thought`;
- `<think>…</think>` blocks in the content (also `<thinking>` and `<reasoning>`),
  anywhere in the reply: every closed block is reasoning, the rest is the answer;
- a reply that opens with the close tag (`…</think> answer`), because the chat
  template opened the block in the prompt: the text before it is reasoning;
- an open block never closed (the model ran out of tokens mid-thought): everything
  from the open tag on is reasoning, and the reply is marked `unfinished`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SplitReply", "split_reasoning"]

_TAG = r"(?:think|thinking|reasoning)"
_BLOCK = re.compile(rf"<(?P<tag>{_TAG})>(?P<body>.*?)</(?P=tag)>", re.IGNORECASE | re.DOTALL)
_OPEN = re.compile(rf"<{_TAG}>", re.IGNORECASE)
_CLOSE = re.compile(rf"</{_TAG}>", re.IGNORECASE)


@dataclass(frozen=True)
class SplitReply:
    """A reply cut into the model's thoughts and its answer."""

    reasoning: str
    """The thoughts, "" when the reply has none."""
    answer: str
    """What the model says once it has thought: the only part parsed."""
    unfinished: bool = False
    """The thoughts were cut off before they closed: there is no answer to read."""


def split_reasoning(reply: str, thought: str | None = None) -> SplitReply:
    """Cut a reply into reasoning and answer (the rules are in the module docstring).

    Args:
        reply: The reply's content, verbatim.
        thought: Reasoning the server returned beside the content, if any.

    Returns:
        The reasoning (the server's first, then any found in the content) and the answer.
    """
    parts: list[str] = [thought.strip()] if thought and thought.strip() else []
    text = reply
    unfinished = False
    close = _CLOSE.search(text)
    first_open = _OPEN.search(text)
    if close is not None and (first_open is None or close.start() < first_open.start()):
        parts.append(text[: close.start()])
        text = text[close.end() :]
    answer_parts: list[str] = []
    position = 0
    for block in _BLOCK.finditer(text):
        answer_parts.append(text[position : block.start()])
        parts.append(block.group("body"))
        position = block.end()
    rest = text[position:]
    dangling = _OPEN.search(rest)
    if dangling is not None:
        parts.append(rest[dangling.end() :])
        rest = rest[: dangling.start()]
        unfinished = True
    answer_parts.append(rest)
    reasoning = "\n\n".join(p.strip() for p in parts if p.strip())
    return SplitReply(reasoning, "".join(answer_parts).strip(), unfinished)
