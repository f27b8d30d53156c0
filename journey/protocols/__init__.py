"""The journey protocol: actions, session events and reply parsing. Knows no model."""

from journey.protocols.actions import Action, ActionName, Backtrack, Continue, Reflect, Terminate
from journey.protocols.messages import (
    ActionApplied,
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    ProblemPosed,
    ProtocolViolation,
    Role,
    SessionEnded,
    SessionEvent,
    StepVerdict,
    StopReason,
    TokenUsage,
    VerifierChecked,
    event_from_json,
    event_to_json,
)

__all__ = [
    "Action",
    "ActionApplied",
    "ActionName",
    "Backtrack",
    "Continue",
    "CriticVerdictGiven",
    "Outcome",
    "PolicyStepProposed",
    "ProblemPosed",
    "ProtocolViolation",
    "Reflect",
    "Role",
    "SessionEnded",
    "SessionEvent",
    "StepVerdict",
    "StopReason",
    "Terminate",
    "TokenUsage",
    "VerifierChecked",
    "event_from_json",
    "event_to_json",
]
