"""Sessions: the reasoning tree and the strategies that grow it (debate,
propose-critique, beam search)."""

from journey.sessions.beam import BeamSearchSession
from journey.sessions.debate import (
    DebateLimits,
    DebateResult,
    DebateSession,
    EventSink,
    RestoreError,
)
from journey.sessions.propose_critique import ProposeCritiqueSession
from journey.sessions.strategies import STRATEGIES, strategy_session
from journey.sessions.tree import IllegalBacktrackError, NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "STRATEGIES",
    "BeamSearchSession",
    "DebateLimits",
    "DebateResult",
    "DebateSession",
    "EventSink",
    "IllegalBacktrackError",
    "NodeLabel",
    "ProposeCritiqueSession",
    "ReasoningTree",
    "RestoreError",
    "TreeNode",
    "strategy_session",
]
