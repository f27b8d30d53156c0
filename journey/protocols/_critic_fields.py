"""Where a critic reply's fields come from, first found wins per field.

1. A JSON object anywhere in the reply (`_critic_json`).
2. `KEY: value` fields in any case, with markdown bold, quotes, or `-` / `=` as
   separator (VERDICT/JUDGEMENT/ASSESSMENT, ACTION/NEXT ACTION/DECISION,
   REASON/CRITIQUE/EXPLANATION...).
3. Free text, as a last resort: verdict words (a negative word beats a positive
   one; `inferred_verdict`, repaired) and an action word or "go back to step N"
   when exactly one action is named and not negated (`inferred_action`, repaired).
"""

from __future__ import annotations

import re

from journey.protocols._critic_json import fields_from_json, find_json_object
from journey.protocols._critic_words import (
    MAX_REASON_CHARS,
    VERDICT_WORD,
    CriticFields,
    apply_action_text,
    field_verdict,
    read_action_arguments,
    states_unknown,
    trim,
)
from journey.protocols._reply_text import quote, violation
from journey.protocols.actions import ActionName
from journey.protocols.messages import ProtocolViolation, StepVerdict

__all__ = ["read_critic_fields"]

_KEY_TAIL = r"(?![\w-])[\s*_\"'`]*(?:[:=]|[-–—](?=\s))[\s*_\"'`]*"
_VERDICT_FIELD = re.compile(
    r"\b(?:verdict|judge?ment|assessment|evaluation)" + _KEY_TAIL + r"(?P<value>[^\n]*)",
    re.IGNORECASE,
)
_ACTION_FIELD = re.compile(
    r"\b(?:next[ _-]?action|action|decision)" + _KEY_TAIL + r"(?P<value>[^\n]*)",
    re.IGNORECASE,
)
_REASON_FIELD = re.compile(
    r"\b(?:reason(?:ing)?|critique|explanation|rationale|feedback)" + _KEY_TAIL + r"(?P<value>.*)",
    re.IGNORECASE | re.DOTALL,
)
# Where one field's value stops: the start of another field (same key, separator ":" or "=").
_NEXT_FIELD = re.compile(
    r"(?:\*\*|\b)(?:verdict|judge?ment|assessment|evaluation|next[ _-]?action|action|decision"
    r"|reason(?:ing)?|critique|explanation|rationale|feedback)(?![\w-])[*_\"'`\s]*[:=]",
    re.IGNORECASE,
)

# In free text only the protocol's own words count, and a step to go back to.
_FREE_ACTION = re.compile(
    r"\b(?:(?P<word>continue|reflect|backtrack|terminate)(?:s|ed|ing)?\b"
    r"|(?P<back>(?:go(?:ing)?|get(?:ting)?)[ \t]+back|return(?:ing)?|revert(?:ing)?)"
    r"(?=[ \t]+to[ \t]+(?:the[ \t]+)?(?:step|beginning|start|problem)\b))",
    re.IGNORECASE,
)
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot|n[’']t|\bno|\bnever|\bcannot|\bwithout)[ \t]+(?:\w+[ \t]+){0,2}$", re.IGNORECASE
)
_JSON_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def read_critic_fields(text: str, violations: list[ProtocolViolation]) -> tuple[CriticFields, str]:
    """The fields stated in JSON, then `KEY: value` lines, then free text; and the rest."""
    fields = CriticFields()
    rest = text
    json_object, json_span = find_json_object(text)
    if json_object is not None:
        fields_from_json(json_object, fields)
        rest = text[: json_span[0]] + " " + text[json_span[1] :]
    rest = _fields_from_lines(rest, fields)
    # The free text is the rest of the reply, and a reason given in JSON.
    evidence = f"{rest}\n{fields.reason}" if fields.reason_from_json else rest
    if fields.verdict is StepVerdict.UNKNOWN and not fields.stated_unknown:
        inferred, word = _free_text_verdict(evidence)
        if inferred is not StepVerdict.UNKNOWN:
            fields.verdict = inferred
            detail = f"no VERDICT field; read {inferred} from the word {quote(word)}"
            violations.append(violation("inferred_verdict", detail))
    if fields.action is None:
        _free_text_action(evidence, fields, violations)
    return fields, _JSON_FENCE.sub(" ", rest)


# -- KEY: value fields -------------------------------------------------------------------


def _fields_from_lines(text: str, fields: CriticFields) -> str:
    """Fill what `fields` lacks from `KEY: value` fields; return `text` without VERDICT and
    ACTION fields, used or not (a template copied back is no free text to read words from).
    """
    if fields.verdict is StepVerdict.UNKNOWN and not fields.stated_unknown:
        for match in _VERDICT_FIELD.finditer(text):
            value = _field_value(match)
            verdict = field_verdict(value)
            if verdict is not StepVerdict.UNKNOWN or states_unknown(value):
                fields.verdict = verdict
                fields.stated_unknown = verdict is StepVerdict.UNKNOWN
                break
    if fields.action is None:
        for match in _ACTION_FIELD.finditer(text):
            if apply_action_text(_field_value(match), fields):
                break
    reason = _REASON_FIELD.search(text)
    if fields.reason is None and reason is not None and _field_value(reason).strip():
        fields.reason = trim(_field_value(reason), MAX_REASON_CHARS)
    spans = [
        (match.start(), match.start("value") + len(_field_value(match)))
        for pattern in (_VERDICT_FIELD, _ACTION_FIELD)
        for match in pattern.finditer(text)
    ]
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def _field_value(match: re.Match[str]) -> str:
    value = match.group("value")
    stop = _NEXT_FIELD.search(value)
    return value if stop is None else value[: stop.start()]


# -- free text ---------------------------------------------------------------------------


def _free_text_verdict(text: str) -> tuple[StepVerdict, str]:
    """Any negative word makes it incorrect; otherwise any positive word makes it correct.

    Returns the verdict and the word that decided it ("" when none did).
    """
    positive = ""
    for match in VERDICT_WORD.finditer(text):
        if match.group("neg"):
            return StepVerdict.INCORRECT, match.group(0)
        positive = positive or match.group(0)  # a positive word, or "no error"
    return (StepVerdict.CORRECT, positive) if positive else (StepVerdict.UNKNOWN, "")


def _free_text_action(text: str, fields: CriticFields, violations: list[ProtocolViolation]) -> None:
    named: dict[ActionName, re.Match[str]] = {}
    for match in _FREE_ACTION.finditer(text):
        if _NEGATION_BEFORE.search(text, max(match.start() - 40, 0), match.start()) is not None:
            continue
        word = match.group("word")
        name = ActionName(word.lower()) if word else ActionName.BACKTRACK
        named.setdefault(name, match)
    if len(named) != 1:
        return
    ((name, match),) = named.items()
    fields.action = name
    line_end = text.find("\n", match.end())
    tail = text[match.end() : len(text) if line_end == -1 else line_end]
    read_action_arguments(name, match.group(0), tail, fields)
    violations.append(violation("inferred_action", f"read {name} from {quote(match.group(0))}"))
