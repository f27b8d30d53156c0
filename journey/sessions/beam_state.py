"""The bookkeeping of a beam search: the tree, the beam, the round in progress.

Everything here changes only through logged events (a step, a verdict, a
verification, an applied action), so a live session and one restored from its log
end in the same state. No model is called here; `BeamSearchSession` does that.
"""

from __future__ import annotations

from journey.agents import AnswerVerifier
from journey.protocols import (
    ActionApplied,
    CriticVerdictGiven,
    ExpansionRejected,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    Role,
    SessionEnded,
    SessionEvent,
    StopReason,
    Terminate,
    VerifierChecked,
)
from journey.sessions.base import RestoreError, SessionStop
from journey.sessions.beam_select import (
    DROPPED_KINDS,
    BeamChoice,
    BeamOptions,
    BeamRound,
    accepted_answer,
    answer_node,
    choose,
    ranking,
    step_reward,
    winner,
)
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import SessionProgress, StopCondition
from journey.sessions.tree import ROOT_ID, ReasoningTree


class BeamState:
    """A beam search's tree and frontier, grown only by logged events."""

    def __init__(
        self,
        session: SessionState,
        options: BeamOptions,
        verifier: AnswerVerifier | None,
    ) -> None:
        self.session = session
        """The session's state: the tree, usage and counters, which its events change."""
        self.options = options
        self.verifier = verifier
        self.beam: list[int] = [ROOT_ID]
        """The nodes the next round expands, best first."""
        self.round: BeamRound | None = None
        """The round in progress; None between rounds."""
        self.expansions = 0
        self.rewards: dict[int, float] = {}
        self.steps: dict[int, PolicyStepProposed] = {}
        self.awaiting_end: SessionStop | None = None
        """Set when the log applied a terminating action but has no `session_ended` yet."""

    @property
    def tree(self) -> ReasoningTree:
        return self.session.tree

    # -- rounds ------------------------------------------------------------------------------

    def stop(self, reason: StopReason, error: str | None = None) -> SessionStop:
        """The stop for `reason` given what the tree holds.

        A full tree grows past its answers, so whatever stops it, the session is solved
        (unverified without a gold answer) when it found one, and ends on the shallowest
        (`answer_node`); otherwise it failed. A search that stops at its first answer
        has found none when this is called.
        """
        final = answer_node(self.tree, self.verifier)
        if final is None:
            return SessionStop(reason, Outcome.FAILED, error=error)
        outcome = Outcome.SOLVED if self.verifier is not None else Outcome.UNVERIFIED
        return SessionStop(reason, outcome, final_node=final, error=error)

    def check_limits(self, condition: StopCondition) -> None:
        """Raise the stop `condition` calls for before the next round, if any (a beam
        search's turns are its expansions; its depth is the best beam node's)."""
        progress = SessionProgress(
            turns=self.expansions,
            generated_tokens=self.session.generated_tokens,
            depth=self.tree[self.beam[0]].depth,
        )
        if (reason := condition.check(progress)) is not None:
            raise self.stop(reason)

    def open_round(self) -> BeamRound:
        """Start a round over as much of the beam as the expansion cap allows."""
        room = max(self.options.max_expansions - self.expansions, 0)
        self.round = BeamRound(parents=self.beam[:room], first_turn=self.expansions)
        self.expansions += len(self.round.parents)
        return self.round

    def unfinished_expansions(self, round_: BeamRound) -> list[tuple[int, int, int]]:
        """(parent, steps logged, steps expected) for each expansion still to sample.

        An expansion's first step records how many of its `width` samples were dropped,
        so a cut expansion knows how many steps it still owes.
        """
        plans = []
        for parent in round_.parents:
            logged = [n for n in round_.nodes if self.tree[n].parent_id == parent]
            expected = self.options.width
            if logged:
                first = self.steps[logged[0]]
                expected -= sum(v.kind in DROPPED_KINDS for v in first.violations)
            if not logged or len(logged) < expected:
                plans.append((parent, len(logged), expected))
        return plans

    def turn_of(self, round_: BeamRound, node_id: int) -> int:
        parent = self.tree[node_id].parent_id
        return round_.turn_of(ROOT_ID if parent is None else parent)

    # -- recording events --------------------------------------------------------------------

    # The session state folds each event (tree, usage, counters); these methods keep the
    # search's own books: the round's steps, their rewards, the actions taken.

    def add_step(self, round_: BeamRound, event: PolicyStepProposed) -> None:
        round_.nodes.append(event.node_id)
        self.steps[event.node_id] = event

    def record_verdict(self, round_: BeamRound, event: CriticVerdictGiven) -> None:
        reward = event.reward
        if reward is None:  # a verdict another strategy logged
            reward = step_reward(event.verdict, event.label_scores)
        self.rewards[event.node_id] = reward
        round_.judged.add(event.node_id)

    def record_verification(self, round_: BeamRound, event: VerifierChecked) -> None:
        self.rewards[event.node_id] = 1.0 if event.correct else 0.0
        round_.judged.add(event.node_id)

    def acting(self, round_: BeamRound) -> list[int]:
        """The judged round's steps that get an action: all, or the answer that ends it."""
        if not self.options.full_tree:
            best = winner(self.tree, round_, self.rewards, self.verifier)
            if best is not None:
                return [best]
        return list(round_.nodes)

    def choice(self, round_: BeamRound, node_id: int) -> BeamChoice:
        return choose(self.tree, round_, node_id, self.rewards, self.options, self.verifier)

    def take(self, round_: BeamRound, node_id: int, choice: BeamChoice) -> SessionStop | None:
        """Book a choice applied; the stop it causes, if any.

        The round's last choice closes it (`close_round`).
        """
        round_.applied.add(node_id)
        if isinstance(choice.action, Terminate) and not self.options.full_tree:
            if choice.source is Role.VERIFIER:
                return SessionStop(StopReason.VERIFIED_ANSWER, Outcome.SOLVED, final_node=node_id)
            return SessionStop(StopReason.ANSWER_ACCEPTED, Outcome.UNVERIFIED, final_node=node_id)
        if len(round_.applied) == len(round_.nodes):
            return self.close_round(round_)
        return None

    def close_round(self, round_: BeamRound) -> SessionStop | None:
        """Choose the next beam once every step of the round has its action.

        The kept steps (at most K, all judged correct) become the beam. When the round
        keeps none, the beam stays at this depth: every node of it is expanded again but
        those whose expansion reached an accepted answer (a full tree only: otherwise
        that answer ended the search), as the seed's search would go on from the deepest
        correct steps it has. A beam left with no node has only finished leaves: the
        full tree is grown and the search ends on its shallowest answer.
        """
        self.round = None
        ranked = ranking(self.tree, round_, self.rewards, self.options.size)
        kept = sorted((r for r in ranked.values() if r.kept), key=lambda r: r.rank)
        if kept:
            self.beam = [r.node_id for r in kept]
            return None
        answers = [n for n in round_.nodes if accepted_answer(self.tree, n, self.verifier)]
        finished = {self.tree[n].parent_id for n in answers}
        unfinished = [n for n in self.beam if n not in finished]
        if not unfinished:
            if self.verifier is not None:
                return self.stop(StopReason.VERIFIED_ANSWER)
            return self.stop(StopReason.ANSWER_ACCEPTED)
        self.beam = unfinished
        return None

    # -- replaying a log ---------------------------------------------------------------------

    def replay(self, event: SessionEvent) -> None:
        """Apply one logged event, checking it is what the search would have done.

        Raises:
            RestoreError: the event does not fit the session so far.
        """
        if isinstance(event, ProblemPosed):
            raise RestoreError("problem_posed appears twice")
        if isinstance(event, SessionEnded):
            self.awaiting_end = None
            return
        if self.awaiting_end is not None:
            raise RestoreError(f"{event.type} after the session should have ended")
        if isinstance(event, PolicyStepProposed):
            self._replay_step(event)
            return
        if isinstance(event, ExpansionRejected):
            raise RestoreError(f"{event.type} has no place in a beam search")
        round_ = self.round
        if round_ is None or event.node_id not in round_.nodes:
            raise RestoreError(f"{event.type} on node {event.node_id}, not a step of this round")
        if isinstance(event, CriticVerdictGiven | VerifierChecked):
            if event.node_id in round_.judged:
                raise RestoreError(f"node {event.node_id} is judged twice")
            if isinstance(event, CriticVerdictGiven):
                self.record_verdict(round_, event)
            else:
                self.record_verification(round_, event)
            return
        assert isinstance(event, ActionApplied)
        if len(round_.judged) < len(round_.nodes) or event.node_id in round_.applied:
            raise RestoreError(f"action on node {event.node_id} before its round was judged")
        choice = self.choice(round_, event.node_id)
        logged = (event.action.action, event.source, event.cursor_id)
        if logged != (choice.action.action, choice.source, choice.cursor_id):
            raise RestoreError(
                f"the log applies {event.action.action} to node {event.node_id}, "
                f"the beam would apply {choice.action.action}"
            )
        self.awaiting_end = self.take(round_, event.node_id, choice)

    def _replay_step(self, event: PolicyStepProposed) -> None:
        round_ = self.round
        if round_ is not None and round_.judged:
            raise RestoreError(f"step {event.node_id} comes after its round was judged")
        if round_ is None:
            round_ = self.open_round()
        if event.parent_id not in round_.parents:
            raise RestoreError(
                f"step {event.node_id} hangs from node {event.parent_id}, "
                f"which is not in the beam {round_.parents}"
            )
        self.add_step(round_, event)
