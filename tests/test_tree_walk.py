"""The seed's depth-first walk from a searched tree to a long thought."""

from __future__ import annotations

import pytest

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import ScriptedChatCompletionClient
from journey.errors import ConfigError
from journey.longthought import LongThoughtOptions, LongThoughtWriter, WrongTurns
from journey.longthought.tree_walk import DEFAULT_TRIALS_PER_NODE, TreeWalkWriter
from journey.protocols import StepVerdict
from journey.sessions import DebateSession, ReasoningTree
from journey.sessions.beam_select import walk_trials_from_config

PROBLEM = "3 pens with 4 sheep each: how many sheep?"
OK = "VERDICT: correct\nACTION: continue\nREASON: fine"


def searched_tree() -> ReasoningTree:
    """Two steps to the verified 12, with failed branches beside both steps.

    root
    ├── 1  Each pen has 4 sheep.                      (on the correct path)
    │   ├── 2  4 pens, 4 * 4 = 16.   critic: incorrect
    │   │   └── 3  \\boxed{16}        verifier: wrong
    │   ├── 4  3 * 4 = 12, \\boxed{12} verifier: right
    │   └── 5  3 + 4 = 7, \\boxed{7}   verifier: wrong
    ├── 6  Add: 3 + 4 = 7.           critic: incorrect (a dead end)
    └── 7  Count the legs first.     unjudged, unfinished: nothing known wrong
    """
    tree = ReasoningTree(PROBLEM, gold_answer="12")
    pen = tree.add_step("Each pen has 4 sheep.", parent_id=0)
    tree.judge(pen.id, StepVerdict.CORRECT, "fine")
    four = tree.add_step("There are 4 pens, so 4 * 4 = 16.", parent_id=pen.id)
    tree.judge(four.id, StepVerdict.INCORRECT, "You counted 4 pens, not 3.")
    sixteen = tree.add_step("\\boxed{16}", parent_id=four.id, final_answer="16")
    tree.record_verification(sixteen.id, False)
    right = tree.add_step(
        "There are 3 pens, so 3 * 4 = 12, \\boxed{12}.", parent_id=pen.id, final_answer="12"
    )
    tree.record_verification(right.id, True)
    seven = tree.add_step("3 + 4 = 7, \\boxed{7}.", parent_id=pen.id, final_answer="7")
    tree.record_verification(seven.id, False)
    add = tree.add_step("Add: 3 + 4 = 7.", parent_id=0)
    tree.judge(add.id, StepVerdict.INCORRECT, "You should multiply, not add.")
    tree.add_step("Count the legs first.", parent_id=0)
    return tree


def wrong_turns(text: str) -> int:
    """The reflections a long thought holds: its paragraphs that open with a doubt."""
    return sum(line.startswith(("Wait,", "Hmm,", "Hold on,")) for line in paragraphs(text))


def paragraphs(text: str | None) -> list[str]:
    assert text is not None
    return text.split("\n\n")


def test_the_default_trial_cap_is_two() -> None:
    assert TreeWalkWriter().trials_per_node == DEFAULT_TRIALS_PER_NODE == 2


def test_walk_enters_every_failed_branch_and_reflects_with_its_critique() -> None:
    text = TreeWalkWriter(seed=0).write(searched_tree())
    lines = paragraphs(text)
    # The root's one failed branch comes first, then the correct step 1.
    assert lines[:3] == [
        "Step 1: Add: 3 + 4 = 7.",
        "Wait, step 1 is wrong. I should multiply, not add. Let me start over.",
        "Step 1: Each pen has 4 sheep.",
    ]
    # Both failed branches under step 1 are entered, in a seeded order.
    wrong_branch = [
        "Step 2: There are 4 pens, so 4 * 4 = 16.",
        "Step 3: \\boxed{16}",
        "step 2 is wrong. I counted 4 pens, not 3. Let me go back to step 1 and try another way.",
    ]
    wrong_answer = [
        "Step 2: 3 + 4 = 7, \\boxed{7}.",
        "I got 7, but that does not seem right. Let me go back to step 1 and try another way.",
    ]
    middle = lines[3:-1]
    assert len(middle) == len(wrong_branch) + len(wrong_answer)
    stripped = [
        line.split(", ", 1)[1] if line.startswith(("Hmm", "Hold")) else line for line in middle
    ]
    assert stripped in (wrong_branch + wrong_answer, wrong_answer + wrong_branch)
    assert lines[-1] == "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}."
    # The unjudged, unfinished branch holds nothing known wrong: it is not a trial.
    assert "legs" not in text  # type: ignore[operator]


