"""The expansion format: a reference solution rewritten as numbered steps with wrong turns.

`journey expand` asks a model to turn a short reference solution into a long thought
whose mistakes are caught and corrected. The reply is read here, without any model:

- **Steps** start at a step label (`STEP_LABEL`: `Step N:`, `**Step N:**`...) at the
  start of a line and run to the next label. Text before the first label is a preamble:
  kept in the log, left out of the tree.
- **A reflection** is the tail of a step's text from the first sentence after the
  step's first one that holds a reflection marker (`REFLECTION_MARKER`: "wait",
  "hmm", "is wrong", "mistake"...) to the next step label. A marker in the step's first
  sentence ("Step 3: Hmm, 3 x 4 = 12.") is the step's own wording, not a reflection.
- **The steps a reflection names** are the numbers after "step" / "steps" in it
  ("step 2", "steps 2 and 3").

`walk_expansion` places the steps on a reasoning path and applies the **reflection
rule**, the checkable form of "every reflection follows a step that is actually
wrong": a reflection must (1) name a step already written on the path; (2) be followed
at once by that step written again, with the same number (a rewrite of the last step is
a reflect, of an earlier one a backtrack that abandons the steps after it); (3) the
rewrite must change the step's mathematics: its numbers, operators, LaTeX commands or
one-letter variables (`math_signature`). A reflection that names no step, names one
not yet written, is followed by the next step instead of a rewrite, ends the text, or
is followed by a rewrite with the same mathematics "corrects nothing" and the
expansion is rejected. Its limits: a wrong turn that lives in words alone (a misread
condition whose numbers and symbols stay the same) fails rule 3; a mistake noticed
late must be rewritten from the wrong step itself, not from an earlier one; and the
rule cannot tell a real mistake from a staged one: it checks that something was
changed, not that the first version was wrong (the final answer and the key results
are checked elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from journey.errors import ConfigError
from journey.protocols._reply_text import clean_chat
from journey.protocols.steps import STEP_LABEL
from journey.protocols.vocabulary import REFLECTION_MARKER

__all__ = [
    "CHECK_KEYS",
    "ExpansionChecks",
    "ExpansionWalk",
    "PlacedStep",
    "math_signature",
    "numbers_in",
    "parse_expansion",
    "rejection_kind",
    "walk_expansion",
]

# The kinds of rejection, the part of each reason before the colon.
NO_STEPS = "no steps"
EMPTY_STEP = "empty step"
STEPS_OUT_OF_ORDER = "steps out of order"
REFLECTION_NAMES_NO_STEP = "reflection names no step"
REFLECTION_CORRECTS_NOTHING = "reflection corrects nothing"

_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_SIGNATURE_TOKEN = re.compile(
    r"\d+(?:,\d{3})*(?:\.\d+)?|[=+\-−*/^×÷·<>≤≥%!]|\\[A-Za-z]+|(?<![A-Za-z])[b-zB-HJ-Z](?![A-Za-z])"
)
_NAMED_STEPS = re.compile(
    r"\bsteps?\s*#?\s*(?P<numbers>\d+(?:\s*(?:,|and|or|to|through|-|–)\s*\d+)*)", re.IGNORECASE
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[ \t]+|\n")


def rejection_kind(reason: str) -> str:
    """The kind of a rejection reason (`"wrong answer: 12, not 13"` → `"wrong answer"`)."""
    return reason.split(":", 1)[0]


def numbers_in(text: str) -> list[str]:
    """The numbers of a text, normalised (`1,000` and `1000.0` are `1000`), in order.

    Signs are left out (a minus is an operator), so `-3` reads as `3`.
    """
    found: list[str] = []
    for match in _NUMBER.finditer(text):
        try:
            value = Decimal(match.group().replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
            continue
        found.append(format(value.normalize(), "f"))
    return found


def math_signature(text: str) -> tuple[str, ...]:
    """What a step says mathematically: its numbers (normalised), operators, LaTeX
    commands and one-letter variables, in order; words and spacing do not count."""
    tokens: list[str] = []
    for token in _SIGNATURE_TOKEN.findall(text):
        numbers = numbers_in(token) if token[0].isdigit() else []
        tokens.append(numbers[0] if numbers else token.replace("−", "-"))
    return tuple(tokens)


@dataclass(frozen=True)
class ExpansionChecks:
    """What an expansion must satisfy besides its final answer; recorded in each session's
    `problem_posed` config as `expand_*` keys."""

    min_reflections: int = field(
        default=1,
        metadata={"help": "Reject an expansion with fewer wrong turns caught and corrected."},
    )
    key_share: float = field(
        default=0.75,
        metadata={
            "help": "Share of the reference's intermediate numbers (those not in the problem) "
            "that the expansion's final path must contain."
        },
    )
    min_length: float = field(
        default=1.5,
        metadata={
            "help": "Reject an expansion shorter than this multiple of the reference "
            "(in characters)."
        },
    )
    max_length: float = field(
        default=40.0,
        metadata={"help": "Reject an expansion longer than this multiple of the reference."},
    )

    def __post_init__(self) -> None:
        if self.min_reflections < 0:
            raise ConfigError(f"min_reflections must be 0 or more, got {self.min_reflections!r}")
        if not 0.0 <= self.key_share <= 1.0:
            raise ConfigError(f"key_share must be between 0 and 1, got {self.key_share!r}")
        if not 0.0 < self.min_length <= self.max_length:
            raise ConfigError(
                "length multiples must satisfy 0 < min <= max, got "
                f"min={self.min_length!r}, max={self.max_length!r}"
            )

    def record(self) -> dict[str, Any]:
        """The checks as session config keys (`expand_min_reflections`...)."""
        return {f"expand_{name}": getattr(self, name) for name in CHECK_KEYS}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExpansionChecks:
        """The checks a session config records; defaults for the keys it lacks.

        Raises:
            ConfigError: a value is out of range or of the wrong type.
        """
        values = {
            name: config[f"expand_{name}"] for name in CHECK_KEYS if f"expand_{name}" in config
        }
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"bad expansion check settings {values!r}: {error}") from None


CHECK_KEYS = ("min_reflections", "key_share", "min_length", "max_length")
"""The fields of `ExpansionChecks`, each recorded as `expand_<name>`."""


@dataclass(frozen=True)
class _Step:
    number: int
    text: str
    block: str
    """The step as written, label, reflection and all."""
    reflection: str


@dataclass(frozen=True)
class PlacedStep:
    """One step of an expansion, placed on its reasoning path."""

    index: int
    """Its position among the expansion's steps, in the order written (from 0)."""
    number: int
    """Its step number: its depth on the path."""
    text: str
    """The step without its label and without the reflection after it."""
    block: str
    """The step as written: label, text and the reflection after it."""
    parent: int | None
    """The index of the step it follows; None for a first step."""
    reflection: str = ""
    """The reflection written right after it, if any."""
    back_to: int | None = None
    """The step the reflection after it writes again: its own number (a reflect) or an
    earlier one (a backtrack); None when the expansion goes on from it."""
    corrected_by: str | None = None
    """The reflection that names this step wrong and is followed by its rewrite."""
    on_final_path: bool = False


