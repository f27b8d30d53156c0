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

It also reads the replies of a self-critiquing policy (`parse_self_critique_reply`,
the propose-critique strategy), which hold both: a step, then the policy's own
check of it with the action it chooses, e.g.
`Step 3: 4 * 5 = 20.\nCheck: the product is right.\nACTION: continue`.

- The check starts at the first line that opens with `Check`, `Self-check`,
  `Critique`, `Review`, `Verdict`, `Assessment`, `Action` or `Decision` and a
  `:` / `=` / `-` separator (markdown bold and headings allowed). Before it is
  the step, read by `parse_policy_reply`; from it on is the check, read by
  `parse_critic_reply` (every repair and violation of that parser applies; the
  `Check:` label reads as its `REASON:`).
- No such line: the whole reply is the step and the check is empty.
- The verdict follows from the action the policy applies to its own step
  (continue: correct; reflect, backtrack: incorrect; terminate: correct when the
  step gives a final answer, else unknown), labelled with the source
  `self_check`. A check that states "incorrect" but chooses continue is read as
  reflect first (the critic parser's `inconsistent_action`), so it is incorrect.
  The critic parser's verdict repairs (`inferred_verdict`, `missing_verdict`,
  `inconsistent_verdict`) are no violations here and are dropped.
- No action recoverable from the check (none written, or unreadable): the action
  is `Continue`, recorded as one `unparseable_action` violation (repaired) in
  place of the critic parser's `unparseable_verdict`. The session still lets the
  verifier judge a final answer, so this fallback never accepts a wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from journey.protocols._reply_text import clean_chat, quote, violation
from journey.protocols.actions import Action, Continue, Terminate
from journey.protocols.critic_reply import (
    MAX_FALLBACK_REASON_CHARS,
    MAX_REASON_CHARS,
    ParsedVerdict,
    parse_critic_reply,
)
from journey.protocols.messages import LabelSource, StepVerdict
from journey.protocols.policy_reply import MAX_STEP_CHARS, ParsedStep, parse_policy_reply

__all__ = [
    "MAX_FALLBACK_REASON_CHARS",
    "MAX_REASON_CHARS",
    "MAX_STEP_CHARS",
    "ParsedSelfCritique",
    "ParsedStep",
    "ParsedVerdict",
    "parse_critic_reply",
    "parse_policy_reply",
    "parse_self_critique_reply",
]

_CHECK_LINE = re.compile(
    r"^[ \t>]*(?:#{1,6}[ \t]*)?(?:[*_]{1,2}[ \t]*)?"
    r"(?:self[ \t-]?check|check|critique|review|verdict|assessment|next[ \t_-]?action|action"
    r"|decision)[ \t]*(?:[*_]{1,2}[ \t]*)?[:=\-–—]",
    re.IGNORECASE | re.MULTILINE,
)

# A check's own label, read as the critic's REASON field.
_CHECK_LABEL = re.compile(
    r"^[ \t>]*(?:#{1,6}[ \t]*)?(?:[*_]{1,2}[ \t]*)?(?:self[ \t-]?check|check|review)"
    r"[ \t]*(?:[*_]{1,2}[ \t]*)?[:=\-–—](?:[ \t]*[*_]{1,2}(?!\w))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedSelfCritique:
    """One reply of a self-critiquing policy: its step, and its own verdict on it."""

    step: ParsedStep
    check: ParsedVerdict
    """Verdict, action (never None: the fallback is `Continue`), reason and violations."""
    check_text: str
    """The check as written (from its first line on), "" when there was none."""


def split_self_critique(reply: str) -> tuple[str, str]:
    """The step part and the check part of a reply (rules in the module docstring)."""
    text = clean_chat(reply)
    match = _CHECK_LINE.search(text)
    if match is None:
        return text, ""
    return text[: match.start()].strip(), text[match.start() :].strip()


def parse_self_critique_reply(reply: str, expected_step: int) -> ParsedSelfCritique:
    """Read a self-critiquing policy's step and its check of that step.

    Args:
        reply: The model's reply, verbatim.
        expected_step: The step number the policy was asked to write.

    Returns:
        The step, and the check with an action always set (see the module docstring).
    """
    step_text, check_text = split_self_critique(reply)
    step = parse_policy_reply(step_text, expected_step)
    as_critic = _CHECK_LABEL.sub("REASON:", check_text, count=1)
    check = parse_critic_reply(as_critic, current_step=expected_step)
    violations = [v for v in check.violations if v.kind not in _VERDICT_REPAIRS]
    action = check.action
    if action is None:
        what = f"no action in the check {quote(check_text)}" if check_text else "no check written"
        violations.append(violation("unparseable_action", f"{what}; read as continue"))
        verdict, action = StepVerdict.UNKNOWN, Continue()
    else:
        verdict = _implied_verdict(action, gives_answer=step.final_answer is not None)
    source = LabelSource.NONE if verdict is StepVerdict.UNKNOWN else LabelSource.SELF_CHECK
    return ParsedSelfCritique(
        step, ParsedVerdict(verdict, action, check.reason, tuple(violations), source), check_text
    )


_VERDICT_REPAIRS = frozenset(
    {"inferred_verdict", "missing_verdict", "inconsistent_verdict", "unparseable_verdict"}
)


def _implied_verdict(action: Action, *, gives_answer: bool) -> StepVerdict:
    if isinstance(action, Terminate):
        return StepVerdict.CORRECT if gives_answer else StepVerdict.UNKNOWN
    return StepVerdict.CORRECT if isinstance(action, Continue) else StepVerdict.INCORRECT