def test_the_same_seed_gives_the_same_text_and_seeds_vary_the_order() -> None:
    tree = searched_tree()
    assert TreeWalkWriter(seed=3).write(tree) == TreeWalkWriter(seed=3).write(tree)
    texts = {TreeWalkWriter(seed=seed).write(tree) for seed in range(20)}
    assert len(texts) == 2  # the two orders of the failed branches under step 1


@pytest.mark.parametrize("cap", [0, 1, 2, 5])
def test_at_most_k_trials_per_step_of_the_correct_path(cap: int) -> None:
    text = TreeWalkWriter(trials_per_node=cap, vary_openers=False).write(searched_tree())
    lines = paragraphs(text)
    start = lines.index("Step 1: Each pen has 4 sheep.")
    before, after = lines[:start], lines[start:]
    assert sum(line.startswith("Wait,") for line in before) == min(cap, 1)
    assert sum(line.startswith("Wait,") for line in after) == min(cap, 2)


def test_the_trials_per_node_come_from_a_sessions_config() -> None:
    """A beam session records its K as `beam_walk_trials` in `problem_posed`'s config."""
    assert walk_trials_from_config({}) == DEFAULT_TRIALS_PER_NODE  # a debate, an older log
    trials = walk_trials_from_config({"beam_width": 3, "beam_walk_trials": 1})
    text = TreeWalkWriter(trials_per_node=trials, vary_openers=False).write(searched_tree())
    lines = paragraphs(text)
    after = lines[lines.index("Step 1: Each pen has 4 sheep.") :]
    assert sum(line.startswith("Wait,") for line in after) == 1
    with pytest.raises(ConfigError, match="walk_trials must be an integer of at least 0, got '2'"):
        walk_trials_from_config({"beam_walk_trials": "2"})


def test_no_trials_gives_the_shortcut() -> None:
    tree = searched_tree()
    shortcut = TreeWalkWriter().shortcut(tree)
    assert shortcut == LongThoughtWriter.shortcut(tree, 4)
    assert TreeWalkWriter(trials_per_node=0).write(tree) == shortcut
    assert TreeWalkWriter(enter_probability=0.0).write(tree) == shortcut


def test_enter_probability_skips_some_trials_reproducibly() -> None:
    tree = searched_tree()
    counts = {
        paragraphs(TreeWalkWriter(enter_probability=0.5, seed=seed).write(tree)).__len__()
        for seed in range(30)
    }
    assert min(counts) < max(counts)


def test_a_branch_is_followed_one_random_child_at_a_time_to_its_leaf() -> None:
    tree = ReasoningTree("2 + 2?", gold_answer="4")
    wrong = tree.add_step("Think of 2 * 3.", parent_id=0)
    tree.judge(wrong.id, StepVerdict.INCORRECT, "Your step multiplies.")
    for answer in ("6", "5"):
        leaf = tree.add_step(f"\\boxed{{{answer}}}", parent_id=wrong.id, final_answer=answer)
        tree.record_verification(leaf.id, False)
    right = tree.add_step("2 + 2 = \\boxed{4}", parent_id=0, final_answer="4")
    tree.record_verification(right.id, True)
    seen = set()
    for seed in range(20):
        lines = paragraphs(TreeWalkWriter(seed=seed, vary_openers=False).write(tree))
        assert lines[0] == "Step 1: Think of 2 * 3."
        assert lines[1] in ("Step 2: \\boxed{6}", "Step 2: \\boxed{5}")
        # The critique is the one of the step where the branch went wrong, not the leaf's.
        assert lines[2] == "Wait, step 1 is wrong. My step multiplies. Let me start over."
        assert lines[3:] == ["Step 1: 2 + 2 = \\boxed{4}"]
        seen.add(lines[1])
    assert len(seen) == 2


def test_an_unboxed_verified_answer_gets_a_closing_line() -> None:
    tree = ReasoningTree("2 + 2?", gold_answer="4")
    leaf = tree.add_step("The answer is 4.", final_answer="4")
    tree.record_verification(leaf.id, True)
    assert TreeWalkWriter().write(tree) == (
        "Step 1: The answer is 4.\n\nSo the final answer is \\boxed{4}."
    )


