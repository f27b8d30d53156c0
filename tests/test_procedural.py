"""reasoning-gym datasets: `rg:` specs, generated problems, and their own verifiers in a run."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from rich.console import Console
from test_runner import fake_critic
from typer.testing import CliRunner

from journey.agents import AnswerVerifier
from journey.cli import app
from journey.errors import ConfigError
from journey.problems import load_problems
from journey.problems.procedural import parse_procedural_source, procedural_score
from journey.protocols import VerifierChecked
from journey.runs import RunDirectory, SynthesisOptions, SynthesisRunner
from journey.runs.rundir import read_event_log
from journey.sessions import SessionLimits
from journey.view.progress import synthesis_progress

SPEC = "rg:basic_arithmetic?size=6&seed=3"


def test_a_spec_parses_round_trips_and_refuses_what_is_wrong() -> None:
    source = parse_procedural_source("rg:chain_sum?seed=2&size=4&min_terms=2&max_terms=3")
    assert source is not None
    assert (source.task, source.size, source.seed) == ("chain_sum", 4, 2)
    assert dict(source.config) == {"min_terms": 2, "max_terms": 3}
    assert str(source) == "rg:chain_sum?max_terms=3&min_terms=2&seed=2&size=4"
    assert parse_procedural_source(str(source)) == source
    assert parse_procedural_source("data/math500.jsonl") is None
    for bad, why in [
        ("rg:", "names no reasoning-gym task"),
        ("rg:chain_sum?size", "bad option 'size'"),
        ("rg:chain_sum?size=0", "size must be at least 1"),
        ("rg:chain_sum?seed=x", "seed must be a whole number"),
    ]:
        with pytest.raises(ConfigError, match=why):
            parse_procedural_source(bad)
    with pytest.raises(ConfigError, match="no task 'chain_summ'; did you mean chain_sum"):
        load_problems("rg:chain_summ?size=2")
    with pytest.raises(ConfigError, match="reasoning-gym refused"):
        load_problems("rg:chain_sum?size=2&no_such_setting=1")


def test_generated_problems_are_the_same_every_time_and_carry_their_verifier() -> None:
    first, again = load_problems(SPEC), load_problems(SPEC)
    assert [r.problem for r in first.records] == [r.problem for r in again.records]
    assert len(first) == 6 and not first.issues
    record = first.records[2]
    # the verifier names reasoning-gym's own draws (repeats and all) and the index among them
    assert record.meta["verifier"] == "rg:basic_arithmetic?distinct=false&seed=3&size=6#2"
    assert record.meta["task"]["source_dataset"] == "basic_arithmetic"
    assert first.source is not None and first.source.record()["spec"] == str(
        parse_procedural_source(SPEC)
    )
    with pytest.raises(ConfigError, match="--split does not apply"):
        load_problems(SPEC, split="test")


SMALL_POOL = "rg:products?seed=1&min_terms=2&max_terms=2&min_digits=1&max_digits=1"
"""Products of two one-digit factors: 100 different questions, drawn at random."""


def test_problems_are_different_questions_unless_repeats_are_asked_for() -> None:
    raw = load_problems(f"{SMALL_POOL}&size=60&distinct=false")
    raw_questions = [r.problem for r in raw.records]
    assert len(raw_questions) == 60 and len(set(raw_questions)) < 60  # the pool repeats

    distinct = load_problems(f"{SMALL_POOL}&size=60")
    questions = [r.problem for r in distinct.records]
    assert len(questions) == len(set(questions)) == 60
    # the first different draws, in draw order: what reasoning-gym gave, less its repeats
    assert questions[: len(set(raw_questions))] == list(dict.fromkeys(raw_questions))
    assert distinct.source is not None
    record = distinct.source.record()
    assert record["distinct"] is True and record["draws"] > 60
    # each verifier names the draw a question came from, and scores with that draw
    for problem in distinct.records[::7]:
        verifier = problem.meta["verifier"]
        assert "distinct=false" in verifier
        assert procedural_score(verifier, problem.answer) == 1.0
        assert procedural_score(verifier, str(int(problem.answer) + 1)) == 0.0

    with pytest.raises(ConfigError, match=r"only 100 different questions .* fewer than size=101"):
        load_problems(f"{SMALL_POOL}&size=101")
    with pytest.raises(ConfigError, match="distinct must be true or false"):
        parse_procedural_source(f"{SMALL_POOL}&distinct=maybe")


def test_the_tasks_own_scorer_checks_answers_and_says_so() -> None:
    record = load_problems(SPEC).records[0]
    verifier = AnswerVerifier.for_problem(record.answer, record.meta)
    right = verifier.check(record.answer)
    assert right.correct and right.score == 1.0 and right.scorer == "rg:basic_arithmetic"
    wrong = verifier.check(str(int(record.answer) + 1))
    assert not wrong.correct and wrong.score == 0.0
    assert procedural_score(record.meta["verifier"], record.answer) == 1.0
    with pytest.raises(ConfigError, match="not a reasoning-gym verifier"):
        procedural_score("rg:basic_arithmetic", "1")
    # A math problem keeps math-verify.
    plain = AnswerVerifier.for_problem("1/2", {"subject": "Algebra"}).check("0.5")
    assert plain.correct and plain.score is None and plain.scorer is None


def arithmetic_policy(messages: Sequence[LLMMessage]) -> str:
    """Works the sum out, wrongly for odd results' first attempt (so the verifier says no)."""
    start = max(i for i, m in enumerate(messages) if str(m.content).startswith("Problem:"))
    problem = str(messages[start].content)
    found = re.search(r"Calculate (.+?)\.\s*$", problem, re.MULTILINE)
    assert found is not None, problem
    expression = found.group(1)
    assert re.fullmatch(r"[\d\s()+\-*/]+", expression)
    value = int(eval(expression))  # digits and operators only, checked above
    tried = sum(1 for m in messages[start:] if "\\boxed" in str(m.content))
    answer = value + 1 if value % 2 and tried == 0 else value
    return f"Step 1: {expression} = {answer}, so the answer is \\boxed{{{answer}}}."


