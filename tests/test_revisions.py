"""Revision rows: a critique of a step, and the accepted step that answers it, asked as a
debate's policy is asked after that critique."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_debate import PENS_CRITIC, PENS_POLICY, PROBLEM, session
from typer.testing import CliRunner

from journey.agents.backends import ScriptedChatCompletionClient
from journey.cli import app
from journey.engine.plain_prompt import message_role
from journey.exports import ExportOptions, export_runs
from journey.exports.export import card_path
from journey.exports.revisions import (
    NO_ACCEPTED_SIBLING,
    NO_REASON,
    NOT_FOLLOWED,
    VERIFIER_NOTE,
    default_policy_messages,
    revision_row,
    revisions,
)
from journey.exports.rows import StepLabels
from journey.problems import load_problems
from journey.protocols import LabelSource, StepVerdict
from journey.runs import SynthesisOptions, SynthesisRunner
from journey.sessions import ReasoningTree, SessionLimits

REVISED = "Step 2: 3 * 4 = 12, so \\boxed{12}."


async def test_a_revision_is_asked_exactly_as_a_debate_shown_the_path_asks() -> None:
    """The PENS debate: step 2 "4 + 3 = 7" is rejected with a reason, "4 * 4 = 16" by the
    verifier alone, "3 * 4 = 12" verified. One revision: the critiqued step, answered by
    the verified one, its prompt the very request the debate sent after the critique."""
    debate, policy_client, _ = session(PENS_POLICY, PENS_CRITIC, config={"policy_context": "path"})
    result = await debate.run()
    tree = result.tree
    [revision] = revisions(tree, StepLabels(tree)).found
    assert revision.rejected.text == "4 + 3 = 7 sheep."
    assert revision.revised.verified is True
    row = revision_row(revision, tree, default_policy_messages())
    after_critique = policy_client.requests[2]
    asked = [{"role": message_role(m), "content": str(m.content)} for m in after_critique]
    assert row["prompt"] == asked
    assert row["completion"] == [{"role": "assistant", "content": REVISED}]


def _tree() -> ReasoningTree:
    """Step 1 under the problem four times: a critiqued wrong step, a wrong step with no
    reason, an unjudged one, and an accepted one; the accepted step has two final answers
    under it, one the verifier rejected and one it accepted."""
    tree = ReasoningTree(PROBLEM, gold_answer="12")
    critiqued = tree.add_step("3 + 4 = 7 sheep.", parent_id=0)
    tree.judge(critiqued.id, StepVerdict.INCORRECT, "Multiply, do not add.")
    bare = tree.add_step("3 - 4 = -1 sheep.", parent_id=0)
    tree.judge(bare.id, StepVerdict.INCORRECT, "")
    tree.add_step("Sheep are animals.", parent_id=0)
    accepted = tree.add_step("There are 3 pens of 4 sheep.", parent_id=0)
    tree.judge(accepted.id, StepVerdict.CORRECT, "Right.")
    wrong = tree.add_step("4 * 4 = 16, \\boxed{16}.", parent_id=accepted.id, final_answer="16")
    tree.record_verification(wrong.id, False)
    right = tree.add_step("3 * 4 = 12, \\boxed{12}.", parent_id=accepted.id, final_answer="12")
    tree.record_verification(right.id, True)
    return tree


def test_only_a_judge_s_reason_beside_an_accepted_step_makes_a_revision() -> None:
    tree = _tree()
    found = revisions(tree, StepLabels(tree)).found
    assert [(r.rejected.text, r.revised.text) for r in found] == [
        ("3 + 4 = 7 sheep.", "There are 3 pens of 4 sheep.")
    ]
    # The verifier's note names no error: its rejected answer makes no row, and a step
    # whose only accepted sibling is missing makes none either.
    assert tree[5].reason_source is LabelSource.VERIFIER
    lone = ReasoningTree(PROBLEM, gold_answer="12")
    step = lone.add_step("3 + 4 = 7 sheep.", parent_id=0)
    lone.judge(step.id, StepVerdict.INCORRECT, "Multiply, do not add.")
    assert revisions(lone, StepLabels(lone)).found == []


def test_every_rejected_step_without_a_row_is_counted_by_why() -> None:
    """The card counts what the rows stand for: each rejected step that makes none."""
    tree = _tree()
    assert revisions(tree, StepLabels(tree)).left_out == {NO_REASON: 1, VERIFIER_NOTE: 1}
    lone = ReasoningTree(PROBLEM, gold_answer="12")
    step = lone.add_step("3 + 4 = 7 sheep.", parent_id=0)
    lone.judge(step.id, StepVerdict.INCORRECT, "Multiply, do not add.")
    lone.add_step("Sheep are animals.", parent_id=0)  # never judged: no answer to it
    assert revisions(lone, StepLabels(lone)).left_out == {NO_ACCEPTED_SIBLING: 1}


def test_a_revision_deeper_in_the_tree_asks_with_the_path_before_it() -> None:
    tree = _tree()
    late = tree.add_step("3 * 4 = 11, \\boxed{11}.", parent_id=4, final_answer="11")
    tree.judge(late.id, StepVerdict.INCORRECT, "3 * 4 is 12, not 11.")
    [deep] = [r for r in revisions(tree, StepLabels(tree)).found if r.rejected.id == late.id]
    assert deep.revised.text == "3 * 4 = 12, \\boxed{12}."  # the verified one
    row = revision_row(deep, tree, default_policy_messages())
    roles = [m["role"] for m in row["prompt"]]
    assert roles[0] == "system" and roles[-2:] == ["assistant", "user"]
    assert row["prompt"][-2]["content"] == "Step 1: There are 3 pens of 4 sheep."
    assert row["prompt"][-1]["content"] == (
        "The critic agrees with step 1. Write Step 2.\n\n"
        "The critic says step 2 is wrong: 3 * 4 is 12, not 11.\n"
        "Reconsider it and write Step 2 again, correctly."
    )
    assert "11" not in "".join(m["content"] for m in row["prompt"][:-1])  # never the wrong step


def test_a_critique_naming_a_value_is_answered_only_by_a_step_using_it() -> None:
    """ "3 * 4 = 11 is false: 3 * 4 is 12" answered by a correct step that does not say 12
    would teach a policy to ignore the critique: left out and counted, unless a sibling
    uses the value."""
    tree = ReasoningTree(PROBLEM, gold_answer="12")
    wrong = tree.add_step("3 * 4 = 11 sheep.", parent_id=0)
    tree.judge(wrong.id, StepVerdict.INCORRECT, "3 * 4 = 11 is false: 3 * 4 is 12.")
    other = tree.add_step("Each of the 3 pens holds 4 sheep.", parent_id=0)
    tree.judge(other.id, StepVerdict.CORRECT, "Right.")
    unfollowed = revisions(tree, StepLabels(tree))
    assert (unfollowed.found, unfollowed.left_out) == ([], {NOT_FOLLOWED: 1})
    using = tree.add_step("4 + 4 + 4 = 12 sheep.", parent_id=0)
    tree.judge(using.id, StepVerdict.CORRECT, "Right.")
    followed = revisions(tree, StepLabels(tree))
    assert [r.revised.id for r in followed.found] == [using.id] and not followed.left_out
    # Its own numbers (11, and 3 * 4 as the claim writes it) name nothing.
    bare = ReasoningTree(PROBLEM, gold_answer="12")
    again = bare.add_step("3 * 4 = 11 sheep.", parent_id=0)
    bare.judge(again.id, StepVerdict.INCORRECT, "3 * 4 = 11 is false.")
    kept = bare.add_step("Each of the 3 pens holds 4 sheep.", parent_id=0)
    bare.judge(kept.id, StepVerdict.CORRECT, "Right.")
    assert [r.revised.id for r in revisions(bare, StepLabels(bare)).found] == [kept.id]


def _debate_run(tmp_path: Path) -> Path:
    problems = tmp_path / "pens.jsonl"
    problems.write_text(json.dumps({"problem": PROBLEM, "answer": "12"}) + "\n")
    options = SynthesisOptions(
        strategy="debate",
        policy="replay:policy",
        critic="replay:critic",
        critic_mode="generate",
        limits=SessionLimits(max_turns=8),
        strategy_config={"policy_context": "path"},
    )
    clients = {
        "policy": ScriptedChatCompletionClient(PENS_POLICY),
        "critic": ScriptedChatCompletionClient(PENS_CRITIC),
    }
    runner = SynthesisRunner(options, clients=clients)
    asyncio.run(runner.run(tmp_path / "run", load_problems(problems).records))
    return tmp_path / "run"


def test_journey_export_writes_revisions_with_their_labels_on_the_card(tmp_path: Path) -> None:
    run = _debate_run(tmp_path)
    out = tmp_path / "revisions.jsonl"
    card = export_runs([run], out, ExportOptions(format="revision"))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["completion"] == [{"role": "assistant", "content": REVISED}]
    assert "Multiply the pens by the sheep." in row["prompt"][-1]["content"]
    assert card.rows == 1 and card.layout == "prompt-completion" and card.instruction is None
    assert card.labels == {"critic": {"incorrect": 1}, "verifier": {"correct": 1}}
    assert card.rows_dropped == {VERIFIER_NOTE: 1}  # "4 * 4 = 16": a bare wrong answer
    assert card.filters["only_verified"] is False  # a failed search has revisions too

    messages = tmp_path / "messages.jsonl"
    args = ["export", str(run), "-o", str(messages), "--format", "revision"]
    exported = CliRunner().invoke(app, [*args, "--layout", "messages"])
    assert exported.exit_code == 0, exported.output
    [whole] = [json.loads(line) for line in messages.read_text().splitlines()]
    assert whole["messages"] == [*row["prompt"], *row["completion"]]
    assert json.loads(card_path(messages).read_text())["format"] == "revision"


@pytest.mark.parametrize("max_tokens", [1])
def test_a_revision_too_long_is_counted_not_written(tmp_path: Path, max_tokens: int) -> None:
    run = _debate_run(tmp_path)
    options = ExportOptions(format="revision", max_tokens=max_tokens, allow_empty=True)
    card = export_runs([run], tmp_path / "none.jsonl", options)
    assert card.rows == 0 and card.rows_dropped.get("too long") == 1
