"""Typed events for everything that happens in a session.

Every event carries the session id, the turn it belongs to and the time since
the session started (replays use it for pacing). The event log on disk is one
JSON object per line, written and read back only through these models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from journey.protocols.actions import Action


class Role(StrEnum):
    POLICY = "policy"
    CRITIC = "critic"
    VERIFIER = "verifier"


class StepVerdict(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNKNOWN = "unknown"


class LabelSource(StrEnum):
    """Where a step's label comes from: the evidence behind it.

    What could not be read is `NONE` with the label `unknown`, never correct.
    """

    CRITIC = "critic"
    """The critic stated a verdict (a VERDICT field, a JSON value, or verdict words)."""
    CRITIC_ACTION = "critic_action"
    """The critic stated no verdict; it is read from the action it chose (continue:
    correct; reflect, backtrack: incorrect). Score mode always judges this way."""
    SELF_CHECK = "self_check"
    """The policy's own check of its step (propose-critique), read from its action."""
    VERIFIER = "verifier"
    """A final answer checked against the gold answer."""
    EXPANSION = "expansion"
    """A step of an accepted expansion of a reference solution (`journey expand`):
    incorrect when the expansion itself names the step wrong and writes it again;
    correct when it stands, never questioned, on the expansion's path to the verified
    answer, a path that carries the reference's key results. Weaker than a critic's
    verdict: no one judged the step on its own."""
    ROLLOUT = "rollout"
    """Math-Shepherd's estimate: the solution was completed from the step several times
    and the answers checked; correct when any completion reached the gold answer. The
    share that did is the verdict's `reward` and its `rollouts` tally. It says the step
    can still lead to the answer, not that a reader would call it right."""
    VERIFIED_PATH = "verified_path"
    """Only in exports, by the opt-in rule `credit_verified_path`: a step with no
    evidence of its own, on the path to a verified answer."""
    NONE = "none"
    """No evidence: the label is unknown."""


class LabelScoring(StrEnum):
    """How a backend scored the action labels of a verdict (its `label_scores`)."""

    SEQUENCE = "sequence"
    """The summed log-probability of every token of the label (local models, scripted
    scorers): the model's probability of writing the whole label."""
    FIRST_TOKEN = "first_token"
    """The log-probability mass of the tokens that start the label, among the top
    log-probabilities of one generated token (OpenAI-compatible servers, which return
    no more); a label none of whose first tokens is among them scores -100. It equals
    `sequence` where each label's first token decides it."""


