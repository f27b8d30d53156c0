"""A critic reply's JSON object, the first source its fields are read from.

The first JSON object in the reply (fenced or not) with a key this parser knows
counts; keys are compared lower-cased with everything but letters removed, so
`next_action`, `nextAction` and `Next Action` are one key. Known keys:
verdict/judgement/correct, action/next_action (also a nested object such as
`{"action": {"type": "backtrack", "to_step": 2}}`), backtrack_to/to_step/target/step,
reason/critique/explanation, answer.
"""

from __future__ import annotations

import json
import re

from journey.protocols._critic_words import (
    MAX_REASON_CHARS,
    TARGET,
    CriticFields,
    apply_action_text,
    clean_answer,
    field_verdict,
    states_unknown,
    target_number,
    trim,
)
from journey.protocols.messages import StepVerdict

__all__ = ["fields_from_json", "find_json_object"]

_MAX_JSON_ATTEMPTS = 32

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


def find_json_object(text: str) -> tuple[dict[str, object] | None, tuple[int, int]]:
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


def fields_from_json(obj: dict[str, object], fields: CriticFields) -> None:
    """Fill `fields` from an object `find_json_object` found."""
    action_value = _first_value(obj, _JSON_ACTION_KEYS)
    if isinstance(action_value, dict):  # {"action": {"type": "backtrack", "to_step": 2}}
        nested = _normalise_keys(action_value)
        obj = {**nested, **obj}
        action_value = _first_value(nested, ("type", "name", "kind", *_JSON_ACTION_KEYS))
    fields.verdict = _json_verdict(obj)
    stated = _first_value(obj, _JSON_VERDICT_KEYS)
    fields.stated_unknown = (
        fields.verdict is StepVerdict.UNKNOWN and isinstance(stated, str) and states_unknown(stated)
    )
    if isinstance(action_value, str):
        apply_action_text(action_value, fields)
    target = _json_int(_first_value(obj, _JSON_TARGET_KEYS))
    if target is None and fields.target is None:
        target = _json_int(_first_value(obj, _JSON_STEP_KEYS))
    if target is not None:
        fields.target = target
    answer = _first_value(obj, _JSON_ANSWER_KEYS)
    if isinstance(answer, str | int | float) and not isinstance(answer, bool):
        fields.answer = clean_answer(str(answer)) or fields.answer
    reason = _first_value(obj, _JSON_REASON_KEYS)
    if isinstance(reason, str) and reason.strip():
        fields.reason = trim(reason, MAX_REASON_CHARS)
        fields.reason_from_json = True


def _first_value(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _json_verdict(obj: dict[str, object]) -> StepVerdict:
    value = _first_value(obj, _JSON_VERDICT_KEYS)
    if isinstance(value, str):
        verdict = field_verdict(value)
        if verdict is not StepVerdict.UNKNOWN:
            return verdict
    if isinstance(value, bool):
        return StepVerdict.CORRECT if value else StepVerdict.INCORRECT
    flag = _first_value(obj, _JSON_CORRECT_KEYS)
    if isinstance(flag, bool):
        return StepVerdict.CORRECT if flag else StepVerdict.INCORRECT
    if isinstance(flag, str):
        return field_verdict(flag)
    return StepVerdict.UNKNOWN


def _json_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = TARGET.match(value)
        if match is not None:
            return target_number(match)
    return None
