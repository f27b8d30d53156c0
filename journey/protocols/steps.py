"""The step format: one reasoning step is written `Step N: text`.

Every place that writes a step (the policy's history, the critic's prompt, the
self-critique history, long thoughts, shortcuts and exported rows) writes it with
`step_line`, and every place that reads one back recognises its label with
`STEP_LABEL` (a model's reply, written loosely) or `STEP_LINE_LABEL` (text journey
wrote itself), so the format lives here alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "STEP_LABEL",
    "STEP_LINE_LABEL",
    "newest_step",
    "next_step_stops",
    "step_label",
    "step_line",
    "step_lines",
    "step_paragraphs",
]

_STEP_WORD = "Step"

STEP_LABEL = re.compile(
    r"^[ \t>]*(?:#{1,6}[ \t]*)?(?:[*_]{1,2}[ \t]*)?step[ \t]*#?[ \t]*(?P<number>\d{1,9})"
    r"[ \t]*(?:[*_]{1,2})?[ \t]*(?:[:.)\-–—](?!\d)|(?=\n)|\Z)[ \t]*(?:[*_]{1,2}(?!\w))?[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
"""A step label as models write it, at the start of any line: `Step N:`, `**Step N:**`,
`**Step N**:`, `### Step N:`, `Step N.`, `Step N` alone on its line, in any case. The
group `number` is the step number; a match ends where the step's text starts."""

STEP_LINE_LABEL = re.compile(r"^\s*step\s+\d+\s*:", re.IGNORECASE)
"""The label `step_line` writes, at the start of a text (leading space and any case
allowed): tells a step paragraph of a long thought from a reflection."""


def step_label(number: int) -> str:
    """The label of step `number`: `Step N:`."""
    return f"{_STEP_WORD} {number}:"


def step_line(number: int, text: str) -> str:
    """Step `number` as journey writes it: `Step N: text`."""
    return f"{step_label(number)} {text}"


def step_lines(texts: Iterable[str], start: int = 1) -> list[str]:
    """The lines of consecutive steps, numbered from `start`."""
    return [step_line(number, text) for number, text in enumerate(texts, start)]


def step_paragraphs(steps: Iterable[tuple[int, str]]) -> str:
    """(number, text) steps as transcripts write them: `Step N: ...` paragraphs."""
    return "\n\n".join(step_line(number, text) for number, text in steps)


def next_step_stops(step_number: int) -> list[str]:
    """Stop strings at the label of the step after `step_number`, plain or bold.

    They save the tokens a model spends running ahead, and cannot cut a reply that
    opens with a lead-in before its own label; the parser repairs whatever slips through.
    """
    following = step_number + 1
    return [f"\n{step_label(following)}", f"\n**{_STEP_WORD} {following}"]


def newest_step(text: str) -> str:
    """The last step of a text of step lines: from the last `Step ` on, stripped; the
    whole text, stripped, when it has none."""
    start = text.rfind(f"{_STEP_WORD} ")
    return text[start:].strip() if start >= 0 else text.strip()
