"""Tolerant, honest parsing of critic replies into protocol data.

Nothing here raises on model output. Whatever a reply gets wrong is repaired
when the intent is clear and recorded as a `ProtocolViolation` either way
(`repaired=False` means the reply could not be used and should be asked again).
Chat junk is removed silently first (see `journey.protocols._reply_text`).

Critic replies (`parse_critic_reply`), asked as `VERDICT: / ACTION: / REASON:`:

- Sources, first found wins per field: a JSON object anywhere in the reply
  (fenced or not; keys verdict/judgement/correct, action/next_action,
  backtrack_to/to_step/target/step, reason/critique/explanation, answer);
  `KEY: value` fields in any case, with markdown bold, quotes, or `-` / `=` as
  separator; then free text as a last resort: verdict words (incorrect, wrong,
  invalid, mistake, error beat correct, right, valid; negated forms such as
  "no error" or "not correct" count the other way; `inferred_verdict`,
  repaired) and an action word or "go back to step N" when exactly one action
  is named (`inferred_action`, repaired).
- Backtrack target: `backtrack 3`, `backtrack to step 3`, `BACKTRACK(3)`,
  `go back to step 3`; "the beginning" / "the start" / "the problem" is step 0.
  Missing: `current_step - 1` (`missing_backtrack_target`, repaired). Negative
  or not before the current step: `current_step - 1`
  (`illegal_backtrack_target`, repaired). The engine checks the tree again.
- `terminate: 42`, `terminate (answer: 42)` or a JSON `answer` give
  `Terminate(answer=...)`; the reason, when there is one, rides along as `reason`.
  Reflect and backtrack carry the reason as `critique`.
- Verdict known, action not: correct → `Continue`, incorrect →
  `Reflect(critique=reason)` (`missing_action`, repaired).
- Action known, verdict not: the verdict is read from the action, and its
  source says so (`critic_action`): continue → correct, reflect/backtrack →
  incorrect, terminate → unknown (`missing_verdict`, repaired).
- Verdict and action disagree: **the verdict decides the label**, and the action
  follows one conservative rule, so that a step judged incorrect never stays on
  the path: incorrect with continue → `Reflect(critique=reason)`
  (`inconsistent_action`, repaired); correct with reflect or backtrack → the
  action stands, since leaving a step is never optimistic
  (`inconsistent_verdict`, repaired: the step is labelled correct, and left).
- Neither recoverable: verdict unknown, action None (`unparseable_verdict`,
  not repaired); the caller asks again.
- A reasoning model's thoughts are never read (see `journey.protocols.reasoning`):
  a verdict quoted in them does not count; thoughts cut off before any answer
  leave an empty reply (`unparseable_verdict`).
- Reason: the REASON field (or JSON reason), else the rest of the reply with
  the fields and JSON removed, trimmed to about `MAX_FALLBACK_REASON_CHARS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from journey.protocols._reply_text import WHITESPACE, clean_chat, quote, violation
from journey.protocols.actions import Action, ActionName, Backtrack, Continue, Reflect, Terminate
from journey.protocols.answers import extract_final_answer
from journey.protocols.messages import LabelSource, ProtocolViolation, StepVerdict

__all__ = [
    "MAX_FALLBACK_REASON_CHARS",
    "MAX_REASON_CHARS",
    "ParsedVerdict",
    "parse_critic_reply",
]

MAX_REASON_CHARS = 1000
"""An explicit REASON is cut at this length."""
MAX_FALLBACK_REASON_CHARS = 300
"""A reason taken from the rest of the reply is cut at this length."""
_MAX_JSON_ATTEMPTS = 32
_MAX_TERMINATE_ANSWER_CHARS = 60

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
_VERDICT_WORD = re.compile(
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
_TARGET = re.compile(
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
_JSON_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)

_JSON_VERDICT_KEYS = ("verdict", "judgement", "judgment", "assessment", "evaluation", "label")
_JSON_CORRECT_KEYS = ("correct", "iscorrect", "valid", "isvalid", "stepcorrect")
_JSON_ACTION_KEYS = ("action", "nextaction", "decision")
_JSON_TARGET_KEYS = ("backtrackto", "tostep", "target", "targetstep", "backtrackstep")
_JSON_STEP_KEYS = ("step",)
_JSON_REASON_KEYS = ("reason", "critique", "explanation", "rationale", "feedback", "reasoning")
_JSON_ANSWER_KEYS = ("answer", "finalanswer")
_JSON_KEYS = frozenset(
    _JSON_VERDICT_KEYS
    + _JSON_CORRECT_KEYS
    + _JSON_ACTION_KEYS
    + _JSON_TARGET_KEYS
    + _JSON_STEP_KEYS
    + _JSON_REASON_KEYS
    + _JSON_ANSWER_KEYS
)


@dataclass(frozen=True)
class ParsedVerdict:
    """One critic reply: its verdict on the step, the action it chose, and why."""

    verdict: StepVerdict
    """UNKNOWN when no verdict could be recovered."""
    action: Action | None
    """None when no action could be recovered: the caller should ask again."""
    reason: str
    violations: tuple[ProtocolViolation, ...]
    source: LabelSource = LabelSource.CRITIC
    """`critic` for a stated verdict, `critic_action` for one read from the action,
    `none` when the verdict is unknown."""


@dataclass
class _Fields:
    """What a reply states, before any repair."""

    verdict: StepVerdict = StepVerdict.UNKNOWN
    action: ActionName | None = None
    target: int | None = None
    answer: str | None = None
    reason: str | None = None
    reason_from_json: bool = False


def parse_critic_reply(reply: str, *, current_step: int) -> ParsedVerdict:
    """Read a critic's verdict, action and reason (rules in the module docstring).

    Args:
        reply: The model's reply, verbatim.
        current_step: The number of the step being judged (its depth in the tree).

    Returns:
        The verdict, the action (None when unrecoverable), the reason and every
        protocol violation found.
    """
    text = clean_chat(reply)
    violations: list[ProtocolViolation] = []
    fields, rest = _read_fields(text, violations)
    reason = fields.reason if fields.reason is not None else _fallback_reason(rest)
    if fields.verdict is StepVerdict.UNKNOWN and fields.action is None:
        detail = "the reply is empty" if not text else f"no verdict or action in {quote(text)}"
        violations.append(violation("unparseable_verdict", detail, False))
        return ParsedVerdict(StepVerdict.UNKNOWN, None, reason, tuple(violations), LabelSource.NONE)
    if fields.action is None:
        action: Action = _fallback_action(fields.verdict, reason, violations)
    else:
        action = _build_action(fields, reason, current_step, violations)
    verdict, action, source = _reconcile(fields.verdict, action, reason, violations)
    return ParsedVerdict(verdict, action, reason, tuple(violations), source)


def _read_fields(text: str, violations: list[ProtocolViolation]) -> tuple[_Fields, str]:
    """The fields stated in JSON, then `KEY: value` lines, then free text; and the rest."""
    fields = _Fields()
    rest = text
    json_object, json_span = _find_json_object(text)
    if json_object is not None:
        _fields_from_json(json_object, fields)
        rest = text[: json_span[0]] + " " + text[json_span[1] :]
    rest = _fields_from_lines(rest, fields)
    # The free text is the rest of the reply, and a reason given in JSON.
    evidence = f"{rest}\n{fields.reason}" if fields.reason_from_json else rest
    if fields.verdict is StepVerdict.UNKNOWN:
        inferred, word = _free_text_verdict(evidence)
        if inferred is not StepVerdict.UNKNOWN:
            fields.verdict = inferred
            detail = f"no VERDICT field; read {inferred} from the word {quote(word)}"
            violations.append(violation("inferred_verdict", detail))
    if fields.action is None:
        _free_text_action(evidence, fields, violations)
    return fields, _JSON_FENCE.sub(" ", rest)


# -- JSON --------------------------------------------------------------------------------


def _find_json_object(text: str) -> tuple[dict[str, object] | None, tuple[int, int]]:
    """The first JSON object in `text` with a key this parser knows, and its span."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    attempts = 0
    while start != -1 and attempts < _MAX_JSON_ATTEMPTS:
        attempts += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # half JSON, or nesting too deep to decode
            value, end = None, start
        if isinstance(value, dict):
            normalised = _normalise_keys(value)
            if _JSON_KEYS & normalised.keys():
                return normalised, (start, end)
        start = text.find("{", start + 1)
    return None, (0, 0)


