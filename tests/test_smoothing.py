"""Smoothing: the faithfulness checker, the smoother on fake models, and `journey smooth`.

The CLI test names its model as `function:test_smoothing:rewriter`, a function of
this module that rewrites each draft it is shown faithfully, unfaithfully or not
at all, depending on the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from typer.testing import CliRunner

from journey.agents import CriticAgent, PolicyAgent
from journey.agents.backends import FunctionChatCompletionClient, ScriptedChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, ModelUnavailableError
from journey.longthought.smoothing import (
    ANSWER_CHANGED,
    ANSWER_MISSING,
    FEWER_REFLECTIONS,
    NEW_ANSWER,
    REFLECTION_DROPPED,
    TOO_LONG,
    TOO_SHORT,
    FaithfulnessChecker,
    Smoother,
    problem_kind,
)
from journey.runs import RunDirectory
from journey.runs.jobs import NoProgress
from journey.runs.smoothing_job import MANIFEST_NAME, RECORD_NAME, SMOOTHED_NAME, smooth_run
from journey.sessions import DebateSession

runner = CliRunner()

OK = "VERDICT: correct\nACTION: continue\nREASON: fine"

# What LongThoughtWriter writes for the pens session below (see test_transcript.py).
DRAFT = (
    "Step 1: Each pen has 4 sheep.\n\n"
    "Step 2: There are 4 pens.\n\n"
    "Step 3: 4 * 4 = 16.\n\n"
    "Wait, step 3 is wrong. I counted 4 pens, not 3. Let me go back to step 1 and try another way."
    "\n\n"
    "Step 2: There are 3 pens, so 3 * 4 = 13, \\boxed{13}.\n\n"
    "Hmm, I got 13, but checking the step, 3 * 4 = 13 is false: 3 * 4 is 12. "
    "Let me check step 2 again.\n\n"
    "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}."
)
WRONG_BRANCH = (
    "I think there are 4 pens, so 4 * 4 = 16. Wait, that is wrong: I counted 4 pens, "
    "not 3. Let me go back to step 1 and try another way. "
)
FAITHFUL = (
    "Each pen holds 4 sheep. "
    + WRONG_BRANCH
    + "There are 3 pens, so 3 * 4 = 13, which gives 13. Hmm, I got 13, but that does not "
    "seem right. Let me check step 2 again: 3 * 4 = 12, so the answer is \\boxed{12}."
)


def kinds(problems: list[str]) -> set[str]:
    return {problem_kind(p) for p in problems}


# -- the checker ----------------------------------------------------------------------------


def test_a_faithful_rewrite_has_no_problems() -> None:
    assert FaithfulnessChecker().check(DRAFT, FAITHFUL) == []


def test_a_changed_answer_is_caught() -> None:
    problems = FaithfulnessChecker().check(DRAFT, FAITHFUL.replace("\\boxed{12}", "\\boxed{14}"))
    assert f"{ANSWER_CHANGED}: 12 became 14" in problems
    assert f"{NEW_ANSWER}: 14 is not an answer of the draft" in problems


def test_an_equivalent_answer_is_not_a_change() -> None:
    draft = "Step 1: Half of 1 is \\boxed{\\frac{1}{2}}."
    assert FaithfulnessChecker().check(draft, "Half of 1 is \\boxed{0.5}.") == []


def test_a_missing_answer_is_caught() -> None:
    rewrite = FAITHFUL.replace("so the answer is \\boxed{12}", "so I get twelve")
    problems = FaithfulnessChecker().check(DRAFT, rewrite)
    assert problems[0] == f"{ANSWER_MISSING}: the draft's answer 12 is not marked"


def test_a_dropped_failed_branch_is_caught() -> None:
    problems = FaithfulnessChecker().check(DRAFT, FAITHFUL.replace(WRONG_BRANCH, ""))
    assert f"{REFLECTION_DROPPED}: reflection 1 lost 16" in problems
    assert FEWER_REFLECTIONS in kinds(problems)


def test_a_reflection_reworded_without_its_marker_is_caught() -> None:
    rewrite = FAITHFUL.replace("Hmm, I got 13, but that does not seem right.", "13 is off.")
    problems = FaithfulnessChecker().check(DRAFT, rewrite)
    assert problems == [f"{FEWER_REFLECTIONS}: 4 reflection markers, the draft has 5"]


@pytest.mark.parametrize(
    "second",
    [
        " Earlier the answer is 15.",
        " Or maybe \\boxed{15}.",
        " Or \\boxed{12}, or \\boxed{12}, or \\boxed{12}.",
    ],
)
def test_a_second_answer_is_caught(second: str) -> None:
    problems = FaithfulnessChecker().check(DRAFT, FAITHFUL.replace("Each pen", second + " Each"))
    assert NEW_ANSWER in kinds(problems)


def test_length_bounds() -> None:
    checker = FaithfulnessChecker()
    assert TOO_SHORT in kinds(checker.check(DRAFT, "So \\boxed{12}."))
    assert TOO_LONG in kinds(checker.check(DRAFT, FAITHFUL + " 4 * 4 = 16." * 100))


def test_bad_length_ratios_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"min=1\.5"):
        FaithfulnessChecker(min_length_ratio=1.5)


# -- the smoother ---------------------------------------------------------------------------


async def test_a_faithful_rewrite_is_accepted() -> None:
    client = ScriptedChatCompletionClient([f"```\n{FAITHFUL}\n```"])
    result = await Smoother(client).smooth(DRAFT)
    assert result.accepted and result.reasons == [] and result.text == FAITHFUL
    assert result.usage.completion_tokens > 0
    [request] = client.requests
    assert DRAFT in str(request[-1].content) and "\\boxed{...}" in str(request[0].content)


async def test_an_unfaithful_rewrite_is_rejected_and_the_draft_kept() -> None:
    rewrite = FAITHFUL.replace("\\boxed{12}", "\\boxed{13}")
    result = await Smoother(ScriptedChatCompletionClient([rewrite])).smooth(DRAFT)
    assert not result.accepted and result.text == DRAFT and result.rewrite == rewrite
    assert result.reasons == [f"{ANSWER_CHANGED}: 12 became 13"]


async def test_a_rewrite_cut_off_by_the_token_limit_is_rejected() -> None:
    smoother = Smoother(ScriptedChatCompletionClient([FAITHFUL]), max_tokens=10)
    result = await smoother.smooth(DRAFT)
    assert not result.accepted and result.reasons[0] == f"{TOO_LONG}: cut off at 10 tokens"


# -- a run ----------------------------------------------------------------------------------

PENS = "3 pens with 4 sheep each: how many sheep?"
DOUBLE = "What is 2 times 21?"
BROKEN = "What is 5 + 5?"
UNSOLVED = "What is 7 - 2?"


def rewriter(messages: Sequence[LLMMessage]) -> str:
    """The CLI's fake smoother: faithful on the pens draft, a changed answer on the doubling
    draft, a model fault on the broken one."""
    draft = str(messages[-1].content)
    if "4 sheep" in draft:
        return FAITHFUL
    if "21" in draft:
        return "Doubling 21 gives \\boxed{41}."
    raise ModelUnavailableError("the rewriter is down")


async def solve(run: RunDirectory, problem: str, gold: str, steps: list[str], critic: list[str]):
    debate = DebateSession(
        problem,
        gold_answer=gold,
        policy=PolicyAgent(ScriptedChatCompletionClient(steps)),
        critic=CriticAgent(ScriptedChatCompletionClient(critic, cycle=True), mode="generate"),
    )
    with run.event_log(debate.session_id) as log:
        result = await debate.run(log.write)
    run.save(result)
    return result


async def fixture_run(root: Path) -> RunDirectory:
    """Three solved sessions (pens with a journey, doubling, broken) and an unsolved one."""
    run = RunDirectory(root, meta={"command": "test"})
    await solve(
        run,
        PENS,
        "12",
        [
            "Step 1: Each pen has 4 sheep.",
            "Step 2: There are 4 pens.",
            "Step 3: 4 * 4 = 16.",
            "Step 2: There are 3 pens, so 3 * 4 = 13, \\boxed{13}.",
            "Step 2: There are 3 pens, so 3 * 4 = 12, \\boxed{12}.",
        ],
        [OK, OK, "VERDICT: incorrect\nACTION: backtrack 1\nREASON: You counted 4 pens, not 3."],
    )
    await solve(run, DOUBLE, "42", ["Step 1: 2 * 21 = \\boxed{42}."], [OK])
    await solve(run, BROKEN, "10", ["Step 1: 5 + 5 = \\boxed{10}."], [OK])
    await solve(run, UNSOLVED, "5", ["Step 1: 7 - 2 = \\boxed{4}."] * 20, [OK])
    return run


def folders(run: RunDirectory) -> dict[str, Path]:
    return {s.problem: run.session_dir(s.session_id) for s in run.summaries()}


async def test_smooth_run_keeps_faithful_rewrites_counts_the_rest_and_resumes(
    tmp_path: Path,
) -> None:
    run = await fixture_run(tmp_path / "run")
    by_problem = folders(run)
    assert (by_problem[PENS] / "transcript.md").read_text().strip() == DRAFT
    smoother = Smoother(FunctionChatCompletionClient(rewriter))
    ticks: list[int] = []

    class Ticks(NoProgress):
        def advance(self, fields: Mapping[str, str]) -> None:
            ticks.append(1)

    tally = await smooth_run(run, smoother, model="function:x", concurrency=2, progress=Ticks())
    assert (tally.sessions, tally.skipped, tally.accepted, tally.rejected, tally.errors) == (
        3,
        0,
        1,
        1,
        1,
    )
    assert tally.rejected_by_kind == {ANSWER_CHANGED: 1, NEW_ANSWER: 1}
    assert len(ticks) == 3 and "the rewriter is down" in tally.error_messages[0]
    assert (by_problem[PENS] / SMOOTHED_NAME).read_text() == FAITHFUL + "\n"
    assert not (by_problem[DOUBLE] / SMOOTHED_NAME).exists()
    record = json.loads((by_problem[DOUBLE] / RECORD_NAME).read_text())
    assert record["accepted"] is False and record["rejected_rewrite"].endswith("\\boxed{41}.")
    assert record["model"] == "function:x"
    assert not (by_problem[BROKEN] / RECORD_NAME).exists()  # left for the next run
    assert not (by_problem[UNSOLVED] / RECORD_NAME).exists()  # never smoothed
    # Again: the two done sessions are skipped, the broken one is tried once more.
    client = FunctionChatCompletionClient(rewriter)
    again = await smooth_run(run, Smoother(client), model="function:x")
    # The counts cover the whole run, earlier sessions included.
    assert (again.skipped, again.accepted, again.rejected, again.errors) == (2, 1, 1, 1)
    assert again.rejected_by_kind == tally.rejected_by_kind
    assert len(client.requests) == 1


async def test_smoothing_again_with_another_model_is_refused_unless_forced(
    tmp_path: Path,
) -> None:
    run = await fixture_run(tmp_path / "run")
    client = FunctionChatCompletionClient(rewriter)
    await smooth_run(run, Smoother(client), model="function:x")
    assert json.loads((run.root / MANIFEST_NAME).read_text())["model"] == "function:x"
    with pytest.raises(ConfigError, match=r"model: 'function:x' -> 'function:y'"):
        await smooth_run(run, Smoother(client), model="function:y")
    strict = Smoother(client, checker=FaithfulnessChecker(max_length_ratio=1.5))
    with pytest.raises(ConfigError, match=r"max_length_ratio: 2\.0 -> 1\.5"):
        await smooth_run(run, strict, model="function:x")
    again = await smooth_run(run, Smoother(client), model="function:y", force=True)
    assert again.skipped == 2 and again.errors == 1  # only the broken one tried again


def test_cli_smooths_a_run_and_prints_counts(tmp_path: Path) -> None:
    import asyncio

    asyncio.run(fixture_run(tmp_path / "run"))
    args = ["smooth", str(tmp_path / "run"), "--model", "function:test_smoothing:rewriter"]
    result = runner.invoke(app, [*args, "--json", "--limit", "2"])
    assert result.exit_code == 0, result.output
    tally = json.loads(result.stdout)
    assert tally["accepted"] + tally["rejected"] + tally["errors"] == 2
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "smoothed before" in result.stdout and "answer changed" in result.stdout
    # Another rewriter on the same run: refused in one line, then let through by --force.
    other = ["smooth", str(tmp_path / "run"), "--model", "function:test_smoothing:other_rewriter"]
    refused = runner.invoke(app, other)
    assert refused.exit_code != 0 and "--force" in str(refused.exception) + refused.output
    forced = runner.invoke(app, [*other, "--force", "--json"])
    assert forced.exit_code == 0, forced.output


def other_rewriter(messages: Sequence[LLMMessage]) -> str:
    """A second rewriter (another model, for the manifest), writing what `rewriter` does."""
    return rewriter(messages)


def test_cli_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["smooth", str(tmp_path)])
    assert result.exit_code != 0 and "is not a run directory" in str(result.exception)
