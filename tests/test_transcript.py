from __future__ import annotations

import pytest

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.longthought import LongThoughtWriter, first_person
from journey.sessions import DebateSession

OK = "VERDICT: correct\nACTION: continue\nREASON: fine"


@pytest.mark.parametrize(
    ("critique", "expected"),
    [
        ("You added instead of multiplying", "I added instead of multiplying."),
        ("Your sum is off by one.", "My sum is off by one."),
        ("The student's count is wrong", "My count is wrong."),
        ("you're missing a pen!", "I'm missing a pen!"),
        ("", ""),
    ],
)
def test_first_person(critique: str, expected: str) -> None:
    assert first_person(critique) == expected


async def journey_session() -> DebateSession:
    policy = ScriptedChatCompletionClient(
        [
            "Step 1: Each pen has 4 sheep.",
            "Step 2: There are 4 pens.",
            "Step 3: 4 * 4 = 16.",
            "Step 2: There are 3 pens, so 3 * 4 = 13, \\boxed{13}.",
            "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}.",
        ]
    )
    critic = ScriptedChatCompletionClient(
        [OK, OK, "VERDICT: incorrect\nACTION: backtrack 1\nREASON: You counted 4 pens, not 3."]
    )
    debate = DebateSession(
        "3 pens with 4 sheep each: how many sheep?",
        gold_answer="12",
        policy=PolicyAgent(policy),
        critic=CriticAgent(critic, mode="generate"),
    )
    await debate.run()
    return debate


async def test_long_thought_keeps_wrong_turns_and_reflections_in_order() -> None:
    debate = await journey_session()
    text = LongThoughtWriter().write(debate.events)
    paragraphs = text.split("\n\n")
    assert paragraphs == [
        "Step 1: Each pen has 4 sheep.",
        "Step 2: There are 4 pens.",
        "Step 3: 4 * 4 = 16.",
        "Wait, step 3 is wrong. I counted 4 pens, not 3. "
        "Let me go back to step 1 and try another way.",
        "Step 2: There are 3 pens, so 3 * 4 = 13, \\boxed{13}.",
        # the verifier only says no; the step's own false claim is named, exactly
        "Hmm, I got 13, but checking the step, 3 * 4 = 13 is false: 3 * 4 is 12. "
        "Let me check step 2 again.",
        "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}.",
    ]


async def test_shortcut_is_the_accepted_path_alone() -> None:
    debate = await journey_session()
    final = debate.events[-1].final_node_id  # type: ignore[union-attr]
    shortcut = LongThoughtWriter.shortcut(debate.tree, final)
    assert shortcut == (
        "Step 1: Each pen has 4 sheep.\n\nStep 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}."
    )
    assert LongThoughtWriter.shortcut(debate.tree, None) is None


async def test_unboxed_accepted_answer_gets_a_closing_line() -> None:
    debate = DebateSession(
        "2+2?",
        policy=PolicyAgent(ScriptedChatCompletionClient(["Step 1: The answer is 4."])),
        critic=CriticAgent(ScriptedChatCompletionClient([OK]), mode="generate"),
    )
    await debate.run()
    text = LongThoughtWriter(vary_openers=False).write(debate.events)
    assert text.endswith("So the final answer is \\boxed{4}.")