def test_a_run_on_a_reasoning_gym_task_is_checked_by_the_task(tmp_path: Path) -> None:
    data = load_problems(SPEC)
    options = SynthesisOptions(
        policy="function:test_procedural:arithmetic_policy",
        critic="function:test_runner:fake_critic",
        critic_mode="generate",
        limits=SessionLimits(max_turns=4),
    )
    runner = SynthesisRunner(options, progress=synthesis_progress(Console(file=io.StringIO())))
    report = asyncio.run(runner.run(tmp_path / "run", data.records, dataset=data.source.record()))  # type: ignore[union-attr]
    assert report.solved == 6 and report.errors == 0
    checks = [
        event
        for folder in (tmp_path / "run" / "sessions").iterdir()
        for event in read_event_log(folder / "events.jsonl").events
        if isinstance(event, VerifierChecked)
    ]
    assert {c.scorer for c in checks} == {"rg:basic_arithmetic"}
    assert {c.score for c in checks if c.correct} == {1.0}
    wrong = [c for c in checks if not c.correct]
    assert wrong and all(c.score == 0.0 for c in wrong)  # the odd sums' first tries
    assert len(RunDirectory(tmp_path / "run").summaries()) == 6
    assert fake_critic  # the critic judges the steps that are not final answers


def sum_answer(messages: Sequence[LLMMessage]) -> str:
    """A one-shot model for `journey eval` / `journey pairs`: right on even sums only."""
    text = str(messages[-1].content)
    found = re.search(r"Calculate (.+?)\.\s*$", text, re.MULTILINE)
    assert found is not None and re.fullmatch(r"[\d\s()+\-*/]+", found.group(1))
    value = int(eval(found.group(1)))  # digits and operators only, checked above
    return f"The answer is \\boxed{{{value if value % 2 == 0 else value + 1}}}."


def test_eval_and_pairs_grade_with_the_tasks_own_scorer(tmp_path: Path) -> None:
    records = load_problems(SPEC).records
    even = sum(int(r.answer) % 2 == 0 for r in records)
    runner = CliRunner()
    model = "function:test_procedural:sum_answer"
    result = runner.invoke(
        app,
        ["eval", "--model", model, "--dataset", SPEC, "--out", str(tmp_path / "eval"),
         "--no-progress", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["problems"] == 6 and metrics["correct"] == even
    result = runner.invoke(
        app,
        ["pairs", "--model", model, "--dataset", SPEC, "--out", str(tmp_path / "pairs.jsonl"),
         "--samples", "2", "--no-progress", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = [
        json.loads(line) for line in (tmp_path / "pairs.samples.jsonl").read_text().splitlines()
    ]
    graded = {s["id"]: {x["correct"] for x in s["samples"]} for s in samples}
    assert sorted(graded.values(), key=str) == sorted(
        [{int(r.answer) % 2 == 0} for r in records], key=str
    )
