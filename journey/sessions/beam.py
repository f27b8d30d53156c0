"""Beam search over reasoning steps, the critic as process reward.

The search grows the tree a round (one depth) at a time:

1. **Sample.** Each node of the beam is expanded: the policy is asked `width` times,
   at the beam temperature, for the next step of that node's path; all samples of a
   round run at once, so a local model batches them. A sample that repeats a sibling
   (case and spacing aside) or gives no usable step is dropped: one violation per
   dropped sample on the expansion's first kept child, whose usage also covers them.
2. **Score.** Each new step is judged by the critic (all at once). Its reward, in
   [0, 1], is the verdict's `reward` (see `step_reward`: the
   critic's probability of accepting the step when it scores labels, else its
   verdict). A final answer goes to the verifier instead when there is a gold answer.
3. **Select.** As in the seed, the beam keeps at most `size` (K) steps judged correct:
   of the non-final steps the critic judged correct with a reward above 0, the best
   rewarded (then the oldest) form the next beam; a step judged incorrect or unknown is
   never kept, even when fewer than K steps are correct. A verified answer ends the
   search (`solved`); without a gold answer, a final answer the critic accepts ends it
   (`unverified`). Every new step gets an `action_applied`: `continue` ("kept: ...")
   for kept steps, `backtrack` to the parent ("pruned: ...") for steps the beam drops,
   the verifier's `reflect` for wrong final answers and `terminate` for the answer
   found. A pruned step is marked `abandoned`; its verdict keeps what the critic said.
   When a round keeps no step, the same beam is expanded again (see
   `BeamState.close_round`).

With `full_tree` (config `beam_full_tree`), an accepted answer does not end the search:
it gets its `terminate` as a finished leaf and the tree grows on, as the seed grows it,
to depth `limits.max_depth` or until every leaf has ended (a beam node whose expansion
reached an accepted answer is not expanded again). The session is then solved when any
answer was verified and ends on the shallowest (`TreeWalkWriter.correct_leaf`).

It stops at depth `limits.max_depth`, at `limits.max_tokens` generated tokens (checked
between rounds), or after `max_expansions` node expansions (stop reason `max_turns`).
The events are those of a debate, so replay, stats, export and the run directory
work unchanged; `tree_from_events` rebuilds the same tree.

Restoring replays a log prefix into the tree and the round in progress, then goes on:
an expansion cut short is sampled again and only the steps not yet logged are added
(up to the count its first child recorded), so with deterministic models a resumed
session equals an uninterrupted one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import fields
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from journey.agents import StepUnderReview
from journey.agents.policy import PolicyTurn
from journey.agents.step_judge import CriticTurn
from journey.errors import error_line
from journey.protocols import (
    ActionApplied,
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    ProtocolViolation,
    SessionEvent,
    StopReason,
    TokenUsage,
)
from journey.sessions.base import Session, SessionLimits, SessionStop
from journey.sessions.beam_sampling import distinct_samples, path_dialogue
from journey.sessions.beam_select import BeamOptions, BeamRound, step_reward
from journey.sessions.beam_state import BeamState
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import MaxDepth, MaxTokens, MaxTurns, StopCondition

__all__ = ["BeamSearchSession"]

_T = TypeVar("_T")


class BeamSearchSession(Session):
    """Beam search on one problem (see the module docstring).

    Args: as `DebateSession`; `config` may hold `beam_width` (w, default 3),
    `beam_size` (K, default 2), `beam_max_expansions` (default `limits.max_turns`),
    `beam_temperature` (default 0.8), `beam_full_tree` (default false) and
    `beam_walk_trials` (the long thought's trials per correct node, default 2; the
    session records it, `walk_trials_from_config` reads it back).

    Raises:
        ConfigError: a beam setting is out of range.
    """

    strategy: ClassVar[str] = "beam"
    summary: ClassVar[str] = "several steps sampled per node, the critic's score as reward"
    config_keys: ClassVar[frozenset[str]] = frozenset(
        f"beam_{option.name}" for option in fields(BeamOptions)
    )

    @cached_property
    def options(self) -> BeamOptions:
        """The beam settings in `config`; read (and checked) when the problem is posed."""
        return BeamOptions.from_config(self.config, default_expansions=self.limits.max_turns)

    @classmethod
    def check_config(cls, config: Mapping[str, Any], limits: SessionLimits) -> None:
        BeamOptions.from_config(config, default_expansions=limits.max_turns)

    def _posed_config(self) -> dict[str, Any]:
        return {**super()._posed_config(), **self.options.as_config()}

    def default_stop_condition(self) -> StopCondition:
        """Tokens, then expansions (stop reason `max_turns`), then the best node's depth."""
        limits = self.limits
        return (
            MaxTokens(limits.max_tokens)
            | MaxTurns(self.options.max_expansions)
            | MaxDepth(limits.max_depth)
        )

    def _reset(self, state: SessionState) -> None:
        super()._reset(state)
        self._state = BeamState(state, self.options, self.verifier)

    @property
    def beam(self) -> list[int]:
        """The nodes the next round expands, best first."""
        return list(self._state.beam)

    def _replay_one(self, event: SessionEvent) -> None:
        self._state.replay(event)
        self.state.apply(event)

    # -- running -----------------------------------------------------------------------------

    async def _play(self) -> None:
        if self._state.awaiting_end is not None:
            raise self._state.awaiting_end
        while True:
            await self._play_round()

    def _cancelled(self) -> SessionStop:
        return self._state.stop(StopReason.CANCELLED)

    async def _play_round(self) -> None:
        """Sample, score and select one round (or finish the round a log was cut in)."""
        state = self._state
        round_ = state.round
        if round_ is None:
            state.check_limits(self.stop_condition())
            round_ = state.open_round()
        if not round_.judged:
            await self._grow(round_)
        await self._judge(round_)
        for node_id in [n for n in state.acting(round_) if n not in round_.applied]:
            choice = state.choice(round_, node_id)
            stop = state.take(round_, node_id, choice)
            self._emit(
                ActionApplied(
                    **self._stamp(state.turn_of(round_, node_id)),
                    node_id=node_id,
                    action=choice.action,
                    cursor_id=choice.cursor_id,
                    source=choice.source,
                    note=choice.note,
                )
            )
            if stop is not None:
                raise stop

    # -- sampling ----------------------------------------------------------------------------

    async def _grow(self, round_: BeamRound) -> None:
        """Sample every expansion of the round not yet (fully) logged, and log its steps."""
        width = self.options.width
        plans = self._state.unfinished_expansions(round_)
        jobs = [self._sample(round_, parent) for parent, _, _ in plans for _ in range(width)]
        turns = await self._gather(jobs)
        for i, (parent, logged_count, expected) in enumerate(plans):
            samples = turns[i * width : (i + 1) * width]
            kept, dropped, dropped_usage = distinct_samples(self.tree, parent, samples)
            if logged_count:  # finishing a cut expansion: its first step has the tally
                kept, dropped, dropped_usage = kept[: expected - logged_count], [], TokenUsage()
            for j, turn in enumerate(kept):
                extra = (dropped, dropped_usage) if j == 0 else ([], TokenUsage())
                self._log_step(round_, parent, turn, *extra)
        if not round_.nodes:
            raise self._state.stop(
                StopReason.MODEL_ERROR,
                error=f"the policy gave no new step in {len(jobs)} samples "
                "(all duplicates or unusable)",
            )

    async def _sample(self, round_: BeamRound, parent_id: int) -> PolicyTurn:
        parent = self.tree[parent_id]
        # Rejected alternatives from earlier rounds and steps already on the path; steps of
        # this round are left out so a resumed expansion asks exactly what the first did.
        avoid = [
            *(c.text for c in self.tree.children(parent_id) if c.id not in round_.nodes),
            *(n.text for n in self.tree.path(parent_id)[1:]),
        ]
        return await self.policy.propose(
            path_dialogue(self.policy, self.tree, parent_id),
            parent.depth + 1,
            avoid=avoid,
            temperature=self.options.temperature,
        )

    def _log_step(
        self,
        round_: BeamRound,
        parent_id: int,
        turn: PolicyTurn,
        dropped: list[ProtocolViolation],
        dropped_usage: TokenUsage,
    ) -> None:
        event = PolicyStepProposed(
            **self._stamp(round_.turn_of(parent_id)),
            node_id=len(self.tree),
            parent_id=parent_id,
            step_number=self.tree[parent_id].depth + 1,
            content=turn.step.content,
            raw=turn.raw,
            final_answer=turn.step.final_answer,
            violations=[*turn.violations, *dropped],
            usage=turn.usage + dropped_usage,
            latency=turn.latency,
        )
        self._state.add_step(round_, event)
        self._emit(event)

    # -- scoring -----------------------------------------------------------------------------

    async def _judge(self, round_: BeamRound) -> None:
        """Judge the round's unjudged steps at once; log the results in node order."""
        pending = [n for n in round_.nodes if n not in round_.judged]
        by_critic = [n for n in pending if not (self.tree[n].is_final and self.verifier)]
        turns = await self._gather([self._critique(n) for n in by_critic])
        verdicts = dict(zip(by_critic, turns, strict=True))
        for node_id in pending:
            stamp = self._stamp(self._state.turn_of(round_, node_id))
            if node_id in verdicts:
                turn = verdicts[node_id]
                reward = (
                    turn.reward
                    if turn.reward is not None
                    else step_reward(turn.verdict, turn.label_scores)
                )
                verdict = CriticVerdictGiven(
                    **stamp,
                    node_id=node_id,
                    verdict=turn.verdict,
                    source=turn.source,
                    reason=turn.reason,
                    action=turn.action,
                    raw=turn.raw,
                    reasoning=turn.reasoning,
                    label_scores=turn.label_scores,
                    label_scoring=turn.label_scoring,
                    reward=reward,
                    rollouts=turn.rollouts,
                    violations=list(turn.violations),
                    usage=turn.usage,
                    latency=turn.latency,
                )
                self._state.record_verdict(round_, verdict)
                self._emit(verdict)
            else:
                assert self.verifier is not None
                result = self.verifier.check(self.tree[node_id].final_answer or "")
                check = self._verified(node_id, result, stamp)
                self._state.record_verification(round_, check)
                self._emit(check)

    async def _critique(self, node_id: int) -> CriticTurn:
        node = self.tree[node_id]
        review = StepUnderReview(
            problem=self.problem,
            previous_steps=[n.text for n in self.tree.path(node_id)[1:-1]],
            step_number=node.depth,
            text=node.text,
            final_answer=node.final_answer,
            may_terminate=self.verifier is None,
            verifier=self.verifier,
        )
        assert self.critic is not None  # a strategy that asks the critic is given one
        return await self.critic.judge(review)

    # -- events ------------------------------------------------------------------------------

    async def _gather(self, jobs: Sequence[Awaitable[_T]]) -> list[_T]:
        """Run model calls at once; a backend that failed after its retries ends the session."""
        results = await asyncio.gather(*jobs, return_exceptions=True)
        out: list[_T] = []
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                raise SessionStop(StopReason.MODEL_ERROR, Outcome.ERROR, error=error_line(result))
            out.append(result)
        return out

    def _end_turn(self) -> int:
        return self._state.expansions
