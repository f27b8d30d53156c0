"""Evaluation: grading of tricky answers, metrics, the resumable runner, compare, the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from typer.testing import CliRunner

from journey.agents.backends.scripted import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, DatasetError, ModelUnavailableError
from journey.evaluation import (
    EvalOptions,
    EvalRecord,
    EvalRunner,
    PhraseCounter,
    bootstrap_difference,
    compare_runs,
    compute_metrics,
    grade_output,
    load_records,
    same_answer,
)
from journey.problems.dataset import load_problems

runner = CliRunner()

PROBLEMS = [
    {"problem": "What is 1/2 as a decimal?", "answer": "0.5", "level": 1, "subject": "Algebra"},
    {"problem": "Solve x+1=3.", "answer": "2", "level": 1, "subject": "Algebra"},
    {"problem": "Name the interval.", "answer": "(2,5]", "level": 3, "subject": "Precalculus"},
    {"problem": "Unanswerable?", "answer": "7", "level": 5, "subject": "Geometry"},
]
REPLIES = {
    "What is 1/2": "Hmm, 1 divided by 2. The answer is \\boxed{\\frac{1}{2}}.",
    "Solve x+1": "Wait, let me go back to step 1. x = 2, so \\boxed{2}",
    "Name the": "It is \\boxed{[2,5)}",
    "Unanswerable": "I do not know.",
}


def fake_reply(messages: Sequence[LLMMessage]) -> str:
    """A scripted model: the reply for whichever problem the prompt holds."""
    text = str(messages[-1].content)
    return next(reply for key, reply in REPLIES.items() if key in text)


def write_dataset(path: Path, rows: list[dict[str, object]] = PROBLEMS) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- grading ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicted", "gold", "same"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac12", "\\frac{1}{2}", True),
        ("1/2", "\\frac{1}{2}", True),
        ("\\dfrac{14}{3}", "\\frac{14}{3}", True),
        ("0.33", "\\frac{1}{3}", False),
        ("(2, 5]", "(2,5]", True),
        ("[2,5)", "(2,5]", False),
        ("30^\\circ", "30", True),
        ("30^{\\circ}", "30", True),
        ("\\text{Evelyn}", "Evelyn", True),
        ("\\text{(C)}", "C", True),
        ("odd", "\\text{even}", False),
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("(1,2)", "(2,1)", False),  # tuples are ordered
        ("\\{1,2\\}", "\\{2,1\\}", True),  # sets are not
        ("-2, 1", "1, -2", True),  # a list of solutions is unordered
        ("x=3", "3", True),
        ("2\\sqrt{2}", "\\sqrt{8}", True),
        ("1,000", "1000", True),
        ("5 \\text{ cm}", "5", True),
        ("\\$18.90", "18.90", True),  # answers_match alone gets these two wrong
        ("18.9", "\\$18.90", True),
        ("\\$1,\\!000", "1000", True),
        ("10\\%", "0.1", True),
        ("(-\\infty, 3)", "(-\\infty,3)", True),
        ("3", "4", False),
    ],
)
def test_tricky_equivalences(predicted: str, gold: str, same: bool) -> None:
    assert same_answer(predicted, gold) is same


def test_grading_extracts_the_final_answer_first() -> None:
    assert grade_output("so \\boxed{\\frac{1}{2}}", "0.5").correct
    assert grade_output("#### 42", "42").predicted == "42"
    no_answer = grade_output("I give up", "42")
    assert no_answer.predicted is None and not no_answer.correct


# --- metrics ---------------------------------------------------------------------------


def test_phrase_counter_matches_whole_words_case_insensitively() -> None:
    counter = PhraseCounter(["wait", "let me re-check"])
    assert counter.count("Wait... hmm, let me re-check. WAIT!") == 3
    assert counter.count("awaiting the waiter") == 0
    assert PhraseCounter([]).count("wait") == 0


def _record(index: int, correct: bool, **fields: object) -> EvalRecord:
    defaults: dict[str, object] = {
        "id": f"p{index}", "index": index, "line": index + 1, "problem": "?", "gold": "1",
        "output": "", "predicted": "1" if correct else None, "correct": correct,
    }  # fmt: skip
    return EvalRecord.model_validate({**defaults, **fields})


def test_metrics_by_level_subject_and_rates() -> None:
    records = [
        _record(0, True, level="1", subject="Algebra", output_tokens=10, reflections=2),
        _record(1, False, level="1", subject="Geometry", output_tokens=30, backtracks=1),
        _record(2, True, level="2", subject="Algebra", output_tokens=20, finish_reason="length"),
    ]
    metrics = compute_metrics(records, model="m", dataset="d")
    assert metrics.accuracy == pytest.approx(2 / 3)
    assert metrics.by_level["1"].accuracy == 0.5 and metrics.by_level["2"].correct == 1
    assert metrics.by_subject["Algebra"].accuracy == 1.0
    assert metrics.mean_output_tokens == 20
    assert metrics.reflection_rate == pytest.approx(1 / 3)
    assert metrics.backtrack_rate == pytest.approx(1 / 3)
    assert metrics.no_answer_rate == pytest.approx(1 / 3)
    assert metrics.truncated_rate == pytest.approx(1 / 3)
    assert compute_metrics([], model="m", dataset="d").accuracy == 0.0


# --- runner ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"max_new_tokens": 0}, "max_new_tokens must be at least 1, got 0"),
        ({"temperature": 3.0}, "temperature must be between 0 and 2, got 3.0"),
        ({"prompt_template": "no slot"}, "must contain {problem}"),
    ],
)
def test_options_are_validated(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        EvalOptions(**settings)  # type: ignore[arg-type]


async def test_runner_writes_records_and_metrics_and_resumes(tmp_path: Path) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records
    out = tmp_path / "eval"
    client = FunctionChatCompletionClient(fake_reply)
    metrics = await EvalRunner(EvalOptions(model="function:x:y"), client=client).run(
        out, problems, dataset="p.jsonl"
    )
    assert metrics.problems == 4 and metrics.correct == 2  # 1/2 and 2 right, [2,5) wrong
    assert metrics.by_level["1"].accuracy == 1.0 and metrics.by_level["3"].accuracy == 0.0
    assert metrics.no_answer_rate == 0.25
    assert metrics.reflection_rate == 0.5 and metrics.backtrack_rate == 0.25
    records = load_records(out)
    assert {r.predicted for r in records} == {"\\frac{1}{2}", "2", "[2,5)", None}
    assert json.loads((out / "metrics.json").read_text())["correct"] == 2
    assert len(client.requests) == 4

    # A re-run asks the model nothing: every problem already has a record.
    again = FunctionChatCompletionClient(fake_reply)
    rerun = await EvalRunner(EvalOptions(model="function:x:y"), client=again).run(
        out, problems, dataset="p.jsonl"
    )
    assert again.requests == [] and rerun.correct == 2
    # ...and its wall time is the evaluation's, not the instant the rerun took.
    assert rerun.wall_seconds >= metrics.wall_seconds > 0


async def test_a_resumed_evaluation_adds_its_time_to_what_the_earlier_run_took(
    tmp_path: Path,
) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records
    out = tmp_path / "eval"
    options = EvalOptions(model="function:x:y")
    client = FunctionChatCompletionClient(fake_reply)
    await EvalRunner(options, client=client).run(out, problems[:2], dataset="p")
    path = out / "metrics.json"
    earlier = json.loads(path.read_text())
    path.write_text(json.dumps({**earlier, "wall_seconds": 100.0}))  # the first part: 100 s
    metrics = await EvalRunner(options, client=client).run(out, problems, dataset="p")
    assert metrics.problems == 4 and 100.0 < metrics.wall_seconds < 160.0
    path.write_text("{not json")  # unreadable metrics (a killed write): nothing to add
    rerun = await EvalRunner(options, client=client).run(out, problems, dataset="p")
    assert rerun.wall_seconds < 60.0


async def test_failed_requests_are_counted_and_retried(tmp_path: Path) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records
    out = tmp_path / "eval"

    def flaky(messages: Sequence[LLMMessage]) -> str:
        if "Unanswerable" in str(messages[-1].content):
            raise RuntimeError("server fell over")
        return fake_reply(messages)

    options = EvalOptions(model="function:x:y")
    first = await EvalRunner(options, client=FunctionChatCompletionClient(flaky)).run(
        out, problems, dataset="p"
    )
    assert first.errors == 1 and first.problems == 3
    retry = FunctionChatCompletionClient(fake_reply)
    second = await EvalRunner(options, client=retry).run(out, problems, dataset="p")
    assert len(retry.requests) == 1 and second.problems == 4 and second.errors == 0


async def test_a_model_that_cannot_start_fails_once_before_any_request(tmp_path: Path) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records

    class Unstartable(FunctionChatCompletionClient):
        loads = 0

        async def load(self) -> None:
            self.loads += 1
            raise ModelUnavailableError("vllm server for 'm' exited with code 1")

    client = Unstartable(fake_reply)
    runner = EvalRunner(EvalOptions(model="function:x:y"), client=client)
    with pytest.raises(ModelUnavailableError, match="exited with code 1"):
        await runner.run(tmp_path / "eval", problems, dataset="p")
    assert client.loads == 1 and client.requests == []
    assert load_records(tmp_path / "eval") == []


async def test_a_cut_off_last_record_is_dropped_and_redone(tmp_path: Path) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records
    out = tmp_path / "eval"
    options = EvalOptions(model="function:x:y")
    client = FunctionChatCompletionClient(fake_reply)
    await EvalRunner(options, client=client).run(out, problems, dataset="p")
    path = out / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # killed mid-write
    assert len(load_records(out)) == 3
    redo = FunctionChatCompletionClient(fake_reply)
    metrics = await EvalRunner(options, client=redo).run(out, problems, dataset="p")
    assert redo.requests == [] and metrics.cache["model"]["hits"] == 1 and metrics.problems == 4
    assert len(path.read_text().splitlines()) == 4


async def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    problems = load_problems(write_dataset(tmp_path / "p.jsonl")).records
    out = tmp_path / "eval"
    client = FunctionChatCompletionClient(fake_reply)
    await EvalRunner(EvalOptions(model="function:x:y"), client=client).run(
        out, problems[:1], dataset="p"
    )
    other = EvalOptions(model="function:x:y", max_new_tokens=64)
    with pytest.raises(ConfigError, match="max_new_tokens: 512 -> 64"):
        await EvalRunner(other, client=client).run(out, problems, dataset="p")
    # A setting an older journey did not record reads as today's default: no refusal.
    recorded = json.loads((out / "eval.json").read_text())
    del recorded["temperature"]
    (out / "eval.json").write_text(json.dumps(recorded))
    same = EvalOptions(model="function:x:y")
    await EvalRunner(same, client=client).run(out, problems, dataset="p")
    assert len(load_records(out)) == len(problems)


# --- compare ---------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_brackets_the_difference() -> None:
    base = [True, False] * 20
    better = [True, True] * 20
    difference, low, high = bootstrap_difference(base, better, seed=1)
    assert difference == 0.5 and low <= 0.5 <= high and low > 0
    assert bootstrap_difference(base, better, seed=1) == (difference, low, high)
    assert bootstrap_difference(base, base) == (0.0, 0.0, 0.0)
    assert bootstrap_difference([], []) == (0.0, 0.0, 0.0)


def _write_run(directory: Path, outcomes: list[bool], model: str) -> Path:
    directory.mkdir()
    (directory / "eval.json").write_text(json.dumps({"model": model}))
    lines = [
        _record(i, ok, level=str(1 + i % 2)).model_dump_json() + "\n"
        for i, ok in enumerate(outcomes)
    ]
    (directory / "records.jsonl").write_text("".join(lines))
    return directory


def test_compare_pairs_shared_problems(tmp_path: Path) -> None:
    base = _write_run(tmp_path / "base", [True, False, False, False], "embedded")
    sft = _write_run(tmp_path / "sft", [True, True, True], "hf:sft")
    comparison = compare_runs([base, sft], resamples=500, seed=0)
    first, second = comparison.runs
    assert first.difference is None and first.accuracy == 0.25
    assert second.shared == 3 and second.difference == pytest.approx(2 / 3)
    assert second.ci_low is not None and second.ci_high is not None
    assert second.ci_low <= second.difference <= second.ci_high
    assert comparison.levels == ["1", "2"] and second.by_level == {"1": 1.0, "2": 1.0}
    with pytest.raises(DatasetError, match="does not exist"):
        compare_runs([base, tmp_path / "missing"])


# --- command line ----------------------------------------------------------------------


def test_eval_and_compare_commands(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "p.jsonl")
    spec = "function:tests.test_evaluation:fake_reply"
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        ["eval", "--model", spec, "--dataset", str(dataset), "--out", str(out),
         "--limit", "3", "--no-progress", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["problems"] == 3
    result = runner.invoke(app, ["eval", "--model", spec, "--dataset", str(dataset),
                                 "--out", str(tmp_path / "all"), "--no-progress"])  # fmt: skip
    assert result.exit_code == 0 and "accuracy by level" in result.output
    result = runner.invoke(app, ["eval", "compare", str(out), str(tmp_path / "all"), "--json"])
    assert result.exit_code == 0, result.output
    assert [run["problems"] for run in json.loads(result.output)["runs"]] == [3, 4]
    result = runner.invoke(app, ["eval", "compare", str(out), str(tmp_path / "all")])
    assert result.exit_code == 0 and "95% CI" in result.output


def test_eval_without_dataset_is_a_user_error() -> None:
    result = runner.invoke(app, ["eval", "--out", "x"])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.embedded
def test_eval_on_the_embedded_model(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "p.jsonl", PROBLEMS[:3])
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        ["eval", "--dataset", str(dataset), "--out", str(out), "--max-new-tokens", "16",
         "--batch-size", "3", "--no-progress", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["problems"] == 3 and 0 < metrics["mean_output_tokens"] <= 16
    assert len(load_records(out)) == 3


# -- who closes the model client --------------------------------------------------------------


class _Closing(FunctionChatCompletionClient):
    """A function client that counts how often it is closed."""

    def __init__(self) -> None:
        super().__init__(lambda messages: "\\boxed{1}")
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def test_a_client_given_is_the_callers_and_one_built_is_closed_however_the_run_ends() -> None:
    from journey.evaluation._model_client import model_client

    given = _Closing()
    async with model_client(given, build=lambda: pytest.fail("built a client it was given")):
        pass
    assert given.closed == 0

    built: list[_Closing] = []

    def build() -> _Closing:
        built.append(_Closing())
        return built[-1]

    async with model_client(None, build) as client:
        assert client is built[0]
    with pytest.raises(RuntimeError, match="the run failed"):
        async with model_client(None, build):
            raise RuntimeError("the run failed")
    assert [c.closed for c in built] == [1, 1]
