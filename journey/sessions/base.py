"""What every strategy's session shares: one problem, the agents, the limits, one
`SessionState` that its events fold into, and the frame that runs, restores and ends it.

A strategy subclasses `Session` and writes only what it does differently: `_play`
(one search from where the state stands to a `SessionStop`) and `_replay_one` (check
that a logged event is what it would have done, and fold it). Every change to a
session goes through `_emit`, which folds the event and hands it to the sink, so a
session restored from its log after a crash is exactly the one that was cut off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from journey.agents import AnswerVerifier, PolicyAgent, StepJudge, Verification
from journey.errors import ConfigError
from journey.problems import session_id_for
from journey.protocols import (
    Outcome,
    ProblemPosed,
    Role,
    SessionEnded,
    SessionEvent,
    StopReason,
    VerifierChecked,
)
from journey.sessions.state import SessionState
from journey.sessions.stop_conditions import MaxDepth, MaxTokens, MaxTurns, StopCondition
from journey.sessions.tree import ReasoningTree

__all__ = [
    "EventSink",
    "RestoreError",
    "Session",
    "SessionLimits",
    "SessionResult",
    "SessionStop",
]

EventSink = Callable[[SessionEvent], None]


@dataclass(frozen=True)
class SessionLimits:
    """When a session stops if no answer has ended it."""

    max_turns: int = field(default=16, metadata={"help": "Policy turns before the session stops."})
    max_depth: int = field(default=12, metadata={"help": "Longest path (steps) allowed."})
    max_tokens: int = field(
        default=6000, metadata={"help": "Generated tokens (both roles) before the session stops."}
    )

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_depth", "max_tokens"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value!r}")

    def stop_condition(self) -> StopCondition:
        """The limits as one condition: turns, then tokens, then depth name the reason."""
        return MaxTurns(self.max_turns) | MaxTokens(self.max_tokens) | MaxDepth(self.max_depth)

    @classmethod
    def logged(cls, config: dict[str, Any]) -> SessionLimits:
        """The limits a `problem_posed` config records."""
        return cls(**{k: v for k, v in config.items() if k in cls.__dataclass_fields__})


@dataclass
class SessionResult:
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
class SessionStop(Exception):
    """How and why a session ends: raised from anywhere in its play, caught by `run`."""

    reason: StopReason
    outcome: Outcome
    final_node: int | None = None
    """The answer the session ends on, a node of its tree."""
    error: str | None = None


class RestoreError(ValueError):
    """Logged events that cannot be replayed into a session (not a prefix of one)."""


class Session:
    """One session of a strategy on one problem.

    Args:
        problem: The problem statement.
        policy: The policy agent.
        critic: The critic agent; None (the default) for a strategy whose `roles` lack
            the critic, which a runner builds none for. Such a session keeps none (its
            `critic` is None), whatever it is given.
        gold_answer: When given, the verifier checks final answers against it.
        limits: Turn, depth and token limits.
        verifier: Checks final answers; by default math-verify against `gold_answer`
            (a dataset with its own scorer gives one built with it).
        stop_when: When the session stops if no answer ends it; by default the
            strategy's reading of `limits` (`default_stop_condition`). Not logged: a
            restore that should keep it passes it again.
        session_id: Defaults to a hash of the problem.
        models: Model spec per role, recorded in the log; a critic's is left out where
            the strategy asks no critic.
        config: Extra settings recorded in the log.
    """

    strategy: ClassVar[str]
    """The strategy name logged in `problem_posed`."""
    summary: ClassVar[str]
    """What the strategy does, in one line (the CLI's help lists it)."""
    roles: ClassVar[frozenset[Role]] = frozenset({Role.POLICY, Role.CRITIC})
    """The roles the strategy asks: a runner builds and loads only these."""
    restores_any_strategy: ClassVar[bool] = False
    """Whether `restore` takes a log another strategy wrote (when its events fit)."""
    config_keys: ClassVar[frozenset[str]] = frozenset()
    """The run settings (`strategy_config` keys) the strategy takes; a run's settings are
    refused if they name any other (`journey.sessions.strategies.check_strategy_config`)."""

    def __init__(
        self,
        problem: str,
        *,
        policy: PolicyAgent,
        critic: StepJudge | None = None,
        gold_answer: str | None = None,
        limits: SessionLimits | None = None,
        verifier: AnswerVerifier | None = None,
        stop_when: StopCondition | None = None,
        session_id: str | None = None,
        models: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        # A session keeps the agent and the model of only the roles its strategy asks.
        asks_critic = Role.CRITIC in self.roles
        self.problem = problem
        self.policy = policy
        self.critic = critic if asks_critic else None
        self.gold_answer = gold_answer
        if verifier is None and gold_answer is not None:
            verifier = AnswerVerifier(gold_answer)
        self.verifier = verifier
        self.limits = limits or SessionLimits()
        self.stop_when = stop_when
        self.session_id = session_id or session_id_for(problem)
        self.models = {
            role: model
            for role, model in (models or {}).items()
            if role != Role.CRITIC or asks_critic
        }
        self.config = config or {}
        self._sink: EventSink | None = None
        self._started = 0.0
        self._restored = False
        posed = ProblemPosed(
            session_id=self.session_id,
            turn=0,
            time=0.0,
            problem=problem,
            gold_answer=gold_answer,
            strategy=self.strategy,
            models=self.models,
            config=self._posed_config(),
        )
        self._reset(SessionState.start(posed))

    def _posed_config(self) -> dict[str, Any]:
        """The settings `problem_posed` records (a restore reads the limits back)."""
        return {**self.config, **self.limits.__dict__}

    def stop_condition(self) -> StopCondition:
        """What ends the session between turns when no answer has."""
        return self.stop_when or self.default_stop_condition()

    def default_stop_condition(self) -> StopCondition:
        """The strategy's reading of `limits`, used unless `stop_when` is given."""
        return self.limits.stop_condition()

    def _reset(self, state: SessionState) -> None:
        """Start from `state` (a fresh one, or a logged `problem_posed`'s)."""
        self.state = state

    @property
    def tree(self) -> ReasoningTree:
        """The reasoning tree grown so far."""
        return self.state.tree

    @property
    def events(self) -> list[SessionEvent]:
        """The events so far, `problem_posed` first."""
        return self.state.events

    @property
    def finished(self) -> bool:
        """True when the session has ended (it logged `session_ended`)."""
        return self.state.ended is not None

    # -- restoring ---------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        events: Sequence[SessionEvent],
        *,
        policy: PolicyAgent,
        critic: StepJudge | None = None,
        limits: SessionLimits | None = None,
        verifier: AnswerVerifier | None = None,
        stop_when: StopCondition | None = None,
        models: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Self:
        """Rebuild a session from the events it logged, so that `run()` continues it.

        The problem, gold answer and session id come from the logged `problem_posed`;
        the tree, usage, counters, turn and clock (and whatever the strategy keeps) are
        folded from the rest. `run()` then appends to `events` without posing the
        problem again and goes on from the last logged event. A log that already ends
        in `session_ended` restores a finished session, which `run()` refuses.

        Args:
            events: A prefix of one session's event log, starting with `problem_posed`.
            policy: The policy agent that goes on with the session.
            critic: The critic agent (None for a strategy that asks none).
            limits: Limits from here on; by default those recorded in the log.
            verifier: The verifier from here on (see the constructor).
            stop_when: The stop condition from here on (see the constructor).
            models: Model spec per role (recorded in the log only at the start).
            config: Extra settings (likewise).

        Raises:
            RestoreError: the events are not a prefix of one session's log.
        """
        if not events or not isinstance(events[0], ProblemPosed):
            raise RestoreError("an event log must start with problem_posed")
        posed = events[0]
        cls._check_strategy(posed)
        session = cls(
            posed.problem,
            policy=policy,
            critic=critic,
            gold_answer=posed.gold_answer,
            limits=limits or SessionLimits.logged(posed.config),
            verifier=verifier,
            stop_when=stop_when,
            session_id=posed.session_id,
            models=models or dict(posed.models),
            config=config or dict(posed.config),
        )
        session._reset(SessionState.start(posed))
        for number, event in enumerate(events[1:], 2):
            if event.session_id != session.session_id:
                raise RestoreError(
                    f"event {number} belongs to session {event.session_id!r}, "
                    f"not {session.session_id!r}"
                )
            if session.finished:
                raise RestoreError(f"event {number} ({event.type}) comes after session_ended")
            try:
                session._replay_one(event)
            except (KeyError, ValueError, AssertionError) as error:
                if isinstance(error, RestoreError):
                    raise
                raise RestoreError(
                    f"event {number} ({event.type}) does not fit the session so far: {error!r}"
                ) from error
        session._restored = True
        return session

    @classmethod
    def check_config(cls, config: Mapping[str, Any], limits: SessionLimits) -> None:
        """Refuse values of its `config_keys` this strategy cannot run with (`ConfigError`);
        none by default."""

    @classmethod
    def _check_strategy(cls, posed: ProblemPosed) -> None:
        if posed.strategy != cls.strategy and not cls.restores_any_strategy:
            raise RestoreError(f"the log is of a {posed.strategy!r} session, not {cls.strategy!r}")

    def _replay_one(self, event: SessionEvent) -> None:
        """Check that a logged event is what the session would have done next; fold it."""
        raise NotImplementedError

    # -- running -----------------------------------------------------------------------------

    async def run(self, on_event: EventSink | None = None) -> SessionResult:
        """Run the session to its end, calling `on_event` with each event as it happens.

        A restored session continues from its last logged event: only the events from
        there on are passed to `on_event` (and appended to `events`).
        """
        if self.finished:
            raise RuntimeError(f"session {self.session_id} has already ended")
        self._sink = on_event
        self._started = time.monotonic() - self.state.time
        if not self._restored and self._sink is not None:
            self._sink(self.state.posed)
        try:
            await self._play()
        except SessionStop as stop:
            self._end(stop)
        except asyncio.CancelledError:
            self._end(self._cancelled())
            raise
        return SessionResult(self.session_id, self.tree, self.events)

    async def stream(self) -> AsyncIterator[SessionEvent]:
        """The session's events as an async iterator, for callers that prefer to pull."""
        queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        task = asyncio.create_task(self.run(queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            yield event
        await task

    async def _play(self) -> None:
        """Go on from where the state stands until something raises `SessionStop`."""
        raise NotImplementedError

    def _cancelled(self) -> SessionStop:
        """How a session the caller cancelled ends (its log stays open for a resume)."""
        return SessionStop(StopReason.CANCELLED, Outcome.FAILED)

    # -- events ------------------------------------------------------------------------------

    def _stamp(self, turn: int | None = None) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "turn": self.state.turn if turn is None else turn,
            "time": round(time.monotonic() - self._started, 4),
        }

    @staticmethod
    def _verified(node_id: int, result: Verification, stamp: Mapping[str, Any]) -> VerifierChecked:
        """The event that logs the verifier's `result` on a node."""
        return VerifierChecked(
            **stamp,
            node_id=node_id,
            predicted=result.predicted,
            gold=result.gold,
            correct=result.correct,
            score=result.score,
            scorer=result.scorer,
        )

    def _emit(self, event: SessionEvent) -> None:
        self._fold(event)
        if self._sink is not None:
            self._sink(event)

    def _fold(self, event: SessionEvent) -> None:
        """The one way a session changes; a strategy that keeps more (a dialogue, a
        search frontier) extends it. Running and restoring both come here."""
        self.state.apply(event)

    def _end_turn(self) -> int:
        """The turn `session_ended` is stamped with."""
        return self.state.turn

    def _end(self, stop: SessionStop) -> None:
        state = self.state
        final = None if stop.final_node is None else self.tree[stop.final_node]
        self._emit(
            SessionEnded(
                **self._stamp(self._end_turn()),
                stop_reason=stop.reason,
                outcome=stop.outcome,
                final_answer=final.final_answer if final else None,
                final_node_id=final.id if final else None,
                usage=dict(state.usage),
                violations=state.violations,
                backtracks=state.backtracks,
                reflections=state.reflections,
                error=stop.error,
            )
        )
