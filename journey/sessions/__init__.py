"""Sessions: the kernel every strategy shares (`Session`, whose events fold into one
`SessionState`), the reasoning tree, and the strategies that grow it (debate,
propose-critique, beam search, expand), registered by name, and the stop conditions
that end a session no answer has ended."""

from journey.sessions.base import (
    EventSink,
    RestoreError,
    Session,
    SessionLimits,
    SessionResult,
    SessionStop,
)
from journey.sessions.beam import BeamSearchSession
from journey.sessions.debate import DebateSession
from journey.sessions.expand import ExpandSession
from journey.sessions.propose_critique import ProposeCritiqueSession
from journey.sessions.state import SessionState, StateError
from journey.sessions.stop_conditions import (
    AllOf,
    AnyOf,
    MaxDepth,
    MaxTokens,
    MaxTurns,
    SessionProgress,
    StopCondition,
    StopRequested,
)
from journey.sessions.strategies import STRATEGIES, strategy_session
from journey.sessions.tree import IllegalBacktrackError, NodeLabel, ReasoningTree, TreeNode

__all__ = [
    "STRATEGIES",
    "AllOf",
    "AnyOf",
    "BeamSearchSession",
    "DebateSession",
    "EventSink",
    "ExpandSession",
    "IllegalBacktrackError",
    "MaxDepth",
    "MaxTokens",
    "MaxTurns",
    "NodeLabel",
    "ProposeCritiqueSession",
    "ReasoningTree",
    "RestoreError",
    "Session",
    "SessionLimits",
    "SessionProgress",
    "SessionResult",
    "SessionState",
    "SessionStop",
    "StateError",
    "StopCondition",
    "StopRequested",
    "TreeNode",
    "strategy_session",
]