@dataclass(frozen=True)
class ExpansionWalk:
    """An expansion's steps placed on a path, and what breaks the reflection rule."""

    steps: tuple[PlacedStep, ...]
    problems: tuple[str, ...]
    """Each as `kind: detail` (`reflection corrects nothing: ...`); empty when the
    structure holds."""
    preamble: str = ""

    @property
    def final_path(self) -> list[PlacedStep]:
        return [step for step in self.steps if step.on_final_path]

    @property
    def reflections(self) -> int:
        """Reflections followed by a rewrite: the wrong turns caught and corrected."""
        return sum(step.back_to is not None for step in self.steps)

    @property
    def text(self) -> str:
        """Everything from the first step on, as written."""
        return "\n\n".join(step.block for step in self.steps)


def parse_expansion(reply: str) -> tuple[str, list[_Step]]:
    """The preamble and the steps of an expansion (the rules are in the module docstring)."""
    text = clean_chat(reply)
    labels = list(STEP_LABEL.finditer(text))
    if not labels:
        return text.strip(), []
    steps: list[_Step] = []
    for position, label in enumerate(labels):
        end = labels[position + 1].start() if position + 1 < len(labels) else len(text)
        body = text[label.end() : end].strip()
        own, reflection = _split_reflection(body)
        block = text[label.start() : end].strip()
        steps.append(_Step(int(label.group("number")), own, block, reflection))
    return text[: labels[0].start()].strip(), steps