def _normalise_keys(obj: dict[object, object]) -> dict[str, object]:
    return {re.sub(r"[^a-z]", "", str(key).lower()): value for key, value in obj.items()}


def _fields_from_json(obj: dict[str, object], fields: _Fields) -> None:
    action_value = _first_value(obj, _JSON_ACTION_KEYS)
    if isinstance(action_value, dict):  # {"action": {"type": "backtrack", "to_step": 2}}
        nested = _normalise_keys(action_value)
        obj = {**nested, **obj}
        action_value = _first_value(nested, ("type", "name", "kind", *_JSON_ACTION_KEYS))
    fields.verdict = _json_verdict(obj)
    if isinstance(action_value, str):
        _apply_action_text(action_value, fields)
    target = _json_int(_first_value(obj, _JSON_TARGET_KEYS))
    if target is None and fields.target is None:
        target = _json_int(_first_value(obj, _JSON_STEP_KEYS))
    if target is not None:
        fields.target = target
    answer = _first_value(obj, _JSON_ANSWER_KEYS)
    if isinstance(answer, str | int | float) and not isinstance(answer, bool):
        fields.answer = _clean_answer(str(answer)) or fields.answer
    reason = _first_value(obj, _JSON_REASON_KEYS)
    if isinstance(reason, str) and reason.strip():
        fields.reason = _trim(reason, MAX_REASON_CHARS)
        fields.reason_from_json = True