class StopReason(StrEnum):
    VERIFIED_ANSWER = "verified_answer"
    """The verifier accepted a final answer against the gold answer."""
    ANSWER_ACCEPTED = "answer_accepted"
    """No gold answer: the critic accepted a final answer."""
    CRITIC_TERMINATED = "critic_terminated"
    """The critic stopped the session without an accepted answer."""
    MAX_TURNS = "max_turns"
    MAX_DEPTH = "max_depth"
    MAX_TOKENS = "max_tokens"
    MODEL_ERROR = "model_error"
    """A backend kept failing after its retries."""
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    SOLVED = "solved"
    """Ended on a final answer the verifier accepted."""
    UNVERIFIED = "unverified"
    """Ended on a final answer that nothing could check (no gold answer)."""
    FAILED = "failed"
    """Ended without an accepted answer."""
    ERROR = "error"


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class ProtocolViolation(BaseModel):
    """A reply that did not follow the protocol, and what was done about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="Short machine-readable name, e.g. 'unparseable_action'.")
    detail: str = Field(description="What was wrong, quoting the reply where useful.")
    repaired: bool = Field(description="True when the reply was repaired and used.")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    turn: int = Field(ge=0, description="Policy turn the event belongs to (0 before the first).")
    time: float = Field(ge=0, description="Seconds since the session started.")


class ProblemPosed(_Event):
    type: Literal["problem_posed"] = "problem_posed"
    problem: str
    gold_answer: str | None = None
    strategy: str = "debate"
    models: dict[str, str] = Field(default_factory=dict, description="Model spec per role.")
    config: dict[str, Any] = Field(default_factory=dict)


class PolicyStepProposed(_Event):
    type: Literal["policy_step"] = "policy_step"
    node_id: int
    parent_id: int
    step_number: int = Field(ge=1, description="Position of the step on its path (depth).")
    content: str = Field(description="The step as it enters the tree, label stripped.")
    raw: str = Field(description="The model's reply, verbatim.")
    reasoning: str = Field(
        default="", description="The model's thoughts before its answer (a reasoning model)."
    )
    final_answer: str | None = None
    violations: list[ProtocolViolation] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency: float = 0.0


_LEGACY_REWARD_LABEL = "reward"


class RolloutTally(BaseModel):
    """How many completions from a step reached the gold answer (Math-Shepherd)."""

    model_config = ConfigDict(frozen=True)

    samples: int = Field(ge=0)
    correct: int = Field(ge=0)
    """Completions whose final answer the verifier accepted."""
    unanswered: int = Field(default=0, ge=0)
    """Completions that gave no final answer (or failed): counted in `samples`, never correct."""

    @model_validator(mode="after")
    def _within_samples(self) -> RolloutTally:
        if self.correct + self.unanswered > self.samples:
            raise ValueError("a rollout tally counts more completions than it sampled")
        return self

    @property
    def value(self) -> float | None:
        """The soft estimate: the share of completions that reached the answer."""
        return round(self.correct / self.samples, 6) if self.samples else None


class CriticVerdictGiven(_Event):
    type: Literal["critic_verdict"] = "critic_verdict"
    node_id: int
    verdict: StepVerdict
    source: LabelSource = Field(
        default=LabelSource.CRITIC,
        description="The evidence behind the verdict; `none` whenever the verdict is unknown.",
    )
    reason: str
    action: Action
    raw: str = ""
    reasoning: str = Field(
        default="", description="The critic's thoughts before its answer (a reasoning model)."
    )
    label_scores: dict[str, float] | None = Field(
        default=None,
        description="Score per action label when the action was scored (log-probability, "
        "calibrated against a content-free step unless calibration was off).",
    )
    label_scoring: LabelScoring | None = Field(
        default=None,
        description="How `label_scores` were computed; None when the action was not "
        "scored, and in logs written before it was recorded.",
    )
    reward: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="The step's reward in [0, 1], where the strategy ranks steps by one "
        "(beam search) or the judge estimates one (rollouts); None where neither does.",
    )
    rollouts: RolloutTally | None = Field(
        default=None, description="The completions behind a rollout judge's verdict."
    )
    violations: list[ProtocolViolation] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _reward_out_of_label_scores(cls, data: Any) -> Any:
        """Logs written before `reward` had its own field carried a beam step's reward
        as `label_scores["reward"]`; read it into `reward`, out of the label scores."""
        if not isinstance(data, dict):
            return data
        scores = data.get("label_scores")
        if isinstance(scores, dict) and _LEGACY_REWARD_LABEL in scores:
            scores = dict(scores)
            legacy = scores.pop(_LEGACY_REWARD_LABEL)
            data = {**data, "label_scores": scores or None}
            data.setdefault("reward", legacy)
        return data

    @model_validator(mode="after")
    def _unknown_has_no_source(self) -> CriticVerdictGiven:
        if self.verdict is StepVerdict.UNKNOWN:
            self.source = LabelSource.NONE
        return self


class VerifierChecked(_Event):
    type: Literal["verifier_result"] = "verifier_result"
    node_id: int
    predicted: str
    gold: str
    correct: bool
    score: float | None = Field(
        default=None, description="The dataset scorer's score (0 to 1); None: math-verify."
    )
    scorer: str | None = Field(
        default=None,
        description="What checked the answer: the dataset's scorer (e.g. "
        "rg:basic_arithmetic); None: math-verify, as in every log before this field.",
    )


def wrong_answer_note(answer: str | None) -> str:
    """The note a verifier's rejection leaves: the node's reason and the critique of the
    reflect it causes. Writers tell it from a critic's critique by comparing with it."""
    return f"the final answer {answer} is incorrect."


class ExpansionRejected(_Event):
    """An expansion of the reference solution that failed its checks (`journey expand`):
    logged with every reason, counted, and tried again while attempts are left."""

    type: Literal["expansion_rejected"] = "expansion_rejected"
    attempt: int = Field(ge=1, description="Which attempt of the session, from 1.")
    reasons: list[str] = Field(
        description="Each failed check as `kind: detail`, e.g. `wrong answer: 13, not 12`."
    )
    raw: str = Field(description="The model's reply, verbatim.")
    reasoning: str = Field(
        default="", description="The model's thoughts before its answer (a reasoning model)."
    )
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency: float = 0.0


class ActionApplied(_Event):
    type: Literal["action_applied"] = "action_applied"
    node_id: int = Field(description="The node the action was decided on.")
    action: Action
    cursor_id: int = Field(description="The node the current path ends at afterwards.")
    source: Role
    note: str = ""


class SessionEnded(_Event):
    type: Literal["session_ended"] = "session_ended"
    stop_reason: StopReason
    outcome: Outcome
    final_answer: str | None = None
    final_node_id: int | None = None
    usage: dict[Role, TokenUsage] = Field(default_factory=dict)
    violations: int = 0
    backtracks: int = 0
    reflections: int = 0
    error: str | None = None


SessionEvent = Annotated[
    ProblemPosed
    | PolicyStepProposed
    | CriticVerdictGiven
    | VerifierChecked
    | ActionApplied
    | ExpansionRejected
    | SessionEnded,
    Field(discriminator="type"),
]

_event_adapter: TypeAdapter[SessionEvent] = TypeAdapter(SessionEvent)


def event_to_json(event: SessionEvent) -> str:
    """One event as a single JSON line (no trailing newline)."""
    return event.model_dump_json()


def event_from_json(line: str | bytes) -> SessionEvent:
    """Parse one JSON line back into its event type; raises pydantic.ValidationError."""
    return _event_adapter.validate_json(line)
