"""`journey eval critic`: step-labelled datasets, the pure metrics, the resumable runner
and the command, driven by function critics (perfect, accept-all, unreadable, scoring)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import typer.main
from autogen_core.models import LLMMessage, UserMessage
from click.testing import Result
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from journey.agents import step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.cli._options import field_default, field_help
from journey.errors import ConfigError, DatasetError
from journey.evaluation.compare import wilson_interval
from journey.evaluation.critic_compare import CriticComparedRun, CriticComparison
from journey.evaluation.critic_eval import (
    CriticEvalOptions,
    CriticEvalRunner,
    load_critic_records,
)
from journey.evaluation.critic_metrics import (
    CriticEvalMetrics,
    CriticRecord,
    StepJudgement,
    compute_critic_metrics,
    f1_score,
)
from journey.problems.step_labels import load_labelled_solutions
from journey.problems.step_layouts import LAYOUTS, StepLabelLayout, parse_field_map
from journey.protocols import StepVerdict
from journey.view.critic_report import render_critic_comparison, render_critic_metrics

runner = CliRunner()

# MR-GSM8K-shaped lines: two correct solutions, two with a first error, then bad lines.
SOLUTIONS = [
    {"id": "s1", "question": "Tom has 3 bags of 4 apples and eats 2. How many are left?",
     "steps": ["3 * 4 = 12 apples.", "12 - 2 = 10 apples are left.", "The answer is: 10"],
     "first_error_step": None, "gold_answer": "10", "question_type": "original"},
    {"id": "s2", "question": "A pen costs $2 and a book $5. What do 3 pens and 2 books cost?",
     "steps": ["3 pens cost 3 * 2 = 6 dollars.", "2 books cost 2 * 5 = 12 dollars.",
               "Together 6 + 12 = 18 dollars.", "The answer is: 18"],
     "first_error_step": 2, "gold_answer": "16", "question_type": "original"},
    {"id": "s3", "question": "Sara reads 10 pages a day. How many pages does she read in a week?",
     "steps": ["A week has 7 days.", "10 * 7 = 70 pages.", "The answer is: 70"],
     "first_error_step": None, "gold_answer": "70", "question_type": "reversed"},
    {"id": "s4", "question": "Apples cost 4 and pears 5. What do one of each cost, twice?",
     "steps": ["cost = 4 - 5", "", "total = cost * 2", "print(total)"],
     "first_error_step": 1, "gold_answer": "18", "question_type": "POT"},
]  # fmt: skip
FIRST_ERRORS = {s["question"]: s["first_error_step"] for s in SOLUTIONS}
BAD_LINES = ['{"question": "No steps here.", "first_error_step": null}', "not json"]


def write_dataset(path: Path, lines: Sequence[str] | None = None) -> Path:
    body = lines if lines is not None else [json.dumps(s) for s in SOLUTIONS] + BAD_LINES
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path


def _reviewed(messages: Sequence[LLMMessage]) -> tuple[str, int]:
    """The problem and the number of the step a critic prompt asks about."""
    for message in messages:
        text = str(message.content) if isinstance(message, UserMessage) else ""
        found = re.search(r"Problem: (.*?)\n\nSteps:.*step (\d+)\.\s*$", text, re.DOTALL)
        if found:
            return found.group(1), int(found.group(2))
    raise AssertionError("no judge prompt")


def _is_first_error(messages: Sequence[LLMMessage]) -> bool:
    problem, step = _reviewed(messages)
    labelled = FIRST_ERRORS[problem]
    # s4's blank step is left out: its steps are renumbered, its first error stays 1.
    return labelled is not None and step == labelled


def oracle_reply(messages: Sequence[LLMMessage]) -> str:
    if _is_first_error(messages):
        return "VERDICT: incorrect\nACTION: reflect\nREASON: The arithmetic is wrong."
    return "VERDICT: correct\nACTION: continue\nREASON: Fine."


def accept_reply(messages: Sequence[LLMMessage]) -> str:
    return "VERDICT: correct\nACTION: continue\nREASON: Fine."


def mumble_reply(messages: Sequence[LLMMessage]) -> str:
    return "Hmm."


_SUM = re.compile(r"((?:\d+(?:\.\d+)?\s*[-+*/]\s*)+\d+(?:\.\d+)?)\s*=\s*(\d+(?:\.\d+)?)")


def arithmetic_reply(messages: Sequence[LLMMessage]) -> str:
    """A rule-based critic: rejects a step whose `a op b = c` arithmetic is wrong."""
    text = step_under_judgement(messages).replace("$", "").replace(",", "")
    for expression, stated in _SUM.findall(text):
        try:
            value = eval(expression, {"__builtins__": {}})  # digits and + - * / only
        except ZeroDivisionError:
            continue
        if abs(value - float(stated)) > 1e-6 * max(1.0, abs(value)):
            return f"VERDICT: incorrect\nACTION: reflect\nREASON: {expression} is not {stated}."
    return "VERDICT: correct\nACTION: continue\nREASON: The arithmetic holds."


def _scores(messages: Sequence[LLMMessage], labels: Sequence[str]) -> dict[str, float]:
    best = "reflect" if _is_first_error(messages) else "continue"
    return {label: (0.0 if label == best else -4.0) for label in labels}


def _stable(records: list[CriticRecord]) -> list[dict[str, object]]:
    return sorted((r.model_dump(exclude={"seconds"}) for r in records), key=lambda r: str(r["id"]))


async def _evaluate(
    tmp_path: Path, client: FunctionChatCompletionClient, *, mode: str = "auto", reasks: int = 1
) -> tuple[CriticEvalMetrics, list[CriticRecord]]:
    data = load_labelled_solutions(write_dataset(tmp_path / "steps.jsonl"))
    options = CriticEvalOptions(critic="function:x:y", critic_mode=mode, critic_reasks=reasks)
    out = tmp_path / "out"
    metrics = await CriticEvalRunner(options, client=client).run(
        out, data.solutions, dataset="steps.jsonl"
    )
    return metrics, load_critic_records(out)


# -- reading step-labelled solutions -----------------------------------------------------------


def test_the_reader_counts_bad_lines_and_leaves_blank_steps_out(tmp_path: Path) -> None:
    data = load_labelled_solutions(write_dataset(tmp_path / "steps.jsonl"))
    assert [s.id for s in data.solutions] == ["s1", "s2", "s3", "s4"]
    assert [(i.line, i.message.split(" (")[0]) for i in data.issues] == [
        (5, "no 'steps' field"),
        (6, "not valid JSON: Expecting value at column 1"),
    ]
    s4 = data.solutions[3]
    assert s4.steps == ("cost = 4 - 5", "total = cost * 2", "print(total)")
    assert (s4.first_error, s4.type, s4.answer, s4.line) == (1, "POT", "18", 4)
    with pytest.raises(DatasetError, match=r"steps\.jsonl:5: no 'steps' field"):
        load_labelled_solutions(tmp_path / "steps.jsonl", strict=True)


def test_a_first_error_outside_the_steps_or_on_a_blank_step_is_an_issue(tmp_path: Path) -> None:
    lines = [
        json.dumps({"question": "q1", "steps": ["a", "b"], "first_error_step": 3}),
        json.dumps({"question": "q2", "steps": ["a", " ", "c"], "first_error_step": 2}),
        json.dumps({"question": "q3", "steps": ["a", "", "c"], "first_error_step": 3}),
    ]
    data = load_labelled_solutions(write_dataset(tmp_path / "d.jsonl", lines))
    assert [i.message for i in data.issues] == [
        "'first_error_step' is 3, outside the 2 steps (counted from 1)",
        "the first wrong step, step 2, is blank",
    ]
    assert [(s.steps, s.first_error) for s in data.solutions] == [(("a", "c"), 2)]


def test_processbench_layout_counts_from_zero(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "gsm8k-0", "problem": "p", "steps": ["a", "b"], "label": 1}),
        json.dumps({"id": "gsm8k-1", "problem": "q", "steps": ["a", "b"], "label": -1}),
    ]
    layout = parse_field_map(["processbench", "type=generator"])
    assert layout == StepLabelLayout(
        problem="problem", first_error="label", first_error_base=0, answer=None, type="generator"
    )
    data = load_labelled_solutions(write_dataset(tmp_path / "pb.jsonl", lines), layout)
    assert [(s.id, s.first_error, s.type) for s in data.solutions] == [
        ("gsm8k-0", 2, None),
        ("gsm8k-1", None, None),
    ]


def _prm800k_line(ratings: list[int], steps: int, finish: str) -> str:
    return json.dumps({
        "question": {"problem": "What is 2+3?", "ground_truth_answer": "5",
                     "pre_generated_steps": [f"step {n}" for n in range(1, steps + 1)]},
        "label": {"steps": [{"completions": [{"text": "t", "rating": r, "flagged": None}],
                             "human_completion": None, "chosen_completion": 0} for r in ratings],
                  "finish_reason": finish},
    })  # fmt: skip


def test_prm800k_layout_reads_the_first_negative_rating(tmp_path: Path) -> None:
    lines = [
        _prm800k_line([1, 0, -1], 4, "found_error"),
        _prm800k_line([1, 1, 0], 3, "solution"),
        _prm800k_line([1], 3, "give_up"),
    ]
    data = load_labelled_solutions(write_dataset(tmp_path / "prm.jsonl", lines), LAYOUTS["prm800k"])
    assert [(s.first_error, s.answer, len(s.steps)) for s in data.solutions] == [
        (3, "5", 4),
        (None, "5", 3),
    ]
    assert data.solutions[0].id != data.solutions[1].id  # the hash of problem and steps
    assert [i.message for i in data.issues] == [
        "only 1 of 3 steps are rated and none is wrong: not fully labelled"
    ]


def test_field_maps_refuse_what_they_cannot_read() -> None:
    with pytest.raises(ConfigError, match="unknown field map 'gsm'"):
        parse_field_map(["gsm"])
    with pytest.raises(ConfigError, match="unknown field 'question'"):
        parse_field_map(["question=problem"])
    with pytest.raises(ConfigError, match="first_error_base must be 0 or 1, got '2'"):
        parse_field_map(["first_error_base=2"])
    assert parse_field_map(["ratings=labels"]).first_error is None
    assert parse_field_map(["prm800k", "first_error=label"]).ratings is None


# -- the metrics, by hand ------------------------------------------------------------------------


def _record(
    name: str, steps: int, first_error: int | None, verdicts: str, kind: str, tokens: int
) -> CriticRecord:
    letters = {"C": StepVerdict.CORRECT, "I": StepVerdict.INCORRECT, "U": StepVerdict.UNKNOWN}
    judged = [
        StepJudgement(step=n, verdict=letters[v], source="critic", action="continue",
                      prompt_tokens=tokens if n == 1 else 0)
        for n, v in enumerate(verdicts, 1)
    ]  # fmt: skip
    return CriticRecord(
        id=name, index=0, type=kind, steps=steps, first_error=first_error, judgements=judged
    )


RECORDS = [
    _record("A", 3, 2, "CI", "original", 100),  # found the first error
    _record("B", 3, 3, "I", "original", 40),  # rejected a correct step: false positive
    _record("C", 3, None, "CCC", "original", 60),  # kept a correct solution
    _record("D", 2, None, "CU", "POT", 20),  # unreadable: no prediction
    _record("E", 2, 1, "UI", "POT", 80),  # rejects, but after an unreadable verdict
]


def test_metrics_match_the_hand_computed_numbers() -> None:
    metrics = compute_critic_metrics(RECORDS, critic="c", dataset="d")
    overall = metrics.overall
    assert (overall.solutions, overall.with_error, overall.steps_judged) == (5, 3, 10)
    assert (overall.error_accuracy.hits, overall.error_accuracy.total) == (1, 3)
    assert (overall.correct_accuracy.hits, overall.correct_accuracy.total) == (1, 2)
    assert overall.f1 == pytest.approx(0.4)  # 2 * 1/3 * 1/2 / (1/3 + 1/2)
    assert (overall.solution_accuracy.hits, overall.solution_accuracy.total) == (4, 5)
    assert (overall.step_precision.hits, overall.step_precision.total) == (1, 2)
    assert (overall.step_recall.hits, overall.step_recall.total) == (1, 3)
    assert (overall.unreadable.hits, overall.unreadable.total) == (2, 10)
    assert overall.unreadable.value == pytest.approx(0.2)
    assert (overall.error_accuracy.low, overall.error_accuracy.high) == wilson_interval(1, 3)
    assert overall.tokens_per_solution.value == pytest.approx(60.0)
    spread = (4000 / 4) ** 0.5  # sample sd of 100, 40, 60, 20, 80: squares sum to 4000
    assert overall.tokens_per_solution.high == pytest.approx(60 + 1.96 * spread / 5**0.5)
    assert overall.f1_low <= overall.f1 <= overall.f1_high
    original, pot = metrics.by_type["original"], metrics.by_type["POT"]
    assert original.f1 == pytest.approx(2 / 3) and pot.f1 == 0.0
    assert (pot.solution_accuracy.hits, pot.unreadable.hits) == (1, 2)
    assert compute_critic_metrics(RECORDS, critic="c", dataset="d") == metrics  # seeded


def test_f1_needs_solutions_with_and_without_an_error() -> None:
    assert f1_score(0.0, 1.0) == 0.0 and f1_score(1.0, 1.0) == 1.0 and f1_score(None, 1.0) is None
    only_wrong = compute_critic_metrics(RECORDS[:2], critic="c", dataset="d").overall
    assert only_wrong.f1 is None and only_wrong.correct_accuracy.value is None
    assert only_wrong.error_accuracy.value == 0.5
    empty = compute_critic_metrics([], critic="c", dataset="d").overall
    assert (empty.f1, empty.solution_accuracy.value, empty.tokens_per_solution.value) == (
        None,
        None,
        0.0,
    )


# -- the runner, with function critics ---------------------------------------------------------


async def test_a_perfect_critic_scores_perfectly(tmp_path: Path) -> None:
    metrics, records = await _evaluate(
        tmp_path, FunctionChatCompletionClient(oracle_reply), mode="generate"
    )
    overall = metrics.overall
    assert overall.f1 == 1.0 and overall.solution_accuracy.value == 1.0
    assert (overall.step_precision.hits, overall.step_precision.total) == (2, 2)
    assert (overall.step_recall.hits, overall.step_recall.total) == (2, 2)
    assert (overall.unreadable.hits, overall.steps_judged) == (0, 3 + 2 + 3 + 1)
    by_id = {r.id: r for r in records}
    assert [j.verdict for j in by_id["s2"].judgements] == ["correct", "incorrect"]
    assert by_id["s2"].judgements[1].reason == "The arithmetic is wrong."
    assert (
        overall.tokens_per_solution.value == pytest.approx(sum(r.tokens for r in records) / 4)
        and overall.tokens_per_solution.value > 0
    )


async def test_an_accept_everything_critic_finds_no_error(tmp_path: Path) -> None:
    metrics, _ = await _evaluate(tmp_path, FunctionChatCompletionClient(accept_reply))
    overall = metrics.overall
    assert (overall.error_accuracy.value, overall.correct_accuracy.value, overall.f1) == (0, 1, 0)
    assert (overall.solution_accuracy.hits, overall.solution_accuracy.total) == (2, 4)
    assert (overall.step_precision.total, overall.step_recall.hits) == (0, 0)
    assert overall.steps_judged == 3 + 4 + 3 + 3


async def test_unreadable_verdicts_are_never_counted_as_correct(tmp_path: Path) -> None:
    client = FunctionChatCompletionClient(mumble_reply)
    metrics, records = await _evaluate(tmp_path, client, reasks=1)
    overall = metrics.overall
    assert (overall.unreadable.hits, overall.unreadable.total) == (13, 13)
    assert overall.error_accuracy.hits == overall.correct_accuracy.hits == 0
    assert overall.solution_accuracy.hits == 0 and overall.f1 == 0.0
    assert len(client.requests) == 2 * 13  # each unreadable reply asked again once
    assert all(j.source == "none" and "fallback_continue" in j.violations
               for r in records for j in r.judgements)  # fmt: skip


async def test_a_label_scoring_critic_is_judged_by_its_scores(tmp_path: Path) -> None:
    client = FunctionChatCompletionClient(lambda _: "Because.", label_scores=_scores)
    metrics, records = await _evaluate(tmp_path, client)  # auto: the client scores labels
    assert metrics.overall.f1 == 1.0 and metrics.overall.step_recall.value == 1.0
    s2 = next(r for r in records if r.id == "s2")
    assert [j.source for j in s2.judgements] == ["critic_action", "critic_action"]
    assert s2.judgements[1].label_scores == {"continue": -4.0, "reflect": 0.0, "backtrack": -4.0}
    assert s2.judgements[1].action == "reflect"


async def test_score_mode_without_log_probs_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="critic mode 'score' needs a backend"):
        await _evaluate(tmp_path, FunctionChatCompletionClient(accept_reply), mode="score")
    assert not (tmp_path / "out" / "critic-eval.json").exists()


# -- the command: resume, refusal, compare ------------------------------------------------------


def _cli(dataset: Path, out: Path, critic: str, *extra: str) -> Result:
    spec = f"function:tests.test_critic_eval:{critic}"
    args = ["eval", "critic", "--critic", spec, "--dataset", str(dataset), "--out", str(out),
            "--no-progress", *extra]  # fmt: skip
    return runner.invoke(app, args)


def test_a_resumed_run_gives_the_records_of_an_uninterrupted_one(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "steps.jsonl")
    result = _cli(dataset, tmp_path / "part", "oracle_reply", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overall"]["solutions"] == 2
    result = _cli(dataset, tmp_path / "part", "oracle_reply", "--json")
    assert json.loads(result.stdout)["overall"]["f1"] == 1.0
    result = _cli(dataset, tmp_path / "whole", "oracle_reply", "--concurrency", "1")
    assert result.exit_code == 0 and "F1 (ProcessBench)" in result.output
    assert "2 bad lines" in result.output
    resumed = load_critic_records(tmp_path / "part")
    assert len(resumed) == len({r.id for r in resumed}) == 4
    assert _stable(resumed) == _stable(load_critic_records(tmp_path / "whole"))


def test_another_critic_is_refused_unless_forced(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "steps.jsonl")
    assert _cli(dataset, tmp_path / "out", "oracle_reply", "--limit", "1").exit_code == 0
    result = _cli(dataset, tmp_path / "out", "accept_reply")
    assert isinstance(result.exception, ConfigError)
    assert "critic: 'function:tests.test_critic_eval:oracle_reply' ->" in str(result.exception)
    result = _cli(dataset, tmp_path / "out", "accept_reply", "--force")
    assert result.exit_code == 0, result.output
    assert len(load_critic_records(tmp_path / "out")) == 4
    # A setting an older journey did not record reads as today's default: no refusal.
    manifest = tmp_path / "out" / "critic-eval.json"
    recorded = json.loads(manifest.read_text())
    del recorded["critic_reasks"], recorded["resumed"]
    recorded["critic"] = "function:tests.test_critic_eval:accept_reply"
    manifest.write_text(json.dumps(recorded))
    assert _cli(dataset, tmp_path / "out", "accept_reply").exit_code == 0


def test_compare_puts_critics_side_by_side(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "steps.jsonl")
    assert _cli(dataset, tmp_path / "oracle", "oracle_reply").exit_code == 0
    assert _cli(dataset, tmp_path / "yes", "accept_reply", "--limit", "3").exit_code == 0
    dirs = [str(tmp_path / "oracle"), str(tmp_path / "yes")]
    result = runner.invoke(app, ["eval", "critic", "compare", *dirs, "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [r["metrics"]["overall"]["f1"] for r in runs] == [1.0, 0.0]
    assert [r["shared"] for r in runs] == [4, 3]
    result = runner.invoke(app, ["eval", "critic", "compare", *dirs, "--shared", "--json"])
    assert [r["metrics"]["overall"]["solutions"] for r in json.loads(result.output)["runs"]] == [
        3,
        3,
    ]
    result = runner.invoke(app, ["eval", "critic", "compare", *dirs])
    assert result.exit_code == 0 and "critic comparison" in result.output
    assert "F1 POT" in result.output and "F1 reversed" in result.output
    result = runner.invoke(app, ["eval", "critic", "compare", str(tmp_path)])
    assert isinstance(result.exception, DatasetError)


def test_the_plain_eval_command_is_unchanged(tmp_path: Path) -> None:
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n", encoding="utf-8")
    spec = "function:tests.test_critic_eval:accept_reply"
    args = ["eval", "--model", spec, "--dataset", str(problems), "--out", str(tmp_path / "e"),
            "--no-progress", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["problems"] == 1
    assert "critic" in runner.invoke(app, ["eval", "--help"]).output
    result = runner.invoke(app, ["eval", "critic", "--out", "x"])
    assert isinstance(result.exception, ConfigError)


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "mr-gsm8k-steps.jsonl"


@pytest.mark.skipif(not REAL.is_file(), reason=f"{REAL} is not here (CI has no ../shared)")
async def test_a_rule_based_critic_on_the_real_mr_gsm8k_file(tmp_path: Path) -> None:
    data = load_labelled_solutions(REAL)
    assert (len(data.solutions), data.issues) == (581, [])
    assert sum(s.first_error is not None for s in data.solutions) == 369
    chosen = data.select(sample=20, seed=0)  # the file lists its wrong solutions first
    assert chosen == data.select(sample=20, seed=0) and chosen != data.select(limit=20)
    assert 0 < sum(s.first_error is None for s in chosen) < 20
    client = FunctionChatCompletionClient(arithmetic_reply)
    options = CriticEvalOptions(critic="function:tests.test_critic_eval:arithmetic_reply")
    metrics = await CriticEvalRunner(options, client=client).run(
        tmp_path, chosen, dataset=str(REAL)
    )
    assert metrics.overall.solutions == 20 and metrics.overall.unreadable.hits == 0
    assert metrics.overall.f1 is not None and 0.0 <= metrics.overall.f1 <= 1.0


@pytest.mark.parametrize(
    "name", ["critic", "critic_mode", "critic_tokens", "critic_reasks", "calibrate", "concurrency"]
)
def test_the_options_default_to_the_fields_of_the_options(name: str) -> None:
    """The command repeats the defaults by hand (`journey --help` imports no agents)."""
    command: Any = typer.main.get_command(app)
    [param] = [p for p in command.commands["eval"].commands["critic"].params if p.name == name]
    assert param.default == field_default(CriticEvalOptions, name)
    if name not in ("critic", "critic_reasks"):  # those two say more on the command line
        assert Text.from_markup(param.help).plain == field_help(CriticEvalOptions, name)


def test_help_and_tables_show_brackets_literally(tmp_path: Path) -> None:
    group: Any = typer.main.get_command(app)
    group = group.commands["eval"].commands["critic"]
    for command in (group, *group.commands.values()):
        texts = [command.help, command.epilog, *(getattr(p, "help", None) for p in command.params)]
        for text in filter(None, texts):
            assert Text.from_markup(text).plain == text.replace("\\[", "[")
    spec = "openai:m[/old]?x=[v2]"
    metrics = compute_critic_metrics(RECORDS, critic=spec, dataset="d")
    shown = _text(render_critic_metrics(metrics), width=200)
    assert spec in shown and "F1 (ProcessBench)" in shown and "40.0%" in shown
    run = CriticComparedRun(directory=str(tmp_path / "data[v2]"), metrics=metrics, shared=5)
    both = CriticComparison(runs=[run, run], types=sorted(metrics.by_type))
    shown = _text(render_critic_comparison(both), width=200)
    assert "data[v2]" in shown and spec in shown and "F1 POT" in shown


def _text(renderable: object, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]