def test_a_tree_without_a_verified_answer_gives_none() -> None:
    tree = ReasoningTree("2 + 2?", gold_answer="4")
    leaf = tree.add_step("\\boxed{5}", final_answer="5")
    tree.record_verification(leaf.id, False)
    tree.add_step("Still thinking.", parent_id=0)
    writer = TreeWalkWriter()
    assert writer.write(tree) is None and writer.shortcut(tree) is None
    assert writer.write(ReasoningTree("2 + 2?")) is None


def test_the_walk_survives_a_round_trip_through_json() -> None:
    tree = searched_tree()
    again = ReasoningTree.from_json(tree.to_json())
    assert TreeWalkWriter(seed=7).write(again) == TreeWalkWriter(seed=7).write(tree)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trials_per_node": -1}, "trials_per_node must be >= 0, got -1"),
        ({"enter_probability": 1.5}, "enter_probability must be between 0 and 1, got 1.5"),
    ],
)
def test_bad_settings_are_refused_with_the_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TreeWalkWriter(**kwargs)  # type: ignore[arg-type]


async def test_a_debate_tree_walks_into_the_same_journey_as_its_dialogue() -> None:
    """Same steps, same reflections, same words: only the way back after a wrong answer
    differs (the walk returns to the branch point; the debate rewrote the step in place)."""
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
        PROBLEM,
        gold_answer="12",
        policy=PolicyAgent(policy),
        critic=CriticAgent(critic, mode="generate"),
    )
    await debate.run()
    walked = TreeWalkWriter().write(debate.tree)
    spoken = LongThoughtWriter().write(debate.events)
    assert walked == spoken.replace(
        "Let me check step 2 again.", "Let me go back to step 1 and try another way."
    )


def test_reasoned_only_leaves_out_a_branch_the_verifier_only_marked_wrong() -> None:
    """`3 + 4 = 7, \\boxed{7}` is a true claim and a wrong answer: its reflection could
    only doubt, so it is not entered; the critiqued branches still are."""
    every = "\n\n".join(paragraphs(TreeWalkWriter(seed=0).write(searched_tree())))
    reasoned = TreeWalkWriter(seed=0, wrong_turns=WrongTurns.REASONED).write(searched_tree())
    assert "does not seem right" in every and "3 + 4 = 7, \\boxed{7}" in every
    lines = paragraphs(reasoned)
    assert not [line for line in lines if "does not seem right" in line or "boxed{7}" in line]
    assert "Wait, step 1 is wrong. I should multiply, not add. Let me start over." in lines
    assert any("I counted 4 pens, not 3." in line for line in lines)
    assert lines[-1] == "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}."
    # What was passed over is counted, for the export's card.
    every_walk = TreeWalkWriter(seed=0).walk(searched_tree())
    reasoned_walk = TreeWalkWriter(seed=0, wrong_turns=WrongTurns.REASONED).walk(searched_tree())
    assert every_walk is not None and reasoned_walk is not None
    assert (wrong_turns(every_walk.text), every_walk.wrong_turns_left_out) == (3, {})
    reasoned_counts = (wrong_turns(reasoned_walk.text), reasoned_walk.wrong_turns_left_out)
    assert reasoned_counts == (2, {"no reason given": 1})


def test_the_wrong_turns_choice_is_checked_where_it_is_made() -> None:
    """A choice read from a recipe or the command line is a string: one that is not a
    choice is refused with the choices, by the walker and the writer's options alike."""
    assert TreeWalkWriter(wrong_turns="followed").wrong_turns is WrongTurns.FOLLOWED  # type: ignore[arg-type]
    for make in (TreeWalkWriter, LongThoughtOptions):
        with pytest.raises(ConfigError, match="one of all, reasoned, followed, got 'some'"):
            make(wrong_turns="some")  # type: ignore[arg-type]
    record = LongThoughtOptions(wrong_turns=WrongTurns.REASONED).record()
    assert record["wrong_turns"] == "reasoned" and type(record["wrong_turns"]) is str


def test_a_rejected_answer_with_a_false_claim_is_reasoned() -> None:
    tree = ReasoningTree(PROBLEM, gold_answer="12")
    wrong = tree.add_step("3 * 4 = 14, \\boxed{14}.", parent_id=0, final_answer="14")
    tree.record_verification(wrong.id, False)
    right = tree.add_step("3 * 4 = 12, \\boxed{12}.", parent_id=0, final_answer="12")
    tree.record_verification(right.id, True)
    lines = paragraphs(TreeWalkWriter(wrong_turns=WrongTurns.REASONED).write(tree))
    assert lines == [
        "Step 1: 3 * 4 = 14, \\boxed{14}.",
        "Wait, I got 14, but checking the step, 3 * 4 = 14 is false: 3 * 4 is 12. "
        "Let me start over.",
        "Step 1: 3 * 4 = 12, \\boxed{12}.",
    ]


