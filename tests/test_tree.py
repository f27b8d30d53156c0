from __future__ import annotations

import json

import pytest

from journey.protocols import LabelSource, StepVerdict
from journey.sessions import IllegalBacktrackError, NodeLabel, ReasoningTree


def grow() -> ReasoningTree:
    """problem -> s1 -> s2 -> s3, then backtrack to 1 and add s2b (a sibling of s2)."""
    tree = ReasoningTree("What is 2+2?", "4")
    tree.add_step("s1")
    tree.add_step("s2")
    tree.add_step("s3")
    tree.backtrack(1)
    tree.add_step("s2b", final_answer="4")
    return tree


def test_steps_chain_from_the_cursor_and_record_visit_order() -> None:
    tree = grow()
    assert [n.text for n in tree] == ["What is 2+2?", "s1", "s2", "s3", "s2b"]
    assert [n.text for n in tree.current_path()] == ["s1", "s2b"]
    assert [n.depth for n in tree.current_path()] == [1, 2]


def test_backtrack_makes_the_next_step_a_sibling_and_marks_the_abandoned() -> None:
    tree = grow()
    s2, s3, s2b = tree[2], tree[3], tree[4]
    assert s2b.parent_id == s2.parent_id == 1
    assert [n.text for n in tree.siblings(s2b.id)] == ["s2"]
    assert s2.abandoned and s3.abandoned and not s2b.abandoned


def test_backtrack_to_zero_restarts_from_the_problem() -> None:
    tree = ReasoningTree("p")
    tree.add_step("a")
    tree.add_step("b")
    assert tree.backtrack(0).is_root
    new = tree.add_step("c")
    assert new.parent_id == 0 and new.depth == 1
    assert [n.text for n in tree.children(0)] == ["a", "c"]


@pytest.mark.parametrize("target", [2, 3, -1, 99])
def test_backtrack_target_must_be_on_the_current_path_before_the_cursor(target: int) -> None:
    tree = ReasoningTree("p")
    tree.add_step("a")
    tree.add_step("b")
    with pytest.raises(IllegalBacktrackError, match=r"target must be 0\.\.1"):
        tree.backtrack(target)
    assert tree.cursor == 2  # nothing moved


def test_labels_follow_the_critic_until_the_verifier_speaks() -> None:
    tree = grow()
    tree.judge(2, StepVerdict.INCORRECT, "wrong sum")
    tree.judge(1, StepVerdict.UNKNOWN, "")
    assert tree[2].label is NodeLabel.INCORRECT and tree[2].reason == "wrong sum"
    tree.record_verification(4, correct=True)
    # A verified answer labels its own step: a step nobody judged stays unknown.
    assert tree[1].label is NodeLabel.UNKNOWN and tree[1].label_source is LabelSource.NONE
    assert tree[4].label is NodeLabel.CORRECT and tree[4].verified
    assert tree[4].label_source is LabelSource.VERIFIER
    tree.judge(4, StepVerdict.INCORRECT, "critic disagrees")
    assert tree[4].label is NodeLabel.CORRECT  # the verifier outranks the critic
    assert [n.id for n in tree.correct_leaves()] == [4]
    assert {n.text for n in tree.leaves()} == {"s3", "s2b"}


def test_wrong_final_answer_is_labelled_incorrect() -> None:
    tree = ReasoningTree("p", "4")
    node = tree.add_step("so \\boxed{5}", final_answer="5")
    tree.record_verification(node.id, correct=False)
    assert node.label is NodeLabel.INCORRECT and node.verified is False
    assert tree.correct_leaves() == [] and tree.final_leaves() == [node]


def test_json_round_trip_is_exact() -> None:
    tree = grow()
    tree.judge(2, StepVerdict.INCORRECT, "because")
    tree.record_verification(4, correct=True)
    again = ReasoningTree.from_json(tree.to_json())
    assert again.to_json() == tree.to_json()
    assert again.cursor == tree.cursor and again.visit_order == tree.visit_order
    assert again[2].verdict is StepVerdict.INCORRECT and again[4].final_answer == "4"
    assert again.gold_answer == "4" and again.problem == "What is 2+2?"


