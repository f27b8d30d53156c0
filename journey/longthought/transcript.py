"""From a session to a long thought: one first-person monologue with its wrong turns.

The debate's dialogue order is the journey. The writer keeps every step the
policy wrote, in the order it wrote them, and turns each critique into the
policy's own reflection ("Wait, step 3 is wrong: ... Let me go back to step 2."),
so a model trained on it learns to notice, explain and recover from mistakes.
The *shortcut* is the path to the accepted answer alone, written next to the
long thought so shortcut and journey training sets share their problems exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from journey.protocols import (
    REFLECTION_OPENERS,
    ActionApplied,
    Backtrack,
    PolicyStepProposed,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    step_line,
    step_paragraphs,
)
from journey.protocols.arithmetic_claims import check_claims
from journey.sessions.tree import ReasoningTree

# Second and third person, as critics write, to the policy's first person.
_PERSON_SWAPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\b[Tt]he student's\b", "my"),
        (r"\b[Tt]he student\b", "I"),
        (r"\b[Yy]ou are\b", "I am"),
        (r"\b[Yy]ou were\b", "I was"),
        (r"\b[Yy]ou've\b", "I've"),
        (r"\b[Yy]ou're\b", "I'm"),
        (r"\b[Yy]ours\b", "mine"),
        (r"\b[Yy]our\b", "my"),
        (r"\b[Yy]ou\b", "I"),
        (r"\b[Yy]ourself\b", "myself"),
    )
)


def reflection_opener(index: int, *, vary: bool = True) -> str:
    """The opener of the `index`-th reflection (from 0): the openers in turn, or the
    first alone when they do not vary."""
    if not vary:
        return REFLECTION_OPENERS[0]
    return REFLECTION_OPENERS[index % len(REFLECTION_OPENERS)]


def first_person(critique: str) -> str:
    """Rewrite a critic's remark as the solver's own thought."""
    text = critique.strip()
    for pattern, replacement in _PERSON_SWAPS:
        text = pattern.sub(replacement, text)
    if text and not text.endswith((".", "!", "?")):
        text += "."
    # It becomes a sentence of its own after "Wait, step 3 is wrong.".
    return text[:1].upper() + text[1:]


def rejected_answer(opener: str, answer: str | None, step: str) -> str:
    """The reflection on a final answer the verifier rejected.

    The verifier says only that the answer is wrong, and its gold answer must not leak
    into the thought. When the step itself holds a false arithmetic claim, the thought
    names it with its right value (exact arithmetic: never a false "is false"), so a
    model trained on it learns to check, not only to doubt; otherwise it doubts.
    """
    why = checked_step(step) or "that does not seem right"
    return f"{opener} I got {answer or 'that'}, but {why}."


def checked_step(step: str) -> str | None:
    """What checking a step's arithmetic finds, in words: its first false claim with the
    right value; None when every claim it makes holds (or it makes none)."""
    false = check_claims(step).false_claims
    return f"checking the step, {false[0].correction}" if false else None


def way_back(to_step: int) -> str:
    """The sentence that ends a reflection by going back to step `to_step` (from 1), or
    starting over from the problem when it is 0."""
    if to_step == 0:
        return "Let me start over."
    return f"Let me go back to step {to_step} and try another way."


@dataclass(frozen=True)
class LongThoughtWriter:
    """Writes the long-thought transcript and the shortcut of a session."""

    vary_openers: bool = True
    """Rotate "Wait," / "Hmm," / "Hold on," so reflections do not all start alike."""
    include_reasoning: bool = False
    """Put the policy's thoughts (a reasoning model's) before each of its steps."""
    own_reflections: bool = False
    """Write a reflect or backtrack the policy applied with its critique as it is: the
    critique is already the solver's own reflection (an expansion's "Wait, step 2 is
    wrong: ..."), so no opener or "step k is wrong" is added to it."""

    def write(self, events: Sequence[SessionEvent]) -> str:
        """The long thought of one session, from its event log in dialogue order."""
        steps: dict[int, PolicyStepProposed] = {}
        lines: list[str] = []
        reflections = 0
        for event in events:
            if isinstance(event, PolicyStepProposed):
                steps[event.node_id] = event
                if self.include_reasoning and event.reasoning:
                    lines.append(event.reasoning)
                lines.append(step_line(event.step_number, event.content))
            elif isinstance(event, ActionApplied) and isinstance(event.action, Reflect | Backtrack):
                step = steps.get(event.node_id)
                if step is None:
                    continue
                critique = getattr(event.action, "critique", "")
                if self.own_reflections and event.source is Role.POLICY and critique:
                    lines.append(critique)
                    continue
                opener = reflection_opener(reflections, vary=self.vary_openers)
                reflections += 1
                lines.append(self._reflection(opener, step, event))
            elif isinstance(event, SessionEnded) and event.final_node_id is not None:
                final = steps.get(event.final_node_id)
                if final is not None and "\\boxed" not in final.content and event.final_answer:
                    lines.append(f"So the final answer is \\boxed{{{event.final_answer}}}.")
        return "\n\n".join(lines)

    @staticmethod
    def _reflection(opener: str, step: PolicyStepProposed, applied: ActionApplied) -> str:
        k = step.step_number
        action = applied.action
        if applied.source is Role.VERIFIER:
            doubt = rejected_answer(opener, step.final_answer, step.content)
            return f"{doubt} Let me check step {k} again."
        critique = first_person(getattr(action, "critique", "") or "")
        why = f" {critique}" if critique else ""
        if isinstance(action, Backtrack):
            return f"{opener} step {k} is wrong.{why} {way_back(action.to_step)}"
        return f"{opener} step {k} is wrong.{why} Let me redo step {k}."

    @staticmethod
    def shortcut(tree: ReasoningTree, final_node_id: int | None) -> str | None:
        """The path from the problem to the accepted answer, nothing else; None if none."""
        if final_node_id is None:
            return None
        return step_paragraphs((n.depth, n.text) for n in tree.path(final_node_id)[1:])
