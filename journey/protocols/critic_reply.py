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
- Verdict stated as unknown (`VERDICT: unknown`, "uncertain", "cannot tell", a JSON
  `"verdict": "unknown"`): the label stays unknown with source `none`, whatever the
  action, and no verdict is read from words elsewhere; the action stands.
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

The fields are read in `_critic_fields` (sources, in order), `_critic_json` (the JSON
object) and `_critic_words` (verdict and action words); the repairs that need a
reply's fields together (missing, illegal and inconsistent ones) are made here.
"""

from __future__ import annotations

from dataclasses import dataclass

from journey.protocols._critic_fields import read_critic_fields
from journey.protocols._critic_words import (
    MAX_FALLBACK_REASON_CHARS,
    MAX_REASON_CHARS,
    CriticFields,
    trim,
)
from journey.protocols._reply_text import clean_chat, quote, violation
from journey.protocols.actions import Action, ActionName, Backtrack, Continue, Reflect, Terminate
from journey.protocols.messages import LabelSource, ProtocolViolation, StepVerdict

__all__ = [
    "MAX_FALLBACK_REASON_CHARS",
    "MAX_REASON_CHARS",
    "ParsedVerdict",
    "parse_critic_reply",
]


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
    fields, rest = read_critic_fields(text, violations)
    reason = fields.reason if fields.reason is not None else _fallback_reason(rest)
    if fields.verdict is StepVerdict.UNKNOWN and fields.action is None:
        detail = "the reply is empty" if not text else f"no verdict or action in {quote(text)}"
        violations.append(violation("unparseable_verdict", detail, False))
        return ParsedVerdict(StepVerdict.UNKNOWN, None, reason, tuple(violations), LabelSource.NONE)
    if fields.action is None:
        action: Action = _fallback_action(fields.verdict, reason, violations)
    else:
        action = _build_action(fields, reason, current_step, violations)
    if fields.stated_unknown:  # the critic could not judge: so be it, whatever it does next
        return ParsedVerdict(
            StepVerdict.UNKNOWN, action, reason, tuple(violations), LabelSource.NONE
        )
    verdict, action, source = _reconcile(fields.verdict, action, reason, violations)
    return ParsedVerdict(verdict, action, reason, tuple(violations), source)


def _fallback_reason(rest: str) -> str:
    """The rest of the reply as the reason; nothing from a broken JSON object."""
    if rest.lstrip().startswith("{"):
        return ""
    return trim(rest, MAX_FALLBACK_REASON_CHARS)


def _build_action(
    fields: CriticFields, reason: str, current_step: int, violations: list[ProtocolViolation]
) -> Action:
    if fields.action is ActionName.CONTINUE:
        return Continue()
    if fields.action is ActionName.REFLECT:
        return Reflect(critique=reason)
    if fields.action is ActionName.TERMINATE:
        return Terminate(answer=fields.answer, reason=reason or None)
    return Backtrack(to_step=_legal_target(fields, current_step, violations), critique=reason)


def _legal_target(
    fields: CriticFields, current_step: int, violations: list[ProtocolViolation]
) -> int:
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