def test_save_and_load(tmp_path) -> None:
    tree = grow()
    tree.save(tmp_path / "tree.json")
    assert ReasoningTree.load(tmp_path / "tree.json").to_json() == tree.to_json()


def test_a_verified_answer_never_overwrites_the_critics_verdicts_before_it() -> None:
    tree = ReasoningTree("2 + 3 = ?", "5")
    wrong = tree.add_step("2 + 3 = 6")
    tree.judge(wrong.id, StepVerdict.INCORRECT, "2 + 3 is 5", LabelSource.CRITIC)
    judged = tree.add_step("so 5 - 0 = 5")
    tree.judge(judged.id, StepVerdict.CORRECT, "fine", LabelSource.CRITIC_ACTION)
    final = tree.add_step("\\boxed{5}", final_answer="5")
    tree.record_verification(final.id, correct=True)
    assert (wrong.label, wrong.label_source) == (NodeLabel.INCORRECT, LabelSource.CRITIC)
    assert (judged.label, judged.label_source) == (NodeLabel.CORRECT, LabelSource.CRITIC_ACTION)
    assert (final.label, final.label_source) == (NodeLabel.CORRECT, LabelSource.VERIFIER)


def test_label_sources_survive_a_round_trip_and_old_trees_get_one() -> None:
    tree = grow()
    tree.judge(2, StepVerdict.INCORRECT, "wrong sum", LabelSource.SELF_CHECK)
    loaded = ReasoningTree.from_json(tree.to_json())
    assert loaded[2].label_source is LabelSource.SELF_CHECK
    assert loaded[1].label_source is LabelSource.NONE
    record = json.loads(tree.to_json())
    for node in record["nodes"]:
        node.pop("label_source")  # as trees were saved before labels had sources
    old = ReasoningTree.from_json(json.dumps(record))
    assert old[2].label is NodeLabel.INCORRECT and old[2].label_source is LabelSource.CRITIC
    assert old[1].label_source is LabelSource.NONE


def test_a_reason_says_whose_words_it_is() -> None:
    """The verifier's note names no error: the tree says it is the verifier's, so a long
    thought never repeats it as a critique, while a judge's reason is kept as theirs."""
    tree = ReasoningTree("2 * 3 = ?", "6")
    step = tree.add_step("2 * 3 = 5")
    tree.judge(step.id, StepVerdict.INCORRECT, "2 * 3 is 6", LabelSource.SELF_CHECK)
    assert step.reason_source is LabelSource.SELF_CHECK
    final = tree.add_step("\\boxed{5}", final_answer="5")
    assert final.reason == "" and final.reason_source is LabelSource.NONE
    tree.record_verification(final.id, correct=False)
    assert final.reason_source is LabelSource.VERIFIER and "5" in final.reason
    # A critic that judges the rejected answer afterwards speaks in its own words.
    tree.judge(final.id, StepVerdict.INCORRECT, "2 * 3 is 6, not 5")
    assert final.reason_source is LabelSource.CRITIC and final.label_source is LabelSource.VERIFIER
    # Trees saved before reasons had sources get one.
    record = json.loads(tree.to_json())
    for node in record["nodes"]:
        node.pop("reason_source")
    old = ReasoningTree.from_json(json.dumps(record))
    assert old[step.id].reason_source is LabelSource.CRITIC
    assert old[final.id].reason_source is LabelSource.CRITIC
    rejected = ReasoningTree("p", "4")
    answer = rejected.add_step("\\boxed{5}", final_answer="5")
    rejected.record_verification(answer.id, correct=False)
    record = json.loads(rejected.to_json())
    record["nodes"][1].pop("reason_source")
    assert ReasoningTree.from_json(json.dumps(record))[1].reason_source is LabelSource.VERIFIER
