"""Stop conditions: how they combine, and sessions that stop on one they were given."""

from __future__ import annotations

import pytest

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.protocols import (
    CriticVerdictGiven,
    Outcome,
    PolicyStepProposed,
    StepVerdict,
    StopReason,
    event_from_json,
)
from journey.sessions import (
    AllOf,
    AnyOf,
    BeamSearchSession,
    DebateSession,
    MaxDepth,
    MaxTokens,
    MaxTurns,
    SessionLimits,
    SessionProgress,
)

PROBLEM = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there?"
OK = "VERDICT: correct\nACTION: continue\nREASON: The step is right."


def progress(turns: int = 0, tokens: int = 0, depth: int = 0) -> SessionProgress:
    return SessionProgress(turns=turns, generated_tokens=tokens, depth=depth)


def test_each_limit_names_its_reason_at_the_limit_and_not_before() -> None:
    assert MaxTurns(3).check(progress(turns=2)) is None
    assert MaxTurns(3).check(progress(turns=3)) is StopReason.MAX_TURNS
    assert MaxTokens(100).check(progress(tokens=99)) is None
    assert MaxTokens(100).check(progress(tokens=100)) is StopReason.MAX_TOKENS
    assert MaxDepth(2).check(progress(depth=1)) is None
    assert MaxDepth(2).check(progress(depth=2)) is StopReason.MAX_DEPTH


def test_or_stops_on_either_and_the_leftmost_firing_names_the_reason() -> None:
    either = MaxTurns(3) | MaxTokens(100)
    assert isinstance(either, AnyOf)
    assert either.check(progress(turns=1, tokens=10)) is None
    assert either.check(progress(turns=1, tokens=100)) is StopReason.MAX_TOKENS
    assert either.check(progress(turns=3, tokens=100)) is StopReason.MAX_TURNS
    assert (MaxTokens(100) | MaxTurns(3)).check(
        progress(turns=3, tokens=100)
    ) is StopReason.MAX_TOKENS


def test_and_stops_only_when_both_do() -> None:
    both = MaxTurns(3) & MaxDepth(2)
    assert isinstance(both, AllOf)
    assert both.check(progress(turns=5, depth=1)) is None
    assert both.check(progress(turns=1, depth=5)) is None
    assert both.check(progress(turns=3, depth=2)) is StopReason.MAX_TURNS


def test_chains_stay_flat_and_mix() -> None:
    chain = MaxTurns(1) | MaxTokens(2) | MaxDepth(3)
    assert isinstance(chain, AnyOf) and len(chain.conditions) == 3
    mixed = (MaxTurns(5) & MaxDepth(2)) | MaxTokens(50)
    assert mixed.check(progress(turns=5, depth=1, tokens=10)) is None
    assert mixed.check(progress(turns=5, depth=2)) is StopReason.MAX_TURNS
    assert mixed.check(progress(tokens=50)) is StopReason.MAX_TOKENS


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_tokens must be at least 1, got 0"):
        MaxTokens(0)


def test_the_debate_limits_are_one_condition() -> None:
    condition = SessionLimits(max_turns=4, max_depth=3, max_tokens=90).stop_condition()
    assert condition == MaxTurns(4) | MaxTokens(90) | MaxDepth(3)


def debate(policy: list[str], critic: list[str], **kwargs: object) -> DebateSession:
    return DebateSession(
        PROBLEM,
        gold_answer="12",
        policy=PolicyAgent(ScriptedChatCompletionClient(policy)),
        critic=CriticAgent(ScriptedChatCompletionClient(critic), mode="generate"),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_debate_stops_on_the_condition_it_was_given_not_its_limits() -> None:
    steps = [f"Step {i}: still thinking." for i in range(1, 10)]
    # Limits alone would allow 9 turns; the condition stops at depth 2 only once 2
    # turns are taken as well.
    session = debate(
        steps,
        [OK] * 9,
        limits=SessionLimits(max_turns=9),
        stop_when=MaxTurns(2) & MaxDepth(2),
    )
    result = await session.run()
    assert result.ended.stop_reason is StopReason.MAX_TURNS
    assert result.ended.outcome is Outcome.FAILED
    assert sum(isinstance(e, PolicyStepProposed) for e in result.events) == 2


async def test_a_restored_debate_keeps_the_condition_it_is_given_again() -> None:
    steps = [f"Step {i}: still thinking." for i in range(1, 10)]
    first = debate(steps, [OK] * 9, stop_when=MaxTurns(5))
    events = []
    async for event in first.stream():
        events.append(event)
        if len(events) == 5:  # problem, then two steps with their verdicts and actions
            break
    restored = DebateSession.restore(
        events,
        policy=PolicyAgent(ScriptedChatCompletionClient(steps[2:])),
        critic=CriticAgent(ScriptedChatCompletionClient([OK] * 9), mode="generate"),
        stop_when=MaxTurns(3),
    )
    result = await restored.run()
    assert result.ended.stop_reason is StopReason.MAX_TURNS and result.ended.turn == 3


def test_a_beam_search_reads_its_limits_as_tokens_expansions_then_depth() -> None:
    session = BeamSearchSession(
        PROBLEM,
        policy=PolicyAgent(ScriptedChatCompletionClient([])),
        critic=CriticAgent(ScriptedChatCompletionClient([])),
        limits=SessionLimits(max_turns=7, max_depth=4, max_tokens=300),
        config={"beam_max_expansions": 5},
    )
    assert session.stop_condition() == MaxTokens(300) | MaxTurns(5) | MaxDepth(4)
    given = MaxTokens(10)
    session.stop_when = given
    assert session.stop_condition() is given


def test_a_logged_beam_reward_in_the_label_scores_is_read_into_its_own_field() -> None:
    """Logs written before `reward` had a field carried it among the label scores."""
    line = (
        '{"type": "critic_verdict", "session_id": "s", "turn": 1, "time": 0.0, "node_id": 1,'
        ' "verdict": "correct", "reason": "ok", "action": {"action": "continue"},'
        ' "label_scores": {"continue": -0.1, "reflect": -2.3, "reward": 0.9}}'
    )
    event = event_from_json(line)
    assert isinstance(event, CriticVerdictGiven)
    assert event.reward == 0.9 and event.verdict is StepVerdict.CORRECT
    assert event.label_scores == {"continue": -0.1, "reflect": -2.3}
    only_reward = line.replace('"continue": -0.1, "reflect": -2.3, ', "")
    bare = event_from_json(only_reward)
    assert isinstance(bare, CriticVerdictGiven)
    assert bare.reward == 0.9 and bare.label_scores is None