def _split_reflection(body: str) -> tuple[str, str]:
    """A step's body cut where its reflection starts: at the first sentence after the
    first one that holds a reflection marker."""
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(body)]
    starts = [0, *breaks]
    for position, start in enumerate(starts[1:], 1):
        end = starts[position + 1] if position + 1 < len(starts) else len(body)
        if REFLECTION_MARKER.search(body[start:end]):
            return body[:start].strip(), body[start:].strip()
    return body, ""


def _named_steps(reflection: str) -> list[int]:
    return [
        int(number)
        for match in _NAMED_STEPS.finditer(reflection)
        for number in re.findall(r"\d+", match.group("numbers"))
    ]


def _quote(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def walk_expansion(reply: str) -> ExpansionWalk:
    """Read an expansion and place its steps on a path, applying the reflection rule.

    Every problem found is listed; the walk goes on past it as best it can, so a
    rejected expansion names all that is wrong with it.
    """
    preamble, written = parse_expansion(reply)
    problems: list[str] = []
    if not written:
        return ExpansionWalk((), (f"{NO_STEPS}: no line starts with 'Step 1:'",), preamble)
    placed: list[dict[str, Any]] = []
    path: list[int] = []  # indices of the steps on the current path, by depth
    pending: tuple[int, list[int]] | None = None  # (index of the reflected step, named steps)
    for index, step in enumerate(written):
        number = step.number
        if pending is not None:
            number = _rewrite(written, placed, path, pending, number, problems)
            pending = None
        if not step.text:
            problems.append(f"{EMPTY_STEP}: step {step.number} says nothing")
        if number != len(path) + 1:
            problems.append(
                f"{STEPS_OUT_OF_ORDER}: step {step.number} comes after step {len(path)}"
            )
            number = len(path) + 1
        placed.append(
            {
                "index": index,
                "number": number,
                "text": step.text,
                "block": step.block,
                "parent": path[-1] if path else None,
                "reflection": step.reflection,
            }
        )
        path.append(index)
        if step.reflection:
            named = _named_steps(step.reflection)
            if not named:
                problems.append(f"{REFLECTION_NAMES_NO_STEP}: {_quote(step.reflection)}")
            pending = (index, named)
    if pending is not None:
        problems.append(
            f"{REFLECTION_CORRECTS_NOTHING}: the text ends after the reflection on step "
            f"{placed[pending[0]]['number']}"
        )
    for index in path:
        placed[index]["on_final_path"] = True
    return ExpansionWalk(tuple(PlacedStep(**p) for p in placed), tuple(problems), preamble)


def _rewrite(
    written: list[_Step],
    placed: list[dict[str, Any]],
    path: list[int],
    pending: tuple[int, list[int]],
    number: int,
    problems: list[str],
) -> int:
    """Apply a reflection to the step written after it: a rewrite of a named step moves
    the path back before that step. Returns the depth the new step goes to."""
    reflected, named = pending
    reflection = written[reflected].reflection
    depth = len(path)
    if number > depth:
        problems.append(
            f"{REFLECTION_CORRECTS_NOTHING}: after the reflection on step {depth} comes "
            f"step {number}, not a step written again ({_quote(reflection)})"
        )
        return number
    if named and number not in named:
        names = ", ".join(map(str, named))
        problems.append(
            f"{REFLECTION_CORRECTS_NOTHING}: the reflection names step {names} but step "
            f"{number} is written again"
        )
    old = placed[path[number - 1]]
    new_text = written[len(placed)].text
    if math_signature(old["text"]) == math_signature(new_text):
        problems.append(
            f"{REFLECTION_CORRECTS_NOTHING}: step {number} is written again with the same "
            "numbers and symbols"
        )
    old["corrected_by"] = reflection
    placed[reflected]["back_to"] = number
    del path[number - 1 :]
    return number
