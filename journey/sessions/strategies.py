"""The growth strategies a synthesis run can use, by name.

Every strategy is a session class with the shape of `DebateSession`: built from a
problem and the agents, restorable from the events it logged, and run into a
`DebateResult` (tree + event log). That shared shape is why replay, stats, export
and resume work on any strategy without knowing which one wrote a run.

Each class names the roles it asks (`roles`): a runner builds, loads and records only
those, so `propose-critique` (the policy judges its own steps) never loads a critic and
is given `critic=None`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from journey.agents import CriticAgent, PolicyAgent
from journey.errors import ConfigError
from journey.protocols import Role, SessionEvent
from journey.sessions.beam import BeamSearchSession
from journey.sessions.debate import DebateLimits, DebateResult, DebateSession, EventSink
from journey.sessions.propose_critique import ProposeCritiqueSession
from journey.sessions.tree import ReasoningTree

__all__ = ["STRATEGIES", "StrategySession", "StrategySessionType", "strategy_session"]


class StrategySession(Protocol):
    """One session of some strategy on one problem."""

    session_id: str
    tree: ReasoningTree
    events: list[SessionEvent]

    async def run(self, on_event: EventSink | None = None) -> DebateResult: ...


class StrategySessionType(Protocol):
    """A strategy's session class: the roles it asks, its constructor and `restore`.

    `critic` is None only for a strategy whose `roles` lack the critic.
    """

    roles: ClassVar[frozenset[Role]]

    def __call__(
        self,
        problem: str,
        *,
        policy: PolicyAgent,
        critic: CriticAgent | None,
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
        critic: CriticAgent | None,
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
