"""The growth strategies a synthesis run can use, by name.

Every strategy is a session class with the shape of `DebateSession`: built from a
problem and the two agents, restorable from the events it logged, and run into a
`DebateResult` (tree + event log). That shared shape is why replay, stats, export
and resume work on any strategy without knowing which one wrote a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from journey.agents import CriticAgent, PolicyAgent
from journey.errors import ConfigError
from journey.protocols import SessionEvent
from journey.synthesis.beam import BeamSearchSession
from journey.synthesis.debate import DebateLimits, DebateResult, DebateSession, EventSink
from journey.synthesis.propose_critique import ProposeCritiqueSession
from journey.synthesis.tree import ReasoningTree

__all__ = ["STRATEGIES", "StrategySession", "StrategySessionType", "strategy_session"]


class StrategySession(Protocol):
    """One session of some strategy on one problem."""

    session_id: str
    tree: ReasoningTree
    events: list[SessionEvent]

    async def run(self, on_event: EventSink | None = None) -> DebateResult: ...


class StrategySessionType(Protocol):
    """A strategy's session class: its constructor and `restore`."""

    def __call__(
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
    ) -> StrategySession: ...

    def restore(
        self,
        events: Sequence[SessionEvent],
        *,
        policy: PolicyAgent,
        critic: CriticAgent,
        limits: DebateLimits | None = None,
        models: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> StrategySession: ...


_SESSIONS: dict[str, StrategySessionType] = {
    "debate": DebateSession,
    "propose-critique": ProposeCritiqueSession,
    "beam": BeamSearchSession,
}

STRATEGIES = tuple(_SESSIONS)
"""The strategy names `journey synth --strategy` takes."""


def strategy_session(name: str) -> StrategySessionType:
    """The session class of a strategy.

    Raises:
        ConfigError: no strategy has that name.
    """
    try:
        return _SESSIONS[name]
    except KeyError:
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None
