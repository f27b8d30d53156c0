"""Attempt 3 of the seed: a policy and a critic debate a problem, step by step.

Each turn the policy proposes one step, which becomes a node of the reasoning
tree. A final answer goes to the verifier when there is a gold answer: correct
ends the session; incorrect is fed back as the negative signal and the policy
must reconsider that step. Every other step goes to the critic, whose action is
applied to the tree and turned into the policy's next instruction:

- `continue`: the step stands; the policy writes the next one.
- `reflect`: the critique goes back and the policy rewrites the step (the new
  version is a sibling of the rejected one).
- `backtrack k`: the steps after k are abandoned; the policy continues from
  step k, seeing the failed attempt and the critique.
- `terminate`: without a gold answer the critic accepts a final answer (or gives
  up). With a gold answer only the verifier ends a session, so a critic's
  terminate is recorded as a violation and read as its verdict.

The policy's conversation is the dialogue itself, abandoned steps included:
that dialogue is the journey the transcript writer turns into a long thought.

A session cut short (a crash, a kill) is continued with `DebateSession.restore`:
its logged events are replayed into the tree, the dialogue, the usage and the
counters, and `run()` goes on from the last logged event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autogen_core.models import LLMMessage

from journey.agents import AnswerVerifier, CriticAgent, PolicyAgent, StepUnderReview
from journey.errors import ConfigError, error_line
from journey.problems import session_id_for
from journey.protocols import (
    Action,
    ActionApplied,
    Backtrack,
    Continue,
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    ProtocolViolation,
    Reflect,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    Terminate,
    TokenUsage,
    VerifierChecked,
    wrong_answer_note,
)
from journey.protocols.parsing import ParsedStep
from journey.sessions.tree import NodeLabel, ReasoningTree, TreeNode

EventSink = Callable[[SessionEvent], None]

_NO_CRITIQUE = "it does not follow from the steps before it."


@dataclass(frozen=True)
class DebateLimits:
    """When a session stops if no answer has ended it."""

    max_turns: int = field(default=16, metadata={"help": "Policy turns before the session stops."})
    max_depth: int = field(default=12, metadata={"help": "Longest path (steps) allowed."})
    max_tokens: int = field(
        default=6000, metadata={"help": "Generated tokens (policy + critic) before it stops."}
    )

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_depth", "max_tokens"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value!r}")


@dataclass
class DebateResult:
    """What a finished session yields."""

    session_id: str
    tree: ReasoningTree
    events: list[SessionEvent]

    @property
    def ended(self) -> SessionEnded:
        last = self.events[-1]
        assert isinstance(last, SessionEnded)
        return last


@dataclass
class _Stop(Exception):
    reason: StopReason
    outcome: Outcome
    final_node: TreeNode | None = None
    error: str | None = None


class RestoreError(ValueError):
    """Logged events that cannot be replayed into a session (not a prefix of one)."""


class DebateSession:
    """One policy/critic debate on one problem.

    Args:
        problem: The problem statement.
        policy: The policy agent.
        critic: The critic agent.
        gold_answer: When given, the verifier checks final answers against it.
        limits: Turn, depth and token limits.
        session_id: Defaults to a hash of the problem.
        models: Model spec per role, recorded in the log.
        config: Extra settings recorded in the log.
    """

    strategy: ClassVar[str] = "debate"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.POLICY, Role.CRITIC})
    """The strategy name logged in `problem_posed`; subclasses override it."""

    def __init__(
        self,
        problem: str,
        *,
        policy: PolicyAgent,
        critic: CriticAgent,
        gold_answer: str | None = None,
        limits: DebateLimits | None = None,
        session_id: str | None = None,
        models: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.problem = problem
        self.policy = policy
        self.critic = critic
        self.gold_answer = gold_answer
        self.verifier = AnswerVerifier(gold_answer) if gold_answer is not None else None
        self.limits = limits or DebateLimits()
        self.session_id = session_id or session_id_for(problem)
        self.models = models or {}
        self.config = config or {}
        self.tree = ReasoningTree(problem, gold_answer)
        self.events: list[SessionEvent] = []
        self._sink: EventSink | None = None
        self._dialogue: list[LLMMessage] = []
        self._usage = {Role.POLICY: TokenUsage(), Role.CRITIC: TokenUsage()}
        self._turn = 0
        self._backtracks = 0
        self._reflections = 0
        self._started = 0.0
        # Set by `restore`: how far the logged session got, and what it was about to do.
        self._restored = False
        self._time_offset = 0.0
        self._awaiting_judgement: TreeNode | None = None
        self._awaiting_action: tuple[TreeNode, Action, Role] | None = None
        self._awaiting_end: _Stop | None = None

    # -- restoring ---------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        events: Sequence[SessionEvent],
        *,
        policy: PolicyAgent,
        critic: CriticAgent,
        limits: DebateLimits | None = None,
        models: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> DebateSession:
        """Rebuild a session from the events it logged, so that `run()` continues it.

        The problem, gold answer and session id come from the logged `problem_posed`;
        the tree, the policy's dialogue, token usage, counters, turn and clock are
        replayed from the rest. `run()` then appends to `events` without posing the
        problem again: a policy step still awaiting its verdict is judged, a verdict
        whose action was not applied yet is applied, and the session goes on. A log
        that already ends in `session_ended` restores a finished session (its tree
        and events), which `run()` refuses to run again.

        Args:
            events: A prefix of one session's event log, starting with `problem_posed`.
            policy: The policy agent that goes on with the session.
            critic: The critic agent.
            limits: Limits from here on; by default those recorded in the log.
            models: Model spec per role (recorded in the log only at the start).
            config: Extra settings (likewise).

        Raises:
            RestoreError: the events are not a prefix of one session's log.
        """
        if not events or not isinstance(events[0], ProblemPosed):
            raise RestoreError("an event log must start with problem_posed")
        posed = events[0]
        if limits is None:
            fields = DebateLimits.__dataclass_fields__
            limits = DebateLimits(**{k: v for k, v in posed.config.items() if k in fields})
        session = cls(
            posed.problem,
            policy=policy,
            critic=critic,
            gold_answer=posed.gold_answer,
            limits=limits,
            session_id=posed.session_id,
            models=models or dict(posed.models),
            config=config or dict(posed.config),
        )
        session._replay(events)
        return session

    @property
    def finished(self) -> bool:
        """True when the session has ended (it logged `session_ended`)."""
        return bool(self.events) and isinstance(self.events[-1], SessionEnded)

    def _replay(self, events: Sequence[SessionEvent]) -> None:
        self._dialogue = self.policy.opening(self.problem)
        for number, event in enumerate(events, 1):
            if event.session_id != self.session_id:
                raise RestoreError(
                    f"event {number} belongs to session {event.session_id!r}, "
                    f"not {self.session_id!r}"
                )
            if self.finished:
                raise RestoreError(f"event {number} ({event.type}) comes after session_ended")
            try:
                self._replay_one(event, first=number == 1)
            except (KeyError, ValueError, AssertionError) as error:
                if isinstance(error, RestoreError):
                    raise
                raise RestoreError(
                    f"event {number} ({event.type}) does not fit the session so far: {error!r}"
                ) from error
            self.events.append(event)
            self._turn = event.turn
            self._time_offset = event.time
        self._restored = True

    def _replay_one(self, event: SessionEvent, *, first: bool) -> None:
        if isinstance(event, ProblemPosed):
            if not first:
                raise RestoreError("problem_posed appears twice")
            return
        if isinstance(event, SessionEnded):
            self._awaiting_judgement = self._awaiting_action = self._awaiting_end = None
            return
        if self._awaiting_end is not None:
            raise RestoreError(f"{event.type} after the session should have ended")
        if isinstance(event, PolicyStepProposed):
            if self._awaiting_judgement is not None or self._awaiting_action is not None:
                raise RestoreError("a policy step before the previous one was acted on")
            if event.parent_id != self.tree.cursor:
                raise RestoreError(
                    f"step {event.node_id} hangs from node {event.parent_id}, "
                    f"but the cursor is at {self.tree.cursor}"
                )
            self._usage[Role.POLICY] += event.usage
            node = self.tree.add_step(
                event.content,
                final_answer=event.final_answer,
                tokens=event.usage.completion_tokens,
                elapsed=event.latency,
            )
            if node.id != event.node_id or node.depth != event.step_number:
                raise RestoreError(f"step {event.node_id} would be node {node.id}")
            step = ParsedStep(content=event.content, final_answer=event.final_answer, violations=())
            self._dialogue.append(self.policy.as_assistant(event.step_number, step))
            self._awaiting_judgement = node
            return
        if isinstance(event, CriticVerdictGiven | VerifierChecked):
            node = self._under_review(event.node_id, self._awaiting_judgement, event.type)
            if isinstance(event, CriticVerdictGiven):
                self._usage[Role.CRITIC] += event.usage
                self.tree.judge(node.id, event.verdict, event.reason, event.source)
                action = self._critic_action(node, event.action, event.verdict, event.reason)
                self._awaiting_action = (node, action, Role.CRITIC)
            else:
                self.tree.record_verification(node.id, event.correct)
                action = self._verifier_action(node, event.correct)
                self._awaiting_action = (node, action, Role.VERIFIER)
            self._awaiting_judgement = None
            return
        assert isinstance(event, ActionApplied)
        judged = self._awaiting_action[0] if self._awaiting_action else None
        node = self._under_review(event.node_id, judged, event.type)
        self._move(node, event.action, event.source)
        if self.tree.cursor != event.cursor_id:
            raise RestoreError(
                f"the action left the cursor at {self.tree.cursor}, the log says {event.cursor_id}"
            )
        self._awaiting_action = None
        self._awaiting_end = self._stop_after(node, event.action, event.source)

    @staticmethod
    def _under_review(node_id: int, expected: TreeNode | None, what: str) -> TreeNode:
        """The node a verdict, check or action is about must be the one the log was busy with."""
        if expected is None or expected.id != node_id:
            busy = "nothing" if expected is None else f"node {expected.id}"
            raise RestoreError(f"{what} on node {node_id}, but the log was busy with {busy}")
        return expected

    async def _continue_restored(self) -> None:
        """Finish what the log was in the middle of, before the next turn."""
        if self._awaiting_end is not None:
            raise self._awaiting_end
        if self._awaiting_action is not None:
            node, action, source = self._awaiting_action
            self._apply(node, action, source)
        elif self._awaiting_judgement is not None:
            await self._judge(self._awaiting_judgement)

    # -- running ---------------------------------------------------------------------------

    async def run(self, on_event: EventSink | None = None) -> DebateResult:
        """Run the session to its end, calling `on_event` with each event as it happens.

        A restored session continues from its last logged event: only the events from
        there on are passed to `on_event` (and appended to `events`).
        """
        if self.finished:
            raise RuntimeError(f"session {self.session_id} has already ended")
        self._sink = on_event
        self._started = time.monotonic() - self._time_offset
        if not self._restored:
            self._emit(
                ProblemPosed(
                    **self._stamp(),
                    problem=self.problem,
                    gold_answer=self.gold_answer,
                    strategy=self.strategy,
                    models=self.models,
                    config={**self.config, **self.limits.__dict__},
                )
            )
            self._dialogue = self.policy.opening(self.problem)
        try:
            if self._restored:
                await self._continue_restored()
            while True:
                await self._play_turn()
        except _Stop as stop:
            self._end(stop)
        except asyncio.CancelledError:
            self._end(_Stop(StopReason.CANCELLED, Outcome.FAILED))
            raise
        return DebateResult(self.session_id, self.tree, self.events)

    async def stream(self) -> AsyncIterator[SessionEvent]:
        """The session's events as an async iterator, for callers that prefer to pull."""
        queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        task = asyncio.create_task(self.run(queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            yield event
        await task

    async def _play_turn(self) -> None:
        self._check_limits()
        self._turn += 1
        parent = self.tree[self.tree.cursor]
        step_number = parent.depth + 1
        # Steps that would add nothing: alternatives already rejected here, and restatements
        # of a step already on the path.
        avoid = [
            *(c.text for c in self.tree.children(parent.id) if c.label is NodeLabel.INCORRECT),
            *(node.text for node in self.tree.current_path()),
        ]
        try:
            turn = await self.policy.propose(self._dialogue, step_number, avoid=avoid)
        except Exception as error:  # a backend that failed after its own retries
            raise _Stop(StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(error)) from error
        self._usage[Role.POLICY] += turn.usage
        if not turn.step.usable:
            raise _Stop(
                StopReason.MODEL_ERROR,
                Outcome.ERROR,
                error=f"policy gave no usable step after {turn.attempts} replies",
            )
        node = self.tree.add_step(
            turn.step.content,
            final_answer=turn.step.final_answer,
            tokens=turn.usage.completion_tokens,
            elapsed=turn.latency,
        )
        self._dialogue.append(self.policy.as_assistant(step_number, turn.step))
        self._emit(
            PolicyStepProposed(
                **self._stamp(),
                node_id=node.id,
                parent_id=parent.id,
                step_number=step_number,
                content=turn.step.content,
                raw=turn.raw,
                reasoning=turn.reasoning,
                final_answer=turn.step.final_answer,
                violations=list(turn.violations),
                usage=turn.usage,
                latency=turn.latency,
            )
        )
        await self._judge(node)

    async def _judge(self, node: TreeNode) -> None:
        if node.is_final and self.verifier is not None:
            self._verify(node)
        else:
            await self._critique(node)

    def _check_limits(self) -> None:
        limits = self.limits
        generated = sum(u.completion_tokens for u in self._usage.values())
        if self._turn >= limits.max_turns:
            raise _Stop(StopReason.MAX_TURNS, Outcome.FAILED)
        if generated >= limits.max_tokens:
            raise _Stop(StopReason.MAX_TOKENS, Outcome.FAILED)
        if self.tree[self.tree.cursor].depth >= limits.max_depth:
            raise _Stop(StopReason.MAX_DEPTH, Outcome.FAILED)

    # -- the verifier ------------------------------------------------------------------------

    def _verify(self, node: TreeNode) -> None:
        assert self.verifier is not None and node.final_answer is not None
        result = self.verifier.check(node.final_answer)
        self.tree.record_verification(node.id, result.correct)
        self._emit(
            VerifierChecked(
                **self._stamp(),
                node_id=node.id,
                predicted=result.predicted,
                gold=result.gold,
                correct=result.correct,
            )
        )
        self._apply(node, self._verifier_action(node, result.correct), Role.VERIFIER)

    def _verifier_action(self, node: TreeNode, correct: bool) -> Action:
        """What a verifier result does: a correct answer ends the session, a wrong one is
        rewritten (the note goes on the node)."""
        if correct:
            return Terminate(answer=node.final_answer)
        critique = wrong_answer_note(node.final_answer)
        node.reason = critique
        return Reflect(critique=critique)

    # -- the critic --------------------------------------------------------------------------

    async def _critique(self, node: TreeNode) -> None:
        path = self.tree.current_path()
        review = StepUnderReview(
            problem=self.problem,
            previous_steps=[n.text for n in path[:-1]],
            step_number=node.depth,
            text=node.text,
            final_answer=node.final_answer,
            may_terminate=self.verifier is None,
        )
        try:
            turn = await self.critic.judge(review)
        except Exception as error:
            raise _Stop(StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(error)) from error
        self._usage[Role.CRITIC] += turn.usage
        action, verdict, violations = self._legalise(node, turn.action, turn.verdict)
        self.tree.judge(node.id, verdict, turn.reason, turn.source)
        self._emit(
            CriticVerdictGiven(
                **self._stamp(),
                node_id=node.id,
                verdict=verdict,
                source=turn.source,
                reason=turn.reason,
                action=action,
                raw=turn.raw,
                reasoning=turn.reasoning,
                label_scores=turn.label_scores,
                violations=[*turn.violations, *violations],
                usage=turn.usage,
                latency=turn.latency,
            )
        )
        self._apply(node, self._critic_action(node, action, verdict, turn.reason), Role.CRITIC)

    @staticmethod
    def _critic_action(node: TreeNode, action: Action, verdict: StepVerdict, reason: str) -> Action:
        if node.is_final and verdict is StepVerdict.CORRECT:
            # No gold answer: a final answer the critic accepts ends the session.
            return Terminate(answer=node.final_answer, reason=reason or None)
        return action

    @staticmethod
    def _stop_after(node: TreeNode, action: Action, source: Role) -> _Stop | None:
        """How the session ends after `action`, or None when it goes on."""
        if not isinstance(action, Terminate):
            return None
        if source is Role.VERIFIER:
            return _Stop(StopReason.VERIFIED_ANSWER, Outcome.SOLVED, final_node=node)
        if node.is_final and node.verdict is StepVerdict.CORRECT:
            # Only an answer judged correct is accepted: a terminate with no readable
            # verdict gives up rather than vouch for an answer nobody judged.
            return _Stop(StopReason.ANSWER_ACCEPTED, Outcome.UNVERIFIED, final_node=node)
        return _Stop(StopReason.CRITIC_TERMINATED, Outcome.FAILED)

    def _legalise(
        self, node: TreeNode, action: Action, verdict: StepVerdict
    ) -> tuple[Action, StepVerdict, list[ProtocolViolation]]:
        """Check the critic's action against the tree; repair what is illegal, and say so."""
        violations: list[ProtocolViolation] = []
        if isinstance(action, Backtrack) and action.to_step >= node.depth:
            violations.append(
                ProtocolViolation(
                    kind="illegal_backtrack_target",
                    detail=f"backtrack to step {action.to_step} from step {node.depth}; "
                    f"read as backtrack to step {node.depth - 1}",
                    repaired=True,
                )
            )
            action = Backtrack(to_step=node.depth - 1, critique=action.critique)
        if isinstance(action, Terminate) and self.verifier is not None:
            replacement: Action = (
                Reflect(critique=action.reason or "")
                if verdict is StepVerdict.INCORRECT
                else Continue()
            )
            violations.append(
                ProtocolViolation(
                    kind="premature_terminate",
                    detail="only the verifier ends a session with a gold answer; "
                    f"read as {replacement.action}",
                    repaired=True,
                )
            )
            action = replacement
        return action, verdict, violations

    # -- applying actions --------------------------------------------------------------------

    def _apply(self, node: TreeNode, action: Action, source: Role) -> None:
        """Apply an action, log it, and stop the session when the action ends it."""
        note = self._move(node, action, source)
        self._emit(
            ActionApplied(
                **self._stamp(),
                node_id=node.id,
                action=action,
                cursor_id=self.tree.cursor,
                source=source,
                note=note,
            )
        )
        stop = self._stop_after(node, action, source)
        if stop is not None:
            raise stop

    def _move(self, node: TreeNode, action: Action, source: Role) -> str:
        """Move the tree's cursor and tell the policy what happens next; returns the note."""
        k = node.depth
        note = ""
        if isinstance(action, Continue):
            message = self.policy.feedback("continue", step=k, next_step=k + 1)
        elif isinstance(action, Reflect):
            self._reflections += 1
            self.tree.backtrack(k - 1)
            if source is Role.VERIFIER:
                message = self.policy.feedback("wrong_answer", answer=node.final_answer, step=k)
            else:
                critique = action.critique or _NO_CRITIQUE
                message = self.policy.feedback("reflect", step=k, critique=critique)
            note = f"rewrite step {k}"
        elif isinstance(action, Backtrack):
            self._backtracks += 1
            self.tree.backtrack(action.to_step)
            critique = action.critique or _NO_CRITIQUE
            if action.to_step == k - 1:  # returning to the step before is rewriting this one
                template = "reflect"
            else:
                template = "restart" if action.to_step == 0 else "backtrack"
            message = self.policy.feedback(
                template,
                step=k,
                to_step=action.to_step,
                next_step=action.to_step + 1,
                critique=critique,
            )
            note = f"abandon steps {action.to_step + 1}..{k}"
        else:
            message = None
        if message is not None:
            self._dialogue.append(message)
        return note

    # -- events ------------------------------------------------------------------------------

    def _stamp(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "turn": self._turn,
            "time": round(time.monotonic() - self._started, 4),
        }

    def _emit(self, event: SessionEvent) -> None:
        self.events.append(event)
        if self._sink is not None:
            self._sink(event)

    def _end(self, stop: _Stop) -> None:
        violations = sum(
            len(e.violations)
            for e in self.events
            if isinstance(e, PolicyStepProposed | CriticVerdictGiven)
        )
        final = stop.final_node
        self._emit(
            SessionEnded(
                **self._stamp(),
                stop_reason=stop.reason,
                outcome=stop.outcome,
                final_answer=final.final_answer if final else None,
                final_node_id=final.id if final else None,
                usage=dict(self._usage),
                violations=violations,
                backtracks=self._backtracks,
                reflections=self._reflections,
                error=stop.error,
            )
        )
