"""The words of a critic reply: verdicts, actions and their arguments, and reasons.

What a reply states, before any repair, is gathered in a `CriticFields`:
`field_verdict` reads a verdict where one is asked for (a VERDICT field, a JSON
value), `apply_action_text` an action with its backtrack target or final answer
(an ACTION value), and `trim` cuts a reason to length. The sources these values
come from (JSON, `KEY: value` fields, free text) are read in `_critic_fields` and
`_critic_json`; the rules that repair them, in `critic_reply`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from journey.protocols._reply_text import WHITESPACE
from journey.protocols.actions import ActionName
from journey.protocols.answers import extract_final_answer
from journey.protocols.messages import StepVerdict

__all__ = [
    "MAX_FALLBACK_REASON_CHARS",
    "MAX_REASON_CHARS",
    "TARGET",
    "VERDICT_WORD",
    "CriticFields",
    "apply_action_text",
    "clean_answer",
    "field_verdict",
    "read_action_arguments",
    "target_number",
    "trim",
]

MAX_REASON_CHARS = 1000
"""An explicit REASON is cut at this length."""
MAX_FALLBACK_REASON_CHARS = 300
"""A reason taken from the rest of the reply is cut at this length."""
_MAX_TERMINATE_ANSWER_CHARS = 60

_NEGATIVE = (
    r"incorrect(?:ly)?|wrong|invalid|mistaken|mistakes?|errors?|erroneous|flawed"
    r"|not[ \t]+(?:quite[ \t]+)?(?:correct|right|valid)"
    r"|(?:is|are|was)n[’']t[ \t]+(?:correct|right|valid)"
    r"|(?:does|do|did)n[’']t[ \t]+(?:seem|look)[ \t]+(?:correct|right|valid)"
)
_NEGATED_NEGATIVE = (
    r"(?:no|without|not|any)[ \t]+(?:an[ \t]+|any[ \t]+)?(?:errors?|mistakes?)"
    r"|not[ \t]+(?:wrong|incorrect|invalid)|nothing[ \t]+(?:is[ \t]+)?wrong|error[- ]free"
)
_POSITIVE = (
    r"correct(?:ly)?|valid"
    r"|right(?![ \t-]+(?:triangle|angle|angled|side|hand|isosceles|circular|prism|cone))"
)
VERDICT_WORD = re.compile(
    rf"\b(?:(?P<flip>{_NEGATED_NEGATIVE})|(?P<neg>{_NEGATIVE})|(?P<pos>{_POSITIVE}))\b",
    re.IGNORECASE,
)
# Only where a verdict is asked for (a VERDICT field, a JSON value) do these words count.
_FIELD_YES_NO = re.compile(
    r"^\W*(?:(?P<pos>yes|true|pass|ok)|(?P<neg>no|false|fail))\b", re.IGNORECASE
)
# A model that copies the prompt's template states no verdict.
_VERDICT_CHOICE = re.compile(r"\b(?:in)?correct\s*(?:or|\||/)\s*(?:in)?correct\b", re.IGNORECASE)

_ACTION_WORDS: dict[str, ActionName] = {
    "continue": ActionName.CONTINUE,
    "proceed": ActionName.CONTINUE,
    "move on": ActionName.CONTINUE,
    "reflect": ActionName.REFLECT,
    "revise": ActionName.REFLECT,
    "retry": ActionName.REFLECT,
    "reconsider": ActionName.REFLECT,
    "rethink": ActionName.REFLECT,
    "backtrack": ActionName.BACKTRACK,
    "go back": ActionName.BACKTRACK,
    "return": ActionName.BACKTRACK,
    "revert": ActionName.BACKTRACK,
    "restart": ActionName.BACKTRACK,
    "start over": ActionName.BACKTRACK,
    "terminate": ActionName.TERMINATE,
    "stop": ActionName.TERMINATE,
    "finish": ActionName.TERMINATE,
    "end": ActionName.TERMINATE,
}
_ACTION_WORD = re.compile(
    r"\b(?P<word>"
    + "|".join(sorted((w.replace(" ", r"[ \t]+") for w in _ACTION_WORDS), key=len, reverse=True))
    + r")(?:s|ed|ing)?\b",
    re.IGNORECASE,
)
TARGET = re.compile(
    r"^[\s:=(\[<{\"',*_-]*?(?:to[ _\t]*)?(?:the[ \t]+)?"
    r"(?:(?:step[\"'\s:=#]*)?(?P<number>[-−]?\d{1,9})\b|(?P<origin>beginning|start|problem)\b)",
    re.IGNORECASE,
)
_RESTART = re.compile(r"restart|start[ \t]+over", re.IGNORECASE)
_TERMINATE_ANSWER = re.compile(
    r"^[ \t]*(?:[:=(\-–—]|with\b)[ \t]*(?:(?:the|a)[ \t]+)?(?:final[ \t]+)?"
    r"(?:answer[ \t]*(?:is\b|[:=])?)?(?P<answer>.*)$",
    re.IGNORECASE,
)


@dataclass
class CriticFields:
    """What a reply states, before any repair."""

    verdict: StepVerdict = StepVerdict.UNKNOWN
    action: ActionName | None = None
    target: int | None = None
    answer: str | None = None
    reason: str | None = None
    reason_from_json: bool = False
    stated_unknown: bool = False
    """The verdict field says the critic could not judge ("unknown", "cannot tell"): the
    label stays unknown, never read from the action or from words elsewhere."""


# -- verdicts ----------------------------------------------------------------------------


_UNKNOWN_VERDICT = re.compile(
    r"^\W*(?:unknown|unsure|uncertain|undetermined|undecided|unclear|not\s+sure|"
    r"(?:cannot|can['’]?t|unable\s+to)\s+(?:tell|judge|determine|decide|verify|check|say))\b",
    re.IGNORECASE,
)


def states_unknown(value: str) -> bool:
    """A verdict field's value that says the critic could not judge the step."""
    return _UNKNOWN_VERDICT.match(value) is not None


