"""Expand: the policy turns a reference solution into a long thought with wrong turns.

The seed's best data came from short human solutions that a model expanded into
journey-style reasoning, kept faithful to the human solution. A session here asks the
policy's model for the whole expansion at once (`journey.agents.expander`), reads it
(`journey.protocols.expansion`) and checks it (`journey.sessions.expansion_checks`). A
rejected attempt is logged as an `expansion_rejected` event with every reason, and the
model tries again, shown its attempt and the reasons, until an attempt passes or the
attempts (the limits' `max_turns`; each attempt is a turn) or tokens (`max_tokens`)
run out: then the session ends `failed`. Depth is not limited: the length check bounds
an expansion instead.

An accepted expansion becomes the session's tree through the usual events, so replay,
stats, browse, export and the long-thought writer take it unchanged:

- each step, in the order written, is a `policy_step`; the first carries the whole reply
  (`raw`), its thoughts and its usage, the others their own text;
- each step gets a `critic_verdict` with the source `expansion`, labelled with
  hindsight, from what the expansion itself says: `incorrect` for a step a later
  reflection names and rewrites (its reason is that reflection), `correct` for a step
  on the final path, `unknown` for a step abandoned with a wrong one but never named;
  its action is what the expansion did next, applied with `source=policy`: `continue`,
  `reflect` (the reflection rewrites this step, the reflection as its critique) or
  `backtrack k` (it rewrites step k + 1, an earlier one). A step named wrong only some
  steps later is thus labelled `incorrect` though the expansion went on from it then;
- the last step carries the final answer: the verifier checks it (`verifier_result`)
  and its `terminate` ends the session `solved`.

A session whose problem has no reference solution (in `problem_posed`'s `meta`, under
the `expand_solution_field` config key) ends `failed` at once, its `error` saying so;
`journey expand` leaves such problems out and counts them instead. A session cut off
while its accepted expansion was being logged is restored by reading that expansion
again from the first step's `raw` and logging the rest of its events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from journey.agents import PolicyAgent
from journey.agents.expander import ExpansionReply, ExpansionWriter, expansion_prompts
from journey.agents.prompt_sets import PromptSet
from journey.errors import ConfigError, error_line
from journey.problems.reference import ReferenceSolution, reference_solution
from journey.protocols import (
    Action,
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    ExpansionRejected,
    LabelSource,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    Terminate,
    TokenUsage,
    VerifierChecked,
)
from journey.protocols.expansion import (
    CHECK_KEYS,
    ExpansionChecks,
    ExpansionWalk,
    PlacedStep,
    walk_expansion,
)
from journey.sessions._debate_actions import action_note
from journey.sessions.base import RestoreError, Session, SessionLimits, SessionStop
from journey.sessions.expansion_checks import check_expansion, final_answer
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import MaxTokens, MaxTurns, SessionProgress, StopCondition

__all__ = ["ExpandSession", "expand_config"]

SOLUTION_FIELD_KEY = "expand_solution_field"
PROMPT_KEY = "expand_prompt"
PROMPT_HASH_KEY = "expand_prompt_sha256"
DEFAULT_SOLUTION_FIELD = "solution"


def expand_config(
    *,
    solution_field: str = DEFAULT_SOLUTION_FIELD,
    prompt: Path | str | None = None,
    checks: ExpansionChecks | None = None,
) -> dict[str, Any]:
    """The strategy settings of an expand run, as each session's config records them.

    Raises:
        ConfigError: the prompt file cannot be read or lacks a template.
    """
    config: dict[str, Any] = {SOLUTION_FIELD_KEY: solution_field}
    if prompt is not None:
        expansion_prompts(prompt)  # refused now rather than in every session
        config[PROMPT_KEY] = str(Path(prompt).absolute())  # a resume may run elsewhere
        config[PROMPT_HASH_KEY] = _digest(prompt)
    return {**config, **(checks or ExpansionChecks()).record()}


def _digest(path: Path | str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read prompt file {str(path)!r}: {error}") from None


def _prompts_of(config: Mapping[str, Any]) -> PromptSet:
    """The prompts a session config names; the file must be the one the run started with."""
    path = config.get(PROMPT_KEY)
    if path is None:
        return expansion_prompts()
    digest = config.get(PROMPT_HASH_KEY)
    if digest is not None and _digest(path) != digest:
        raise ConfigError(f"prompt file {path!r} has changed since the run started")
    return expansion_prompts(path)


class ExpandSession(Session):
    """One expansion of one problem's reference solution.

    Args:
        problem: The problem statement.
        policy: The policy agent: its model, token limit and temperature write the
            expansions.
        **settings: As `Session`'s; `config` holds the `expand_*` settings
            (`expand_config`) and the problem's `meta`, where the reference is.

    It asks no critic (`roles`), so it keeps none, whatever it is given (see `Session`).
    """

    strategy: ClassVar[str] = "expand"
    summary: ClassVar[str] = (
        "the policy expands a reference solution into a long thought whose wrong turns "
        "are corrected, checked against the reference"
    )
    roles: ClassVar[frozenset[Role]] = frozenset({Role.POLICY})
    config_keys: ClassVar[frozenset[str]] = frozenset(
        {SOLUTION_FIELD_KEY, PROMPT_KEY, PROMPT_HASH_KEY, *(f"expand_{k}" for k in CHECK_KEYS)}
    )

    def __init__(self, problem: str, *, policy: PolicyAgent, **settings: Any) -> None:
        super().__init__(problem, policy=policy, **settings)
        self.checks = ExpansionChecks.from_config(self.config)
        self.writer = ExpansionWriter.from_policy(policy, _prompts_of(self.config))
        field = str(self.config.get(SOLUTION_FIELD_KEY, DEFAULT_SOLUTION_FIELD))
        meta = self.config.get("meta")
        value = meta.get(field) if isinstance(meta, Mapping) else None
        self.reference: ReferenceSolution | None = reference_solution(value, problem)
        self._no_reference = f"no reference solution in {field!r}"

    @classmethod
    def check_config(cls, config: Mapping[str, Any], limits: SessionLimits) -> None:
        ExpansionChecks.from_config(config)
        _prompts_of(config)

    def default_stop_condition(self) -> StopCondition:
        """Attempts (`max_turns`) and tokens; an expansion's depth is not limited."""
        return MaxTurns(self.limits.max_turns) | MaxTokens(self.limits.max_tokens)

    def _reset(self, state: SessionState) -> None:
        super()._reset(state)
        self._rejected: tuple[str, list[str]] | None = None
        self._planned: list[SessionEvent] | None = None
        self._logged = 0

    # -- running ---------------------------------------------------------------------------

    async def _play(self) -> None:
        if self._planned is not None:
            self._log_planned()
        if self.reference is None or self.gold_answer is None:
            why = self._no_reference if self.reference is None else "no gold answer"
            raise SessionStop(StopReason.MAX_TURNS, Outcome.FAILED, error=why)
        while True:
            progress = SessionProgress(
                turns=self.state.turn, generated_tokens=self.state.generated_tokens, depth=0
            )
            if (reason := self.stop_condition().check(progress)) is not None:
                raise SessionStop(reason, Outcome.FAILED)
            self.state.turn += 1
            try:
                reply = await self.writer.write(
                    self.problem,
                    self.reference.text,
                    self.gold_answer,
                    rejected=self._rejected,
                    attempt=self.state.turn,
                )
            except Exception as error:  # a backend that failed after its own retries
                raise SessionStop(
                    StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(error)
                ) from error
            walk = walk_expansion(reply.text)
            reasons = check_expansion(
                walk, self.reference, self.gold_answer, self.checks, cut_off=reply.cut_off
            )
            if reasons:
                self._emit(
                    ExpansionRejected(
                        **self._stamp(),
                        attempt=self.state.turn,
                        reasons=reasons,
                        raw=reply.raw,
                        reasoning=reply.reasoning,
                        usage=reply.usage,
                        latency=reply.latency,
                    )
                )
                continue
            self._planned, self._logged = self._tree_events(walk, reply, self.state.turn), 0
            self._log_planned()

    def _log_planned(self) -> None:
        """Log the accepted expansion's events not logged yet, then end on its answer."""
        assert self._planned is not None
        for event in self._planned[self._logged :]:
            self._emit(event.model_copy(update={"time": self._stamp()["time"]}))
            self._logged += 1
        last = self._planned[-1]
        assert isinstance(last, ActionApplied)
        raise SessionStop(StopReason.VERIFIED_ANSWER, Outcome.SOLVED, final_node=last.node_id)

    # -- the accepted expansion as events ------------------------------------------------

    def _tree_events(
        self, walk: ExpansionWalk, reply: ExpansionReply, turn: int
    ) -> list[SessionEvent]:
        """The events that grow the accepted expansion's tree, stamped with its attempt's
        `turn` (rules in the module docstring); their times are set as they are logged."""
        assert self.verifier is not None
        stamp: dict[str, Any] = {"session_id": self.session_id, "turn": turn, "time": 0.0}
        answer = final_answer(walk)
        assert answer is not None  # the checks passed
        events: list[SessionEvent] = []
        for step in walk.steps:
            node = step.index + 1  # nodes are numbered in the order written; 0 is the problem
            first, last = step.index == 0, step is walk.steps[-1]
            events.append(
                PolicyStepProposed(
                    **stamp,
                    node_id=node,
                    parent_id=0 if step.parent is None else step.parent + 1,
                    step_number=step.number,
                    content=step.text,
                    raw=reply.raw if first else step.block,
                    reasoning=reply.reasoning if first else "",
                    final_answer=answer if last else None,
                    usage=reply.usage if first else TokenUsage(),
                    latency=reply.latency if first else 0.0,
                )
            )
            if last:
                result = self.verifier.check(answer)
                assert result.correct  # the checks passed it with the same comparison
                events.append(
                    VerifierChecked(
                        **stamp,
                        node_id=node,
                        predicted=result.predicted,
                        gold=result.gold,
                        correct=result.correct,
                    )
                )
                action: Action = Terminate(answer=answer)
                cursor, source = node, Role.VERIFIER
            else:
                action, cursor = _action_after(walk, step)
                verdict, reason = _hindsight(step)
                events.append(
                    CriticVerdictGiven(
                        **stamp,
                        node_id=node,
                        verdict=verdict,
                        source=LabelSource.EXPANSION,
                        reason=reason,
                        action=action,
                    )
                )
                source = Role.POLICY
            events.append(
                ActionApplied(
                    **stamp,
                    node_id=node,
                    action=action,
                    cursor_id=cursor,
                    source=source,
                    note=action_note(step.number, action),
                )
            )
        return events

    # -- events ------------------------------------------------------------------------------

    def _fold(self, event: SessionEvent) -> None:
        """As every session's; a rejected attempt is also what the next one is shown."""
        super()._fold(event)
        if isinstance(event, ExpansionRejected):
            self._rejected = (
                ExpansionReply.logged(event.raw, "", event.usage, 0.0).text,
                list(event.reasons),
            )

    # -- restoring ---------------------------------------------------------------------------

    def _replay_one(self, event: SessionEvent) -> None:
        if isinstance(event, ProblemPosed):
            raise RestoreError("problem_posed appears twice")
        if isinstance(event, SessionEnded):
            self._fold(event)
            return
        if isinstance(event, ExpansionRejected):
            if self._planned is not None:
                raise RestoreError("a rejected expansion after the accepted one")
            if event.attempt != self.state.turn + 1:
                raise RestoreError(
                    f"attempt {event.attempt} follows attempt {self.state.turn} in the log"
                )
            self._fold(event)
            return
        if self._planned is None:
            if not isinstance(event, PolicyStepProposed) or event.node_id != 1:
                raise RestoreError(f"{event.type} before the accepted expansion's first step")
            reply = ExpansionReply.logged(event.raw, event.reasoning, event.usage, event.latency)
            walk = walk_expansion(reply.text)
            self._planned, self._logged = self._tree_events(walk, reply, event.turn), 0
        if self._logged >= len(self._planned):
            raise RestoreError(f"{event.type} after the accepted expansion's last event")
        expected = self._planned[self._logged]
        ignored = {"time"}
        if expected.model_dump(exclude=ignored) != event.model_dump(exclude=ignored):
            raise RestoreError(
                f"{event.type} on node {getattr(event, 'node_id', '?')} is not what the "
                "accepted expansion gives"
            )
        self._fold(event)
        self._logged += 1


def _action_after(walk: ExpansionWalk, step: PlacedStep) -> tuple[Action, int]:
    """What the expansion did after `step`, and the node the path ends at then."""
    node = step.index + 1
    if step.back_to is None:
        return Continue(), node
    path = [node]
    parent = step.parent
    while parent is not None:
        path.insert(0, parent + 1)
        parent = walk.steps[parent].parent
    path.insert(0, 0)  # the problem, at depth 0
    cursor = path[step.back_to - 1]
    if step.back_to == step.number:
        return Reflect(critique=step.reflection), cursor
    return Backtrack(to_step=step.back_to - 1, critique=step.reflection), cursor


def _hindsight(step: PlacedStep) -> tuple[StepVerdict, str]:
    """A step's label from what the whole expansion says of it."""
    if step.corrected_by is not None:
        return StepVerdict.INCORRECT, step.corrected_by
    if step.on_final_path:
        return StepVerdict.CORRECT, "it stands in the accepted expansion"
    return (
        StepVerdict.UNKNOWN,
        "abandoned with an earlier wrong step; the expansion does not judge it",
    )
