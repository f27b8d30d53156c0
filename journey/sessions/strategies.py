"""The growth strategies a synthesis run can use, by name.

Every strategy is a `Session` subclass: built from a problem and the agents,
restorable from the events it logged, and run into a `SessionResult` (tree + event
log), its events folded by the one `SessionState`. That shared kernel is why replay,
stats, export and resume work on any strategy without knowing which one wrote a run.
A new strategy subclasses `Session` and is registered here, in one place.

Each class names the roles it asks (`roles`): a runner builds, loads and records only
those, so `propose-critique` (the policy judges its own steps) never loads a critic and
is given `critic=None`; nor does `expand` (the policy expands a reference solution).
Each also names the run settings it takes (`config_keys`): `check_strategy_config`
refuses any other, naming the strategies that take it, before the strategy checks the
values of its own (`check_config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from journey.errors import ConfigError
from journey.sessions.base import Session, SessionLimits
from journey.sessions.beam import BeamSearchSession
from journey.sessions.debate import DebateSession
from journey.sessions.expand import ExpandSession
from journey.sessions.propose_critique import ProposeCritiqueSession

__all__ = ["STRATEGIES", "check_strategy_config", "strategies_help", "strategy_session"]

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


def check_strategy_config(name: str, config: Mapping[str, Any], limits: SessionLimits) -> None:
    """Refuse run settings (`strategy_config`) that the strategy `name` does not take
    (its `config_keys`) or cannot run with (its `check_config`).

    Raises:
        ConfigError: an unknown strategy; a setting it does not take, named as `journey
            synth`'s option (`--beam-width` for `beam_width`) with the strategies that take
            it; or a value it refuses.
    """
    session = strategy_session(name)
    refused = [key for key in config if key not in session.config_keys]
    if refused:
        raise ConfigError(_not_taken(name, refused))
    session.check_config(config, limits)


def _not_taken(name: str, keys: Sequence[str]) -> str:
    """`--beam-width, --beam-size only apply to --strategy beam, not 'debate'`."""
    takers = {
        key: " or ".join(other for other, cls in _SESSIONS.items() if key in cls.config_keys)
        for key in keys
    }
    parts = []
    for taker in dict.fromkeys(takers.values()):
        options = [_option(key) for key in keys if takers[key] == taker]
        given = ", ".join(options)
        if not taker:
            parts.append(f"{given}: no strategy takes {'it' if len(options) == 1 else 'them'}")
        else:
            verb = "applies" if len(options) == 1 else "apply"
            parts.append(f"{given} only {verb} to --strategy {taker}, not {name!r}")
    return "; ".join(parts)


def _option(key: str) -> str:
    """The `journey synth` option of a run setting: `--beam-width` for `beam_width`."""
    return "--" + key.replace("_", "-")
