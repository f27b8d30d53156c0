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
its own steps) subclasses this one and overrides its three public judging hooks:
`judge(node)` (how a new step is judged and acted on), `replay_judgement(node, event)`
(what a logged judgement leads to when restoring) and `resume_judgement(node)`
(finishing a judgement a restored log was cut in). Everything else (turns, limits, tree
moves, the verifier, feedback, the fold) is the debate's.
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
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    ProtocolViolation,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    VerifierChecked,
)
from journey.protocols.parsing import ParsedStep
from journey.sessions._debate_actions import (
    action_note,
    critic_action,
    cursor_after,
    policy_feedback,
    stop_after,
    verifier_action,
)
from journey.sessions.action_repairs import legalise_action
from journey.sessions.base import RestoreError, Session, SessionLimits, SessionStop
from journey.sessions.policy_view import POLICY_CONTEXT_KEY, PolicyView
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import SessionProgress
from journey.sessions.tree import NodeLabel, TreeNode


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
        config: Extra settings recorded in the log; `policy_context` (`dialogue`,
            `path` or `fresh`) says what the policy sees (`journey.sessions.policy_view`).
    """

    strategy: ClassVar[str] = "debate"
    summary: ClassVar[str] = (
        "the policy proposes each step, a critic judges it and picks the action"
    )
    # A debate replays any log its events fit (a propose-critique log's steps and
    # verdicts are a debate's): the events decide, not the strategy's name.
    restores_any_strategy: ClassVar[bool] = True
    config_keys: ClassVar[frozenset[str]] = frozenset({POLICY_CONTEXT_KEY})

    @cached_property
    def policy_view(self) -> PolicyView:
        return PolicyView.from_config(self.config)

    @classmethod
    def check_config(cls, config: Mapping[str, Any], limits: SessionLimits) -> None:
        PolicyView.from_config(config)

    def _reset(self, state: SessionState) -> None:
        super()._reset(state)
        self._dialogue: list[LLMMessage] = self.policy.opening(self.problem)
        # Set while restoring: what the logged session was about to do.
        self._awaiting_judgement: TreeNode | None = None
        self._judgement_begun = False  # a part of that judgement is logged
        self._awaiting_action: tuple[TreeNode, Action, Role] | None = None
        self._awaiting_end: SessionStop | None = None

    # -- judging: the hooks a debate with another judge overrides ------------------------------

    async def judge(self, node: TreeNode) -> None:
        """Judge the step just proposed at `node`, log the judgement and apply its action.

        A debate asks the verifier about a final answer when there is a gold answer, and
        the critic about every other step.
        """
        if node.is_final and self.verifier is not None:
            self._verify(node)
        else:
            await self._critique(node)

    def replay_judgement(self, node: TreeNode, event: SessionEvent) -> tuple[Action, Role] | None:
        """What a logged judgement of `node`, the step under review, leads to (restoring).

        Called before the event is folded, with a judgement (`critic_verdict` or
        `verifier_result`) about `node`; once this has returned None for a step, with
        whatever event the log has next, until it returns an action.

        Returns:
            The action applied next and who applies it (its `source`), or None when the
            step awaits more of its judgement (`resume_judgement` finishes it).

        Raises:
            RestoreError: the event is not what judging the step would have logged.
        """
        if isinstance(event, CriticVerdictGiven):
            return critic_action(node, event.action, event.verdict, event.reason), Role.CRITIC
        if isinstance(event, VerifierChecked):
            return verifier_action(node, event.correct), Role.VERIFIER
        raise RestoreError(f"{event.type} before node {node.id} was judged")

    async def resume_judgement(self, node: TreeNode) -> None:
        """Finish judging `node`, whose judgement a restored log was cut in (none of it
        logged, or the part `replay_judgement` read); a debate judges it afresh."""
        await self.judge(node)

    # -- restoring ---------------------------------------------------------------------------

    def _replay_one(self, event: SessionEvent) -> None:
        """Check that a logged event is what the session would have done next, and fold it."""
        if isinstance(event, ProblemPosed):
            raise RestoreError("problem_posed appears twice")
        if isinstance(event, SessionEnded):
            self._awaiting_judgement = self._awaiting_action = self._awaiting_end = None
            self._judgement_begun = False
            self._fold(event)
            return
        if self._awaiting_end is not None:
            raise RestoreError(f"{event.type} after the session should have ended")
        if self._judgement_begun or isinstance(event, CriticVerdictGiven | VerifierChecked):
            node = self._awaiting_judgement
            if isinstance(event, CriticVerdictGiven | VerifierChecked):
                node = self._under_review(event.node_id, node, event.type)
            assert node is not None  # a judgement is begun only on a step under review
            follows = self.replay_judgement(node, event)
            self._fold(event)
            self._judgement_begun = follows is None
            if follows is not None:
                self._awaiting_judgement = None
                self._awaiting_action = (node, *follows)
            return
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
        assert isinstance(event, ActionApplied)
        judged = self._awaiting_action[0] if self._awaiting_action else None
        node = self._under_review(event.node_id, judged, event.type)
        cursor = cursor_after(self.tree, node, event.action)
        if cursor != event.cursor_id:
            raise RestoreError(
                f"the action left the cursor at {cursor}, the log says {event.cursor_id}"
            )
        self._fold(event)
        self._awaiting_action = None
        self._awaiting_end = stop_after(node, event.action, event.source)

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
            await self.resume_judgement(self._awaiting_judgement)

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
        await self.judge(self.tree[self.tree.cursor])

    def _check_limits(self) -> None:
        progress = SessionProgress(
            turns=self.state.turn,
            generated_tokens=self.state.generated_tokens,
            depth=self.tree[self.tree.cursor].depth,
        )
        if (reason := self.stop_condition().check(progress)) is not None:
            raise SessionStop(reason, Outcome.FAILED)

    # -- the judges --------------------------------------------------------------------------

    def _verify(self, node: TreeNode) -> None:
        assert self.verifier is not None and node.final_answer is not None
        result = self.verifier.check(node.final_answer)
        self._emit(self._verified(node.id, result, self._stamp()))
        self._apply(node, verifier_action(node, result.correct), Role.VERIFIER)

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
        self._apply(node, critic_action(node, action, verdict, turn.reason), Role.CRITIC)

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
                cursor_id=cursor_after(self.tree, node, action),
                source=source,
                note=action_note(node.depth, action),
            )
        )
        stop = stop_after(node, action, source)
        if stop is not None:
            raise stop

    # -- events ------------------------------------------------------------------------------

    def _fold(self, event: SessionEvent) -> None:
        """The one way the session changes: the state folds the event, and the policy's
        dialogue gets the step or what to do next. Running and restoring both come here."""
        self.state.apply(event)
        if isinstance(event, PolicyStepProposed):
            step = ParsedStep(content=event.content, final_answer=event.final_answer, violations=())
            self._dialogue.append(self.policy.as_assistant(event.step_number, step))
        elif isinstance(event, ActionApplied):
            node = self.tree[event.node_id]
            message = policy_feedback(self.policy, node, event.action, event.source)
            if message is not None:
                self._dialogue.append(message)
