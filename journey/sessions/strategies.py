"""The growth strategies a synthesis run can use, by name.

Every strategy is a `Session` subclass: built from a problem and the agents,
restorable from the events it logged, and run into a `DebateResult` (tree + event
log), its events folded by the one `SessionState`. That shared kernel is why replay,
stats, export and resume work on any strategy without knowing which one wrote a run.
A new strategy subclasses `Session` and is registered here, in one place.

Each class names the roles it asks (`roles`): a runner builds, loads and records only
those, so `propose-critique` (the policy judges its own steps) never loads a critic and
is given `critic=None`; nor does `expand` (the policy expands a reference solution).
"""

from __future__ import annotations

from journey.errors import ConfigError
from journey.sessions.base import Session
from journey.sessions.beam import BeamSearchSession
from journey.sessions.debate import DebateSession
from journey.sessions.expand import ExpandSession
from journey.sessions.propose_critique import ProposeCritiqueSession

__all__ = ["STRATEGIES", "strategies_help", "strategy_session"]

_SESSIONS: dict[str, type[Session]] = {
    "debate": DebateSession,
    "propose-critique": ProposeCritiqueSession,
    "beam": BeamSearchSession,
    "expand": ExpandSession,
}

STRATEGIES = tuple(_SESSIONS)
"""The strategy names `journey synth --strategy` takes."""


def strategies_help() -> str:
    """Each strategy's name and what it does, for a command's help text."""
    return "; ".join(f"{name}: {cls.summary}" for name, cls in _SESSIONS.items()) + "."


def strategy_session(name: str) -> type[Session]:
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