def field_verdict(value: str) -> StepVerdict:
    """The verdict a field's value states: its first verdict word decides."""
    if _VERDICT_CHOICE.search(value) is not None:
        return StepVerdict.UNKNOWN
    match = VERDICT_WORD.search(value)
    if match is None:
        yes_no = _FIELD_YES_NO.match(value)
        if yes_no is None:
            return StepVerdict.UNKNOWN
        return StepVerdict.CORRECT if yes_no.group("pos") else StepVerdict.INCORRECT
    return StepVerdict.INCORRECT if match.group("neg") else StepVerdict.CORRECT


# -- actions -----------------------------------------------------------------------------


def apply_action_text(value: str, fields: CriticFields) -> bool:
    """Read an action (and its target or answer) from an ACTION value; False if none.

    A value naming three or more different actions is the prompt's template
    copied back ("continue, reflect, backtrack or terminate"), not a choice.
    """
    matches = list(_ACTION_WORD.finditer(value))
    names = {_ACTION_WORDS[WHITESPACE.sub(" ", m.group("word").lower())] for m in matches}
    if not matches or len(names) >= 3:
        return False
    match = matches[0]
    word = WHITESPACE.sub(" ", match.group("word").lower())
    name = _ACTION_WORDS[word]
    fields.action = name
    read_action_arguments(name, word, value[match.end() :], fields)
    return True


def read_action_arguments(name: ActionName, word: str, tail: str, fields: CriticFields) -> None:
    """The backtrack target or final answer in `tail`, the text after the action `word`."""
    if name is ActionName.BACKTRACK:
        if _RESTART.fullmatch(word):
            fields.target = 0
            return
        target = TARGET.match(tail)
        if target is not None:
            fields.target = target_number(target)
    elif name is ActionName.TERMINATE:
        answer = _TERMINATE_ANSWER.match(tail)
        if answer is not None:
            fields.answer = _terminate_answer(answer.group("answer")) or fields.answer


def target_number(match: re.Match[str]) -> int:
    """The step a `TARGET` match names; "the beginning" is step 0."""
    number = match.group("number")
    return 0 if number is None else int(number.replace("−", "-"))


def _terminate_answer(text: str) -> str | None:
    """The answer after `terminate:`; None when it reads as prose ("the step is correct")."""
    answer = clean_answer(text)
    if answer is None or extract_final_answer(text) is not None:
        return answer
    if len(answer) > _MAX_TERMINATE_ANSWER_CHARS or len(answer.split()) > 4:
        return None
    return None if VERDICT_WORD.search(answer) else answer


def clean_answer(text: str) -> str | None:
    """A final answer without its wrapping: boxed, quoted, bracketed or in dollars."""
    boxed = extract_final_answer(text)
    if boxed is not None:
        return boxed
    answer = text.strip().rstrip(")").strip().strip("\"'`*").strip().removesuffix(".").strip()
    answer = answer.strip("$").strip()
    return answer or None


# -- reasons -----------------------------------------------------------------------------


def trim(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to about `limit` characters."""
    text = WHITESPACE.sub(" ", text).strip().strip("*_").strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"