def corrected_tree() -> ReasoningTree:
    """8 * 7 * 2: the correct path 8 * 7 = 56, then 56 * 2 = 112; beside step 1, two
    corrections naming 56, one naming 14 (a value step 1 does not use) and a critique
    that names no value."""
    tree = ReasoningTree("What is 8 * 7 * 2?", gold_answer="112")
    for text, reason in [
        ("8 * 7 = 54.", "8 * 7 = 54 is false: 8 * 7 is 56."),
        ("8 * 7 = 58.", "8 * 7 = 58 is false: 8 * 7 is 56."),
        ("7 * 2 = 15.", "7 * 2 = 15 is false: 7 * 2 is 14."),
        ("Add them: 8 + 7 = 15.", "You should multiply, not add."),
    ]:
        wrong = tree.add_step(text, parent_id=0)
        tree.judge(wrong.id, StepVerdict.INCORRECT, reason)
    first = tree.add_step("8 * 7 = 56.", parent_id=0)
    tree.judge(first.id, StepVerdict.CORRECT, "The arithmetic holds.")
    answer = tree.add_step("56 * 2 = 112, \\boxed{112}.", parent_id=first.id, final_answer="112")
    tree.record_verification(answer.id, True)
    return tree


def test_followed_corrections_only_writes_a_correction_just_before_the_step_using_it() -> None:
    """A correction the next step ignores taught models to copy their wrong step again:
    one correction per step, the one whose right value the next step uses, written last."""
    every = TreeWalkWriter(trials_per_node=4).walk(corrected_tree())
    assert every is not None and wrong_turns(every.text) == 4
    for seed in range(6):
        walker = TreeWalkWriter(trials_per_node=4, seed=seed, wrong_turns=WrongTurns.FOLLOWED)
        walked = walker.walk(corrected_tree())
        assert walked is not None
        left_out = {"correction already written": 1, "correction not followed": 1}
        assert (wrong_turns(walked.text), walked.wrong_turns_left_out) == (2, left_out)
        lines = paragraphs(walked.text)
        assert "7 * 2 = 15" not in walked.text
        assert ("8 * 7 = 54" in walked.text) != ("8 * 7 = 58" in walked.text)
        assert any("I should multiply, not add." in line for line in lines)
        step = lines.index("Step 1: 8 * 7 = 56.")
        assert "8 * 7 is 56" in lines[step - 1]  # the correction, just before its use
        assert lines[-1] == "Step 2: 56 * 2 = 112, \\boxed{112}."


def test_a_critique_that_names_no_value_is_not_a_correction() -> None:
    """The right value of `3 - 1 = 3` is 2, and "step 2 is wrong" says 2: the step's
    number is not a value the critique names, so the branch is an ordinary trial."""
    tree = ReasoningTree("What is 8 * 3 - 1?", gold_answer="23")
    first = tree.add_step("8 * 3 = 24.", parent_id=0)
    tree.judge(first.id, StepVerdict.CORRECT, "The arithmetic holds.")
    slip = tree.add_step("3 - 1 = 3, so 24 - 3 = 21.", parent_id=first.id)
    tree.judge(slip.id, StepVerdict.INCORRECT, "You subtracted wrongly.")
    answer = tree.add_step("24 - 1 = 23, \\boxed{23}.", parent_id=first.id, final_answer="23")
    tree.record_verification(answer.id, True)
    walked = TreeWalkWriter(wrong_turns=WrongTurns.FOLLOWED).walk(tree)
    assert walked is not None and walked.wrong_turns_left_out == {}
    reflection = "Wait, step 2 is wrong. I subtracted wrongly. Let me go back to step 1 and try"
    assert paragraphs(walked.text)[2].startswith(reflection)


def test_a_critic_that_says_nothing_gives_no_wrong_turn_and_is_counted() -> None:
    """A critic that judged a step incorrect and gave no reason: the step is not entered
    as a correction or a trial, and the card's count says so."""
    tree = corrected_tree()
    silent = tree.add_step("8 * 7 = 65.", parent_id=0)
    tree.judge(silent.id, StepVerdict.INCORRECT, "")
    walked = TreeWalkWriter(trials_per_node=5, wrong_turns=WrongTurns.FOLLOWED).walk(tree)
    assert walked is not None and "8 * 7 = 65" not in walked.text
    assert walked.wrong_turns_left_out["no reason given"] == 1
