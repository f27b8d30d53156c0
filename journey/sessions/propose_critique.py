"""Propose-critique: the policy proposes a step and critiques it itself.

Each reply holds the next numbered step and the policy's own check of it, ending
with the action it chooses (continue / reflect / backtrack K / terminate); see
`journey.agents.self_critique`. Everything else is the debate's machinery, reused
by subclassing `DebateSession`: limits, tree moves, the verifier, restore, events.
Only how a step is judged differs, through the debate's judging hooks (`judge`,
`replay_judgement`, `resume_judgement`):

- The check is read from the step's verbatim reply (`raw` of its `policy_step`
  event), so judging costs no model call and a restored session re-reads it
  exactly. It is logged as a `critic_verdict` whose reason and action are the
  policy's own, `raw` is the check as written, and usage is zero: its tokens
  were counted on the step. Its violations (an unparseable action read as
  `continue`, an illegal backtrack target, ...) are counted like a critic's.
- A final answer that the policy stands by (any action but reflect/backtrack)
  goes to the verifier when there is a gold answer: correct ends the session; a
  wrong one comes back as "Your final answer X is wrong." and the policy must
  rewrite that step. With a gold answer only the verifier ends a session, so a
  terminate on a step without an answer reads as continue (a violation).
- Without a gold answer a final answer the policy stands by is accepted
  (`answer_accepted`); a terminate without an answer gives up (logged as
  `critic_terminated`, the self-critic being the one that stopped).
- Every action is applied with `source=policy`.

The strategy asks no critic (its `roles`): it keeps none, and records none among the
models. The event types, the tree and the transcript are those of a debate, so replay,
stats, export, the long-thought writer and resume work unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from journey.agents import PolicyAgent
from journey.agents.self_critique import SelfCritiquePolicy
from journey.protocols import (
    Action,
    Backtrack,
    CriticVerdictGiven,
    PolicyStepProposed,
    ProtocolViolation,
    Reflect,
    Role,
    SessionEvent,
    Terminate,
    TokenUsage,
    VerifierChecked,
)
from journey.protocols.parsing import parse_self_critique_reply
from journey.sessions._debate_actions import critic_action
from journey.sessions.base import RestoreError
from journey.sessions.debate import DebateSession
from journey.sessions.state import SessionState
from journey.sessions.tree import TreeNode

__all__ = ["ProposeCritiqueSession"]


class ProposeCritiqueSession(DebateSession):
    """One propose-critique session: the policy judges its own steps.

    Args:
        problem: The problem statement.
        policy: The policy agent; its model (and sampling settings) write the steps and
            their checks, through a `SelfCritiquePolicy` built from it.
        gold_answer: When given, the verifier checks final answers against it.
        limits: Turn, depth and token limits.
        session_id: Defaults to a hash of the problem.
        models: Model spec per role, recorded in the log (without the critic).
        config: Extra settings recorded in the log.

    It asks no critic (`roles`), so it keeps none, whatever it is given (see `Session`).
    """

    strategy: ClassVar[str] = "propose-critique"
    summary: ClassVar[str] = "the policy proposes each step and checks it itself (no critic)"
    restores_any_strategy: ClassVar[bool] = False
    roles: ClassVar[frozenset[Role]] = frozenset({Role.POLICY})

    def __init__(self, problem: str, *, policy: PolicyAgent, **settings: Any) -> None:
        """As `Session`'s; the policy is wrapped to judge its own steps."""
        super().__init__(problem, policy=SelfCritiquePolicy.from_policy(policy), **settings)

    def _reset(self, state: SessionState) -> None:
        super()._reset(state)
        # Set while restoring: a final answer the policy stood by, not yet verified.
        self._awaiting_verification: TreeNode | None = None

    # -- judging: the policy's own check ------------------------------------------------------

    def _submits(self, node: TreeNode, action: Action) -> bool:
        """Whether the step is a final answer for the verifier: the policy stands by it."""
        return (
            node.is_final
            and self.verifier is not None
            and not isinstance(action, Reflect | Backtrack)
        )

    async def judge(self, node: TreeNode) -> None:
        """Read the policy's own check of the step from its reply, log it as the step's
        verdict, and send a final answer it stands by to the verifier (or apply its action)."""
        proposed = self.events[-1]
        assert isinstance(proposed, PolicyStepProposed) and proposed.node_id == node.id
        parsed = parse_self_critique_reply(proposed.raw, node.depth)
        check = parsed.check
        assert check.action is not None  # the self-critique parser always gives one
        repairs: list[ProtocolViolation]
        if self._submits(node, check.action):
            action: Action = Terminate(answer=node.final_answer, reason=check.reason or None)
            verdict, repairs = check.verdict, []
        else:
            action, verdict, repairs = self._legalise(node, check.action, check.verdict)
        self._emit(
            CriticVerdictGiven(
                **self._stamp(),
                node_id=node.id,
                verdict=verdict,
                source=check.source,
                reason=check.reason,
                action=action,
                raw=parsed.check_text,
                violations=[*check.violations, *repairs],
                usage=TokenUsage(),  # counted on the step: one reply holds both
                latency=0.0,
            )
        )
        self._show_check(node, proposed.content, check.reason, action)
        if self._submits(node, action):
            self._verify(node)
        else:
            self._apply(node, critic_action(node, action, verdict, check.reason), Role.POLICY)

    def _show_check(self, node: TreeNode, content: str, reason: str, action: Action) -> None:
        """Put the check next to its step in the policy's dialogue (it ends with the step)."""
        self._dialogue[-1] = SelfCritiquePolicy.as_reviewed(node.depth, content, reason, action)

    # -- restoring ---------------------------------------------------------------------------

    def replay_judgement(self, node: TreeNode, event: SessionEvent) -> tuple[Action, Role] | None:
        """As a debate's, with two differences: actions come from the policy, and a final
        answer the policy stood by is followed by the verifier's result."""
        if self._awaiting_verification is not None:
            if not isinstance(event, VerifierChecked):
                raise RestoreError(f"{event.type} before the final answer was verified")
            self._awaiting_verification = None
            return super().replay_judgement(node, event)
        if isinstance(event, VerifierChecked):
            raise RestoreError(f"verifier_result on node {event.node_id} before its check")
        follows = super().replay_judgement(node, event)
        assert follows is not None and isinstance(event, CriticVerdictGiven)
        self._show_check(node, self.tree[node.id].text, event.reason, event.action)
        if self._submits(node, event.action):
            self._awaiting_verification = node
            return None
        return follows[0], Role.POLICY

    async def resume_judgement(self, node: TreeNode) -> None:
        """Verify a final answer whose check was logged; judge a step afresh otherwise."""
        if self._awaiting_verification is not None:
            self._awaiting_verification = None
            self._verify(node)
            return
        await super().resume_judgement(node)
