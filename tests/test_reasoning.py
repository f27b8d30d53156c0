"""Reasoning models in either role: thoughts are kept apart, never parsed, and logged."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Any

import pytest
from autogen_core.models import CreateResult, LLMMessage
from rich.console import Console

from journey.agents import CriticAgent, PolicyAgent, StepUnderReview
from journey.agents.backends import ScriptedChatCompletionClient
from journey.evaluation.grading import grade_output
from journey.longthought import LongThoughtOptions, Smoother, write_long_thought
from journey.protocols import (
    Continue,
    CriticVerdictGiven,
    LabelSource,
    Reflect,
    StepVerdict,
    parse_critic_reply,
    parse_policy_reply,
    split_reasoning,
)
from journey.sessions import DebateSession
from journey.view.render import SessionRenderer


@pytest.mark.parametrize(
    ("reply", "reasoning", "answer", "unfinished"),
    [
        ("Step 1: x", "", "Step 1: x", False),
        ("<think>hmm</think>\nStep 1: x", "hmm", "Step 1: x", False),
        ("<THINKING>a</THINKING> b <reasoning>c</reasoning> d", "a\n\nc", "b  d", False),
        (
            "hmm, the template opened it</think>VERDICT: correct",
            "hmm, the template opened it",
            "VERDICT: correct",
            False,
        ),
        ("<think>still thinking when the limit", "still thinking when the limit", "", True),
        ("Before. <think>cut", "cut", "Before.", True),
    ],
)
def test_split_reasoning(reply: str, reasoning: str, answer: str, unfinished: bool) -> None:
    split = split_reasoning(reply)
    assert (split.reasoning, split.answer, split.unfinished) == (reasoning, answer, unfinished)


def test_reasoning_the_server_returned_comes_first() -> None:
    split = split_reasoning("<think>more</think>VERDICT: correct", thought="from the server")
    assert split.reasoning == "from the server\n\nmore" and split.answer == "VERDICT: correct"


def test_a_verdict_quoted_in_the_thoughts_never_counts() -> None:
    reply = (
        "<think>A first guess would be VERDICT: correct, ACTION: continue.</think>\n"
        "VERDICT: incorrect\nACTION: reflect\nREASON: off by one"
    )
    parsed = parse_critic_reply(reply, current_step=2)
    assert parsed.verdict is StepVerdict.INCORRECT and isinstance(parsed.action, Reflect)
    assert parsed.source is LabelSource.CRITIC and parsed.reason == "off by one"
    cut = parse_critic_reply(
        "<think>VERDICT: correct ACTION: continue, I think, but", current_step=2
    )
    assert cut.action is None and cut.verdict is StepVerdict.UNKNOWN
    assert cut.source is LabelSource.NONE


def test_a_step_drafted_in_the_thoughts_is_not_the_step() -> None:
    step = parse_policy_reply("<think>Step 2: 2 + 2 = 5? No.</think>Step 2: 2 + 2 = 4.", 2)
    assert step.content == "2 + 2 = 4." and not step.violations


class ThinkingClient(ScriptedChatCompletionClient):
    """Replies `THOUGHT || ANSWER` come back as a server with a reasoning parser sends them:
    the thought in `CreateResult.thought`, the answer alone as content."""

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:  # type: ignore[override]
        result = await super().create(messages, **kwargs)
        assert isinstance(result.content, str)
        thought, _, answer = result.content.partition(" || ")
        return result.model_copy(update={"content": answer, "thought": thought})


REVIEW = StepUnderReview(problem="2 + 2?", previous_steps=[], step_number=1, text="2 + 2 = 5")


def judge(client: ScriptedChatCompletionClient, **options: Any) -> Any:
    critic = CriticAgent(client, mode="generate", **options)
    return asyncio.run(critic.judge(REVIEW))


def test_a_critic_thinking_in_reasoning_content() -> None:
    client = ThinkingClient(
        ["VERDICT: correct would be my guess, but no || VERDICT: incorrect\nACTION: reflect"]
    )
    turn = judge(client)
    assert turn.verdict is StepVerdict.INCORRECT and turn.source is LabelSource.CRITIC
    assert turn.reasoning == "VERDICT: correct would be my guess, but no"


def test_a_critic_cut_off_mid_thought_is_asked_again_then_left_unknown() -> None:
    rambling = "<think>" + "let me check once more " * 50
    client = ScriptedChatCompletionClient([rambling, rambling])
    turn = judge(client, max_tokens=40)
    assert turn.verdict is StepVerdict.UNKNOWN and turn.source is LabelSource.NONE
    kinds = [v.kind for v in turn.violations]
    assert kinds.count("truncated_reply") == 2 and "fallback_continue" in kinds
    reask = client.requests[1]
    assert "<think>" not in str(reask[-2].content)  # the thoughts are not sent back
    assert "40-token limit" in next(
        v.detail for v in turn.violations if v.kind == "truncated_reply"
    )


def test_the_critic_leaves_a_reasoning_model_room_to_finish() -> None:
    client = ScriptedChatCompletionClient(["<think>" + "x " * 500 + "</think>VERDICT: correct"])
    turn = judge(client)
    assert turn.verdict is StepVerdict.CORRECT and turn.reasoning.startswith("x x")


def test_a_reasoning_policy_in_a_debate(tmp_path: Any) -> None:
    policy = ThinkingClient(["first I add || Step 1: 2 + 2 = 4, so \\boxed{4}."], cycle=True)
    critic = ScriptedChatCompletionClient(["VERDICT: correct\nACTION: continue"], cycle=True)
    session = DebateSession(
        "What is 2 + 2?",
        gold_answer="4",
        policy=PolicyAgent(policy),
        critic=CriticAgent(critic, mode="generate"),
    )
    result = asyncio.run(session.run())
    step = result.events[1]
    assert step.type == "policy_step" and step.reasoning == "first I add"  # type: ignore[union-attr]
    assert result.ended.outcome.value == "solved"
    plain = write_long_thought(result.events, result.tree)
    thinking = write_long_thought(
        result.events, result.tree, LongThoughtOptions(include_reasoning=True)
    )
    assert "first I add" not in plain
    assert thinking.startswith("first I add\n\nStep 1: 2 + 2 = 4")


def test_replay_shows_thoughts_folded_and_where_a_label_came_from() -> None:
    verdict = CriticVerdictGiven(
        session_id="s",
        turn=1,
        time=0.0,
        node_id=1,
        verdict=StepVerdict.CORRECT,
        source=LabelSource.CRITIC_ACTION,
        reason="fine",
        action=Continue(),
        reasoning="The sum of two and two is four, " * 10 + "so it is right.",
    )

    def shown(*, raw: bool) -> str:
        out = io.StringIO()
        SessionRenderer(Console(file=out, width=100), show_raw=raw).show(verdict)
        return out.getvalue()

    folded = shown(raw=False)
    assert "thoughts · 84 words" in folded and "(critic action)" in folded
    assert "so it is right." not in folded  # folded to one line
    assert "so it is right." in shown(raw=True)


def test_evaluation_and_pairs_grade_the_answer_not_the_thoughts() -> None:
    thinking = "<think>Maybe \\boxed{5}? No, 2 + 2 is 4.</think>The answer is \\boxed{4}."
    assert grade_output(thinking, "4").correct
    assert grade_output("The answer is \\boxed{4}.<think>or \\boxed{5}", "4").correct
    cut = grade_output("<think>Is it \\boxed{4}? Let me check again", "4")
    assert cut.predicted is None and not cut.correct  # it never answered


def test_a_reasoning_smoother_keeps_its_thoughts_out_of_the_rewrite() -> None:
    draft = "Step 1: 2 + 2 = 5. Wait, step 1 is wrong. Step 1: 2 + 2 = 4. So \\boxed{4}."
    rewrite = "First, 2 + 2 = 5. Wait, that is wrong: 2 + 2 = 4. So \\boxed{4}."
    client = ScriptedChatCompletionClient(
        [f"<think>Rewrite it, keep \\boxed{{5}}?</think>{rewrite}"]
    )
    result = asyncio.run(Smoother(client).smooth(draft))
    assert result.rewrite == rewrite and "<think>" not in result.text