def _first_value(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _json_verdict(obj: dict[str, object]) -> StepVerdict:
    value = _first_value(obj, _JSON_VERDICT_KEYS)
    if isinstance(value, str):
        verdict = _field_verdict(value)
        if verdict is not StepVerdict.UNKNOWN:
            return verdict
    if isinstance(value, bool):
        return StepVerdict.CORRECT if value else StepVerdict.INCORRECT
    flag = _first_value(obj, _JSON_CORRECT_KEYS)
    if isinstance(flag, bool):
        return StepVerdict.CORRECT if flag else StepVerdict.INCORRECT
    if isinstance(flag, str):
        return _field_verdict(flag)
    return StepVerdict.UNKNOWN


def _json_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _TARGET.match(value)
        if match is not None:
            return _target_number(match)
    return None


# -- KEY: value fields -------------------------------------------------------------------


def _fields_from_lines(text: str, fields: _Fields) -> str:
    """Fill what `fields` lacks from `KEY: value` fields; return `text` without VERDICT and
    ACTION fields, used or not (a template copied back is no free text to read words from).
    """
    if fields.verdict is StepVerdict.UNKNOWN:
        for match in _VERDICT_FIELD.finditer(text):
            verdict = _field_verdict(_field_value(match))
            if verdict is not StepVerdict.UNKNOWN:
                fields.verdict = verdict
                break
    if fields.action is None:
        for match in _ACTION_FIELD.finditer(text):
            if _apply_action_text(_field_value(match), fields):
                break
    reason = _REASON_FIELD.search(text)
    if fields.reason is None and reason is not None and _field_value(reason).strip():
        fields.reason = _trim(_field_value(reason), MAX_REASON_CHARS)
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


def _field_verdict(value: str) -> StepVerdict:
    """The verdict a field's value states: its first verdict word decides."""
    if _VERDICT_CHOICE.search(value) is not None:
        return StepVerdict.UNKNOWN
    match = _VERDICT_WORD.search(value)
    if match is None:
        yes_no = _FIELD_YES_NO.match(value)
        if yes_no is None:
            return StepVerdict.UNKNOWN
        return StepVerdict.CORRECT if yes_no.group("pos") else StepVerdict.INCORRECT
    return StepVerdict.INCORRECT if match.group("neg") else StepVerdict.CORRECT


# -- free text ---------------------------------------------------------------------------


def _free_text_verdict(text: str) -> tuple[StepVerdict, str]:
    """Any negative word makes it incorrect; otherwise any positive word makes it correct.

    Returns the verdict and the word that decided it ("" when none did).
    """
    positive = ""
    for match in _VERDICT_WORD.finditer(text):
        if match.group("neg"):
            return StepVerdict.INCORRECT, match.group(0)
        positive = positive or match.group(0)  # a positive word, or "no error"
    return (StepVerdict.CORRECT, positive) if positive else (StepVerdict.UNKNOWN, "")


def _free_text_action(text: str, fields: _Fields, violations: list[ProtocolViolation]) -> None:
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
    _read_action_arguments(name, match.group(0), tail, fields)
    violations.append(violation("inferred_action", f"read {name} from {quote(match.group(0))}"))


# -- actions -----------------------------------------------------------------------------


def _apply_action_text(value: str, fields: _Fields) -> bool:
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
    _read_action_arguments(name, word, value[match.end() :], fields)
    return True


def _read_action_arguments(name: ActionName, word: str, tail: str, fields: _Fields) -> None:
    if name is ActionName.BACKTRACK:
        if _RESTART.fullmatch(word):
            fields.target = 0
            return
        target = _TARGET.match(tail)
        if target is not None:
            fields.target = _target_number(target)
    elif name is ActionName.TERMINATE:
        answer = _TERMINATE_ANSWER.match(tail)
        if answer is not None:
            fields.answer = _terminate_answer(answer.group("answer")) or fields.answer


def _target_number(match: re.Match[str]) -> int:
    number = match.group("number")
    return 0 if number is None else int(number.replace("−", "-"))


def _terminate_answer(text: str) -> str | None:
    """The answer after `terminate:`; None when it reads as prose ("the step is correct")."""
    answer = _clean_answer(text)
    if answer is None or extract_final_answer(text) is not None:
        return answer
    if len(answer) > _MAX_TERMINATE_ANSWER_CHARS or len(answer.split()) > 4:
        return None
    return None if _VERDICT_WORD.search(answer) else answer


def _clean_answer(text: str) -> str | None:
    boxed = extract_final_answer(text)
    if boxed is not None:
        return boxed
    answer = text.strip().rstrip(")").strip().strip("\"'`*").strip().removesuffix(".").strip()
    answer = answer.strip("$").strip()
    return answer or None


def _fallback_reason(rest: str) -> str:
    """The rest of the reply as the reason; nothing from a broken JSON object."""
    if rest.lstrip().startswith("{"):
        return ""
    return _trim(rest, MAX_FALLBACK_REASON_CHARS)


def _build_action(
    fields: _Fields, reason: str, current_step: int, violations: list[ProtocolViolation]
) -> Action:
    if fields.action is ActionName.CONTINUE:
        return Continue()
    if fields.action is ActionName.REFLECT:
        return Reflect(critique=reason)
    if fields.action is ActionName.TERMINATE:
        return Terminate(answer=fields.answer, reason=reason or None)
    return Backtrack(to_step=_legal_target(fields, current_step, violations), critique=reason)


def _legal_target(fields: _Fields, current_step: int, violations: list[ProtocolViolation]) -> int:
    default = max(current_step - 1, 0)
    if fields.target is None:
        violations.append(
            violation("missing_backtrack_target", f"no step to return to; read as {default}")
        )
        return default
    if fields.target < 0 or fields.target >= current_step:
        violations.append(
            violation(
                "illegal_backtrack_target",
                f"backtrack to step {fields.target} from step {current_step}; read as {default}",
            )
        )
        return default
    return fields.target


def _fallback_action(
    verdict: StepVerdict, reason: str, violations: list[ProtocolViolation]
) -> Action:
    action: Action = Continue() if verdict is StepVerdict.CORRECT else Reflect(critique=reason)
    violations.append(
        violation("missing_action", f"no action given; verdict {verdict} read as {action.action}")
    )
    return action


def _reconcile(
    verdict: StepVerdict, action: Action, reason: str, violations: list[ProtocolViolation]
) -> tuple[StepVerdict, Action, LabelSource]:
    """The verdict, the action to apply and the label's source (rules in the module docstring).

    A stated verdict decides the label; an action only stands in for a missing one.
    """
    implied = {
        "continue": StepVerdict.CORRECT,
        "reflect": StepVerdict.INCORRECT,
        "backtrack": StepVerdict.INCORRECT,
    }.get(action.action)
    if verdict is StepVerdict.UNKNOWN:
        result = implied or StepVerdict.UNKNOWN
        violations.append(violation("missing_verdict", f"no verdict given; read as {result}"))
        source = LabelSource.NONE if implied is None else LabelSource.CRITIC_ACTION
        return result, action, source
    if verdict is StepVerdict.INCORRECT and isinstance(action, Continue):
        violations.append(
            violation(
                "inconsistent_action",
                "verdict incorrect with action continue; the verdict decides: read as reflect",
            )
        )
        return verdict, Reflect(critique=reason), LabelSource.CRITIC
    if implied is not None and implied is not verdict:
        violations.append(
            violation(
                "inconsistent_verdict",
                f"verdict {verdict} with action {action.action}; the step is labelled {verdict} "
                f"and the {action.action} stands",
            )
        )
    return verdict, action, LabelSource.CRITIC


def _trim(text: str, limit: int) -> str:
    text = WHITESPACE.sub(" ", text).strip().strip("*_").strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ", limit // 2)
    return (cut[:space] if space > 0 else cut).rstrip() + "…"
