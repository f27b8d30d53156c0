"""Tolerant, honest parsing of model replies into protocol data.

Nothing here raises on model output. Whatever a reply gets wrong is repaired
when the intent is clear and recorded as a `ProtocolViolation` either way
(`repaired=False` means the reply could not be used and should be asked again).
Chat junk is removed silently first: surrounding whitespace, special tokens
such as `<|im_end|>` (text after an end-of-turn token is dropped), a leading
role label ("Assistant:") and a turn the model starts for someone else
("User:" at the start of a line, and everything after it).

This module gathers the two parsers; each documents its own fallback rules:

- `journey.protocols.policy_reply`: `parse_policy_reply`, one step per turn as
  `Step N: ...`.
- `journey.protocols.critic_reply`: `parse_critic_reply`, asked as
  `VERDICT: / ACTION: / REASON:`.
"""

from __future__ import annotations

from journey.protocols.critic_reply import (
    MAX_FALLBACK_REASON_CHARS,
    MAX_REASON_CHARS,
    ParsedVerdict,
    parse_critic_reply,
)
from journey.protocols.policy_reply import MAX_STEP_CHARS, ParsedStep, parse_policy_reply

__all__ = [
    "MAX_FALLBACK_REASON_CHARS",
    "MAX_REASON_CHARS",
    "MAX_STEP_CHARS",
    "ParsedStep",
    "ParsedVerdict",
    "parse_critic_reply",
    "parse_policy_reply",
]
