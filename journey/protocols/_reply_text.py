"""Chat cleanup and small text helpers shared by the policy and critic reply parsers.

A reasoning model's thoughts are dropped first (`journey.protocols.reasoning`):
only the answer is parsed. Chat junk is removed silently: surrounding whitespace,
special tokens such as `<|im_end|>` (text after an end-of-turn token is dropped), a
leading role label ("Assistant:") and a turn the model starts for someone else
("User:" at the start of a line, and everything after it).
"""

from __future__ import annotations

import re

from journey.protocols.messages import ProtocolViolation
from journey.protocols.reasoning import split_reasoning

_MAX_INPUT_CHARS = 50_000  # longer answers are read only this far: keeps every regex cheap
_MAX_REPLY_CHARS = 1_000_000  # thoughts included: far beyond any generation limit
_QUOTE_CHARS = 80

# -- chat junk ---------------------------------------------------------------------------

_END_OF_TURN = re.compile(
    r"<\|(?:im_end|eot_id|endoftext|end|eom_id)\|>|</s>|<end_of_turn>|<\|end_of_text\|>"
)
_SPECIAL_TOKEN = re.compile(
    r"<\|im_start\|>[ \t]*(?:assistant|user|system)?\n?|<\|[a-z_]{1,30}\|>|</?s>"
    r"|<(?:start|end)_of_turn>(?:model|user)?",
    re.IGNORECASE,
)
_ROLE_LABEL = re.compile(
    r"^[ \t]*(?:\*\*)?(?:assistant|policy|student|critic|teacher|model)(?:\*\*)?[ \t]*:"
    r"(?:\*\*)?[ \t]*",
    re.IGNORECASE,
)
_OTHER_TURN = re.compile(r"^[ \t]*(?:user|human|system)[ \t]*:", re.IGNORECASE | re.MULTILINE)
WHITESPACE = re.compile(r"\s+")


def clean_chat(reply: str) -> str:
    """The reply's answer part without chat junk (see the module docstring)."""
    text = split_reasoning(reply[:_MAX_REPLY_CHARS]).answer[:_MAX_INPUT_CHARS]
    for segment in _END_OF_TURN.split(text):
        segment = _SPECIAL_TOKEN.sub("", segment)
        if segment.strip():
            text = segment
            break
    else:
        return ""
    text = _ROLE_LABEL.sub("", text.strip(), count=1)
    other_turn = _OTHER_TURN.search(text)
    if other_turn is not None and other_turn.start() > 0:
        text = text[: other_turn.start()]
    return text.strip()


def quote(text: str) -> str:
    flat = WHITESPACE.sub(" ", text).strip()
    return repr(flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1] + "…")


def violation(kind: str, detail: str, repaired: bool = True) -> ProtocolViolation:
    return ProtocolViolation(kind=kind, detail=detail, repaired=repaired)
