"""The journey protocol: actions, session events and reply parsing. Knows no model."""

from journey.protocols.actions import Action, ActionName, Backtrack, Continue, Reflect, Terminate
from journey.protocols.answers import extract_final_answer, has_final_answer
from journey.protocols.messages import (
    ActionApplied,
    CriticVerdictGiven,
    LabelSource,
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
from journey.protocols.parsing import (
    ParsedStep,
    ParsedVerdict,
    parse_critic_reply,
    parse_policy_reply,
)
from journey.protocols.reasoning import SplitReply, split_reasoning

__all__ = [
    "Action",
    "ActionApplied",
    "ActionName",
    "Backtrack",
    "Continue",
    "CriticVerdictGiven",
    "LabelSource",
    "Outcome",
    "ParsedStep",
    "ParsedVerdict",
    "PolicyStepProposed",
    "ProblemPosed",
    "ProtocolViolation",
    "Reflect",
    "Role",
    "SessionEnded",
    "SessionEvent",
    "SplitReply",
    "StepVerdict",
    "StopReason",
    "Terminate",
    "TokenUsage",
    "VerifierChecked",
    "event_from_json",
    "event_to_json",
    "extract_final_answer",
    "has_final_answer",
    "parse_critic_reply",
    "parse_policy_reply",
    "split_reasoning",
]
