"""Rule-based critics: judges built on a checker instead of a model.

A 135M model judges steps barely better than chance, so an experiment that needs a
trustworthy critic on a CPU can use a rule instead, through the function backend:

    journey synth --critic function:journey.agents.rule_critics:arithmetic ...

`arithmetic` reads the newest step of the judge prompt and checks every arithmetic
claim in it (`journey.protocols.arithmetic_claims`: `a op b = c`, chains `a = b = c`,
exact rational arithmetic):

- a false claim: `VERDICT: incorrect`, `ACTION: reflect` (or `backtrack K` when the
  prompt offers backtracking and an earlier step already held a false claim), and a
  REASON naming the claim and its right value;
- every claim true: `VERDICT: correct`, `ACTION: continue`. Correct means the step's
  arithmetic holds, not that it leads anywhere: the verifier judges where it ends;
- no claim it can check: `VERDICT: unknown`, `ACTION: continue`. Never "correct": a
  step nobody could check is not labelled as checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from autogen_core.models import LLMMessage, SystemMessage, UserMessage

from journey.agents.critic import step_under_judgement
from journey.protocols import STEP_LABEL
from journey.protocols.arithmetic_claims import check_claims

__all__ = ["arithmetic"]


# -- the critic -------------------------------------------------------------------------------

_REPLY = "VERDICT: {}\nACTION: {}\nREASON: {}"


def _earlier_steps(messages: Sequence[LLMMessage], newest: str) -> list[tuple[int, str]]:
    """The (number, text) of the steps the judge prompt shows before the newest one."""
    prompts = [str(m.content) for m in messages if isinstance(m, UserMessage)]
    prompt = next((p for p in reversed(prompts) if newest and newest in p), "")
    before = prompt[: prompt.rfind(newest)] if prompt else ""
    labels = list(STEP_LABEL.finditer(before))
    ends = [label.start() for label in labels[1:]] + [len(before)]
    pairs = zip(labels, ends, strict=True)
    return [(int(label.group("number")), before[label.end() : end]) for label, end in pairs]


def arithmetic(messages: Sequence[LLMMessage]) -> str:
    """A critic reply (`VERDICT / ACTION / REASON`) from the arithmetic of the newest step.

    For `--critic function:journey.agents.rule_critics:arithmetic`; the rules are in
    the module docstring.
    """
    newest = step_under_judgement(messages)
    label = STEP_LABEL.match(newest)
    body = newest[label.end() :] if label else newest
    check = check_claims(body)
    if not check.claims:
        return _REPLY.format("unknown", "continue", "The step has no arithmetic to check.")
    wrong = check.false_claims
    if not wrong:
        shown = "; ".join(claim.text for claim in check.claims[:3])
        return _REPLY.format("correct", "continue", f"The arithmetic holds: {shown}.")
    action = "reflect"
    number = int(label.group("number")) if label else 0
    system = " ".join(str(m.content) for m in messages if isinstance(m, SystemMessage))
    if "backtrack" in system.lower() and number > 1:
        earlier = [
            k for k, text in _earlier_steps(messages, newest) if check_claims(text).false_claims
        ]
        if earlier and earlier[0] < number:
            action = f"backtrack {earlier[0] - 1}"  # keep the steps before the first wrong one
    reason = "; ".join(claim.correction for claim in wrong[:3])
    return _REPLY.format("incorrect", action, f"{reason}.")
