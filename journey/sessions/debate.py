"""Debate: a policy and a critic debate a problem, step by step.

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

A strategy that is a debate with another judge (propose-critique: the policy judges
its own steps) subclasses this one and changes three hooks, all about judging:
`_judge(node)` (how a step is judged and acted on), `_replay_one(event)` (what a logged
judgement means when restoring) and `_continue_restored()` (finishing a judgement the
log was cut in). Everything else (turns, limits, tree moves, the verifier, feedback,
the fold) is the debate's.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

from autogen_core.models import LLMMessage

from journey.agents import StepUnderReview
from journey.errors import error_line
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
    VerifierChecked,
    wrong_answer_note,
)
from journey.protocols.parsing import ParsedStep
from journey.sessions.action_repairs import legalise_action
from journey.sessions.base import DebateLimits, RestoreError, Session, SessionStop
from journey.sessions.policy_view import PolicyView
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import SessionProgress
from journey.sessions.tree import NodeLabel, TreeNode

_NO_CRITIQUE = "it does not follow from the steps before it."


class DebateSession(Session):
    """One policy/critic debate on one problem.

    Args:
        problem: The problem statement.
        policy: The policy agent.
        critic: The critic agent (None only for a subclass that never asks it).
        gold_answer: When given, the verifier checks final answers against it.
        limits: Turn, depth and token limits.
        session_id: Defaults to a hash of the problem.
        models: Model spec per role, recorded in the log.
        config: Extra settings recorded in the log; `policy_context` (`dialogue` or
            `path`) says what the policy sees (`journey.sessions.policy_view`).
    """

    strategy: ClassVar[str] = "debate"
    summary: ClassVar[str] = (
        "the policy proposes each step, a critic judges it and picks the action"
    )
    # A debate replays any log its events fit (a propose-critique log's steps and
    # verdicts are a debate's): the events decide, not the strategy's name.
    restores_any_strategy: ClassVar[bool] = True

    @cached_property
    def policy_view(self) -> PolicyView:
        return PolicyView.from_config(self.config)

    @classmethod
    def check_config(cls, config: Mapping[str, Any], limits: DebateLimits) -> None:
        PolicyView.from_config(config)

    def _reset(self, state: SessionState) -> None:
        super()._reset(state)
        self._dialogue: list[LLMMessage] = self.policy.opening(self.problem)
        # Set while restoring: what the logged session was about to do.
        self._awaiting_judgement: TreeNode | None = None
        self._awaiting_action: tuple[TreeNode, Action, Role] | None = None
        self._awaiting_end: SessionStop | None = None

    # -- restoring ---------------------------------------------------------------------------

    def _replay_one(self, event: SessionEvent) -> None:
        """Check that a logged event is what the session would have done next, and fold it."""
        if isinstance(event, ProblemPosed):
            raise RestoreError("problem_posed appears twice")
        if isinstance(event, SessionEnded):
            self._awaiting_judgement = self._awaiting_action = self._awaiting_end = None
            self._fold(event)
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
            self._fold(event)
            self._awaiting_judgement = self.tree[event.node_id]
            return
        if isinstance(event, CriticVerdictGiven | VerifierChecked):
            node = self._under_review(event.node_id, self._awaiting_judgement, event.type)
            self._fold(event)
            if isinstance(event, CriticVerdictGiven):
                action = self._critic_action(node, event.action, event.verdict, event.reason)
                self._awaiting_action = (node, action, Role.CRITIC)
            else:
                action = self._verifier_action(node, event.correct)
                self._awaiting_action = (node, action, Role.VERIFIER)
            self._awaiting_judgement = None
            return
        assert isinstance(event, ActionApplied)
        judged = self._awaiting_action[0] if self._awaiting_action else None
        node = self._under_review(event.node_id, judged, event.type)
        cursor = self._cursor_after(node, event.action)
        if cursor != event.cursor_id:
            raise RestoreError(
                f"the action left the cursor at {cursor}, the log says {event.cursor_id}"
            )
        self._fold(event)
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

    async def _play(self) -> None:
        if self._restored:
            await self._continue_restored()
        while True:
            await self._play_turn()

    async def _play_turn(self) -> None:
        self._check_limits()
        self.state.turn += 1
        parent = self.tree[self.tree.cursor]
        step_number = parent.depth + 1
        # Steps that would add nothing: alternatives already rejected here, and restatements
        # of a step already on the path.
        avoid = [
            *(c.text for c in self.tree.children(parent.id) if c.label is NodeLabel.INCORRECT),
            *(node.text for node in self.tree.current_path()),
        ]
        try:
            asked = self.policy_view.messages(self.policy, self.tree, self._dialogue)
            turn = await self.policy.propose(asked, step_number, avoid=avoid)
        except Exception as error:  # a backend that failed after its own retries
            raise SessionStop(
                StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(error)
            ) from error
        if not turn.step.usable:
            self.state.usage[Role.POLICY] += turn.usage  # no event carries it
            raise SessionStop(
                StopReason.MODEL_ERROR,
                Outcome.ERROR,
                error=f"policy gave no usable step after {turn.attempts} replies",
            )
        self._emit(
            PolicyStepProposed(
                **self._stamp(),
                node_id=len(self.tree),
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
        await self._judge(self.tree[self.tree.cursor])

    async def _judge(self, node: TreeNode) -> None:
        if node.is_final and self.verifier is not None:
            self._verify(node)
        else:
            await self._critique(node)

    def _check_limits(self) -> None:
        progress = SessionProgress(
            turns=self.state.turn,
            generated_tokens=self.state.generated_tokens,
            depth=self.tree[self.tree.cursor].depth,
        )
        if (reason := self.stop_condition().check(progress)) is not None:
            raise SessionStop(reason, Outcome.FAILED)

    # -- the verifier ------------------------------------------------------------------------

    def _verify(self, node: TreeNode) -> None:
        assert self.verifier is not None and node.final_answer is not None
        result = self.verifier.check(node.final_answer)
        self._emit(self._verified(node.id, result, self._stamp()))
        self._apply(node, self._verifier_action(node, result.correct), Role.VERIFIER)

    def _verifier_action(self, node: TreeNode, correct: bool) -> Action:
        """What a verifier result does: a correct answer ends the session, a wrong one is
        rewritten (the note goes on the node)."""
        if correct:
            return Terminate(answer=node.final_answer)
        return Reflect(critique=wrong_answer_note(node.final_answer))

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
            verifier=self.verifier,
        )
        assert self.critic is not None  # a strategy that asks the critic is given one
        try:
            turn = await self.critic.judge(review)
        except Exception as error:
            raise SessionStop(
                StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(error)
            ) from error
        action, verdict, violations = self._legalise(node, turn.action, turn.verdict)
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
                label_scoring=turn.label_scoring,
                reward=turn.reward,
                rollouts=turn.rollouts,
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
    def _stop_after(node: TreeNode, action: Action, source: Role) -> SessionStop | None:
        """How the session ends after `action`, or None when it goes on."""
        if not isinstance(action, Terminate):
            return None
        if source is Role.VERIFIER:
            return SessionStop(StopReason.VERIFIED_ANSWER, Outcome.SOLVED, final_node=node.id)
        if node.is_final and node.verdict is StepVerdict.CORRECT:
            # Only an answer judged correct is accepted: a terminate with no readable
            # verdict gives up rather than vouch for an answer nobody judged.
            return SessionStop(StopReason.ANSWER_ACCEPTED, Outcome.UNVERIFIED, final_node=node.id)
        return SessionStop(StopReason.CRITIC_TERMINATED, Outcome.FAILED)

    def _legalise(
        self, node: TreeNode, action: Action, verdict: StepVerdict
    ) -> tuple[Action, StepVerdict, list[ProtocolViolation]]:
        """The judge's action, with what the tree or the verifier forbids repaired."""
        return legalise_action(node, action, verdict, has_verifier=self.verifier is not None)

    # -- applying actions --------------------------------------------------------------------

    def _apply(self, node: TreeNode, action: Action, source: Role) -> None:
        """Apply an action, log it, and stop the session when the action ends it."""
        self._emit(
            ActionApplied(
                **self._stamp(),
                node_id=node.id,
                action=action,
                cursor_id=self._cursor_after(node, action),
                source=source,
                note=self._note(node, action),
            )
        )
        stop = self._stop_after(node, action, source)
        if stop is not None:
            raise stop

    def _cursor_after(self, node: TreeNode, action: Action) -> int:
        """Where an action on `node` leaves the cursor: on it, or up its path."""
        if isinstance(action, Reflect):
            return self.tree.path(node.id)[node.depth - 1].id
        if isinstance(action, Backtrack):
            return self.tree.path(node.id)[action.to_step].id
        return node.id

    @staticmethod
    def _note(node: TreeNode, action: Action) -> str:
        """What an action does to the path, in words, for the log."""
        if isinstance(action, Reflect):
            return f"rewrite step {node.depth}"
        if isinstance(action, Backtrack):
            return f"abandon steps {action.to_step + 1}..{node.depth}"
        return ""

    def _feedback(self, node: TreeNode, action: Action, source: Role) -> LLMMessage | None:
        """What the policy is told after an action on `node`: what to write next."""
        k = node.depth
        if isinstance(action, Continue):
            return self.policy.feedback("continue", step=k, next_step=k + 1)
        if isinstance(action, Reflect):
            if source is Role.VERIFIER:
                return self.policy.feedback("wrong_answer", answer=node.final_answer, step=k)
            critique = action.critique or _NO_CRITIQUE
            return self.policy.feedback("reflect", step=k, critique=critique)
        if isinstance(action, Backtrack):
            if action.to_step == k - 1:  # returning to the step before is rewriting this one
                template = "reflect"
            else:
                template = "restart" if action.to_step == 0 else "backtrack"
            return self.policy.feedback(
                template,
                step=k,
                to_step=action.to_step,
                next_step=action.to_step + 1,
                critique=action.critique or _NO_CRITIQUE,
            )
        return None

    # -- events ------------------------------------------------------------------------------

    def _fold(self, event: SessionEvent) -> None:
        """The one way the session changes: the state folds the event, and the policy's
        dialogue gets the step or what to do next. Running and restoring both come here."""
        self.state.apply(event)
        if isinstance(event, PolicyStepProposed):
            step = ParsedStep(content=event.content, final_answer=event.final_answer, violations=())
            self._dialogue.append(self.policy.as_assistant(event.step_number, step))
        elif isinstance(event, ActionApplied):
            message = self._feedback(self.tree[event.node_id], event.action, event.source)
            if message is not None:
                self._dialogue.append(message)
