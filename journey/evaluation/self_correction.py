"""Self-correction in a model's output: a reflection after a wrong intermediate result,
and a right answer in the end.

Reflection words alone say little: a model trained on long thoughts may write "Wait,"
out of habit, after a right step, and a shortcut model may never need to. What journey
learning hopes to teach is to *notice a mistake and recover*, so an output counts as a
self-correction only when

- it ends correct (graded as `journey eval` grades it), and
- a reflection marker (`REFLECTION_MARKERS`, `REFLECTION_KEYWORDS`, `BACKTRACK_PHRASES`)
  comes after a wrong intermediate result.

The wrong result is found by the rule critic's claim checker
(`journey.protocols.arithmetic_claims.check_claims`): the first false `a op b = c` in the
output. An output with no checkable claim at all (a task that is not arithmetic) falls
back to a marker anywhere in a correct output, and says so (`basis`), so a report can
tell how many outputs were checked and how many only trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from journey.protocols.arithmetic_claims import check_claims
from journey.protocols.vocabulary import (
    BACKTRACK_PHRASES,
    REFLECTION_KEYWORDS,
    REFLECTION_MARKERS,
    phrase_pattern,
)

__all__ = ["MARKER", "SelfCorrection", "self_correction"]


def _marker() -> re.Pattern[str]:
    pattern = phrase_pattern((*REFLECTION_MARKERS, *REFLECTION_KEYWORDS, *BACKTRACK_PHRASES))
    assert pattern is not None  # the lists are not empty
    return pattern


MARKER = _marker()
"""Any reflection or correction marker, as a whole word or phrase, in any case."""


@dataclass(frozen=True)
class SelfCorrection:
    """What one output shows."""

    corrected: bool
    """It reflects after a wrong intermediate result and ends correct."""
    marked: bool
    """It holds a reflection or correction marker anywhere."""
    basis: Literal["claims", "markers"]
    """`claims`: its arithmetic was checked; `markers`: it had none, a marker sufficed."""
    wrong_claim: str | None = None
    """The first false claim, where one was found."""


def self_correction(output: str, *, correct: bool) -> SelfCorrection:
    """Whether `output` (graded `correct`) corrects itself (rules in the module docstring)."""
    marked = MARKER.search(output) is not None
    check = check_claims(output)
    if not check.claims:
        return SelfCorrection(corrected=correct and marked, marked=marked, basis="markers")
    wrong = check.false_claims
    if not wrong:
        return SelfCorrection(corrected=False, marked=marked, basis="claims")
    first = wrong[0]
    after = MARKER.search(check.normalised, first.end) is not None
    return SelfCorrection(
        corrected=correct and after, marked=marked, basis="claims", wrong_claim=first.text
    )
