"""The checks an expansion must pass before it becomes a session's tree: checked, not trusted.

In order, every failure listed as `kind: detail` (the kinds are counted by the report
and the export card):

- **its structure** (`journey.protocols.expansion.walk_expansion`): numbered steps, and
  every reflection names a written step and is followed by that step rewritten with
  other mathematics (`no steps`, `empty step`, `steps out of order`, `reflection names
  no step`, `reflection corrects nothing`);
- **wrong turns**: at least `min_reflections` reflections followed by a rewrite
  (`no wrong turn`);
- **the final answer**: the last step marks one (`no final answer`) and it verifies
  against the gold answer with math-verify, as a session's verifier does (`wrong answer`);
- **key results**: the reference's intermediate numbers (`ReferenceSolution.key_results`)
  appear on the expansion's final path, at least `key_share` of them
  (`key results missing`); a number only written in a wrong turn does not count;
- **length**: the text from the first step on, against the reference's length, within
  `min_length`..`max_length` times (`too short`, `too long`); a reply the token limit
  cut off is `too long` too.

A reply with no step at all is rejected for that alone (and for being cut off, if it
was): there is nothing to check the rest against.
"""

from __future__ import annotations

import math

from journey.agents import answers_match
from journey.problems.reference import ReferenceSolution
from journey.protocols import extract_final_answer
from journey.protocols.expansion import ExpansionChecks, ExpansionWalk, numbers_in

__all__ = [
    "KEY_RESULTS_MISSING",
    "NO_FINAL_ANSWER",
    "NO_WRONG_TURN",
    "TOO_LONG",
    "TOO_SHORT",
    "WRONG_ANSWER",
    "check_expansion",
    "final_answer",
]

NO_WRONG_TURN = "no wrong turn"
NO_FINAL_ANSWER = "no final answer"
WRONG_ANSWER = "wrong answer"
KEY_RESULTS_MISSING = "key results missing"
TOO_SHORT = "too short"
TOO_LONG = "too long"


def final_answer(walk: ExpansionWalk) -> str | None:
    """The answer the expansion's last step marks; None when it marks none."""
    return extract_final_answer(walk.steps[-1].block) if walk.steps else None


def check_expansion(
    walk: ExpansionWalk,
    reference: ReferenceSolution,
    gold: str,
    checks: ExpansionChecks,
    *,
    cut_off: bool = False,
) -> list[str]:
    """Every way the expansion fails its checks (rules in the module docstring); empty
    when it passes.

    Args:
        walk: The expansion, read and placed on its path.
        reference: The reference solution it expands.
        gold: The gold answer.
        checks: The thresholds.
        cut_off: The token limit ended the reply.
    """
    reasons = list(walk.problems)
    if not walk.steps:
        return [*reasons, f"{TOO_LONG}: cut off by the token limit"] if cut_off else reasons
    if walk.reflections < checks.min_reflections:
        reasons.append(
            f"{NO_WRONG_TURN}: {walk.reflections} corrected, at least "
            f"{checks.min_reflections} needed"
        )
    answer = final_answer(walk)
    if answer is None:
        reasons.append(f"{NO_FINAL_ANSWER}: the last step marks none")
    elif answer is not None and not answers_match(answer, gold):
        reasons.append(f"{WRONG_ANSWER}: {answer}, not {gold}")
    reasons.extend(_key_results(walk, reference, checks.key_share))
    if cut_off:
        reasons.append(f"{TOO_LONG}: cut off by the token limit")
    else:
        ratio = len(walk.text.strip()) / max(len(reference.text.strip()), 1)
        if ratio < checks.min_length:
            reasons.append(f"{TOO_SHORT}: {ratio:.2f} times the reference's length")
        elif ratio > checks.max_length:
            reasons.append(f"{TOO_LONG}: {ratio:.2f} times the reference's length")
    return reasons


def _key_results(walk: ExpansionWalk, reference: ReferenceSolution, share: float) -> list[str]:
    keys = reference.key_results
    if not keys:
        return []
    written = set(numbers_in("\n".join(step.text for step in walk.final_path)))
    missing = [key for key in keys if key not in written]
    allowed = len(keys) - math.ceil(share * len(keys))
    if len(missing) <= allowed:
        return []
    shown = ", ".join(missing[:8]) + (", ..." if len(missing) > 8 else "")
    return [
        f"{KEY_RESULTS_MISSING}: {shown} ({len(missing)} of {len(keys)} absent from the "
        f"final path, at most {allowed} allowed)"
    ]
