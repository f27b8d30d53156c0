"""Tolerant, honest parsing of policy replies into protocol data.

Nothing here raises on model output. Whatever a reply gets wrong is repaired
when the intent is clear and recorded as a `ProtocolViolation` either way
(`repaired=False` means the reply could not be used and should be asked again).
Chat junk is removed silently first (see `journey.protocols._reply_text`).

Policy replies (`parse_policy_reply`), one step per turn as `Step N: ...`:

- Labels (`journey.protocols.steps.STEP_LABEL`): `Step N:`, `**Step N:**`,
  `**Step N**:`, `### Step N:`, `Step N.`, `Step N` alone on its line; bare
  `N.` / `N)` numbering only when the reply starts with it and uses no `Step`
  label (later bare numbers then start new steps only when they count on: `3.`,
  `4.`, ...; a sub-list `1.`, `2.` inside step 3 stays in the step).
- No label: the whole text is the step (`missing_step_label`, repaired).
- Another number than the one asked for: accepted (`wrong_step_number`, repaired).
- Text before the first label is dropped (`text_before_step`, repaired).
- Several steps: only the first is kept (`multiple_steps`, repaired). This holds
  even when a later step reaches a final answer and the first does not: that
  answer was not reviewed step by step, so it is dropped, and the violation's
  detail quotes it.
- A step over `MAX_STEP_CHARS` characters is cut, at a word boundary when one
  is near (`step_too_long`, repaired); the final answer is read from the kept part.
- Nothing left: content "" (`empty_reply`, or `empty_step` when only a label
  was written; not repaired).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from journey.protocols._reply_text import clean_chat, quote, violation
from journey.protocols.answers import extract_final_answer
from journey.protocols.messages import ProtocolViolation
from journey.protocols.steps import STEP_LABEL, step_label

__all__ = ["MAX_STEP_CHARS", "ParsedStep", "parse_policy_reply"]

MAX_STEP_CHARS = 2000
"""A policy step longer than this is cut (violation `step_too_long`)."""

_NUMBER_LABEL = re.compile(
    r"^[ \t]*(?:[*_]{1,2})?(?P<number>\d{1,3})(?:[*_]{1,2})?[.)](?:[*_]{1,2})?[ \t]+",
    re.MULTILINE,
)


@dataclass(frozen=True)
class ParsedStep:
    """One policy reply, reduced to the single step it proposes."""

    content: str
    """The step's text with its `Step N:` label stripped; "" if nothing usable."""
    final_answer: str | None
    """The final answer the kept step marks, if any."""
    violations: tuple[ProtocolViolation, ...]

    @property
    def usable(self) -> bool:
        """True when the reply gave a step to put in the tree."""
        return bool(self.content)


@dataclass(frozen=True)
class _Label:
    start: int
    end: int
    number: int


def parse_policy_reply(reply: str, expected_step: int) -> ParsedStep:
    """Read the one step a policy reply proposes (rules in the module docstring).

    Args:
        reply: The model's reply, verbatim.
        expected_step: The step number the policy was asked to write.

    Returns:
        The kept step, its final answer and every protocol violation found.
    """
    text = clean_chat(reply)
    if not text:
        return ParsedStep("", None, (violation("empty_reply", "the reply is empty", False),))
    violations: list[ProtocolViolation] = []
    labels = _step_labels(text)
    if not labels:
        missing = f"no '{step_label(expected_step)}' label"
        violations.append(violation("missing_step_label", missing))
        content = text
    else:
        content = _first_step(text, labels, expected_step, violations)
    if not content:
        violations.append(
            violation("empty_step", f"the label {quote(text)} has no step after it", False)
        )
        return ParsedStep("", None, tuple(violations))
    if len(content) > MAX_STEP_CHARS:
        content = _cut_long_step(content, violations)
    return ParsedStep(content, extract_final_answer(content), tuple(violations))


def _step_labels(text: str) -> list[_Label]:
    labels = [_Label(m.start(), m.end(), int(m.group("number"))) for m in STEP_LABEL.finditer(text)]
    if labels:
        return labels
    first = _NUMBER_LABEL.match(text)
    if first is None:
        return []
    numbered = [_Label(first.start(), first.end(), int(first.group("number")))]
    for match in _NUMBER_LABEL.finditer(text, first.end()):
        if int(match.group("number")) == numbered[-1].number + 1:
            numbered.append(_Label(match.start(), match.end(), numbered[-1].number + 1))
    return numbered


def _first_step(
    text: str, labels: list[_Label], expected: int, violations: list[ProtocolViolation]
) -> str:
    first = labels[0]
    lead_in = text[: first.start].strip()
    if lead_in:
        violations.append(violation("text_before_step", f"dropped {quote(lead_in)}"))
    if first.number != expected:
        violations.append(
            violation("wrong_step_number", f"labelled {first.number}, expected {expected}")
        )
    end = labels[1].start if len(labels) > 1 else len(text)
    content = text[first.end : end].strip()
    if len(labels) > 1:
        violations.append(_multiple_steps(text, labels, content))
    return content


def _multiple_steps(text: str, labels: list[_Label], kept: str) -> ProtocolViolation:
    numbers = ", ".join(str(label.number) for label in labels)
    detail = f"{len(labels)} steps written (labels {numbers}); kept only the first"
    if extract_final_answer(kept) is None:
        dropped = extract_final_answer(text[labels[1].start :])
        if dropped is not None:
            detail += f"; a later step's final answer {quote(dropped)} was dropped"
    return violation("multiple_steps", detail)


def _cut_long_step(content: str, violations: list[ProtocolViolation]) -> str:
    cut = content[:MAX_STEP_CHARS]
    space = cut.rfind(" ", MAX_STEP_CHARS - 200)
    kept = (cut[:space] if space > 0 else cut).rstrip()
    detail = f"the step has {len(content)} characters; kept the first {len(kept)}"
    violations.append(violation("step_too_long", detail))
    return kept
