"""`journey pairs`: drawing pairs from graded samples, seeding, resuming, failures, the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import CreateResult, LLMMessage
from typer.testing import CliRunner

from journey.agents.backends.scripted import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, ModelUnavailableError
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import (
    ALL_CORRECT,
    ALL_WRONG,
    NO_ANSWER,
    NOT_SAMPLED,
    PairsCard,
    PairsOptions,
    ProblemSamples,
    Sample,
    draw_pairs,
    samples_path,
    write_pairs,
)
from journey.evaluation.pairs_sampling import PairsSampler, load_samples
from journey.evaluation.runner import DEFAULT_PROMPT_TEMPLATE
from journey.exports.export import card_path, load_card
from journey.problems.dataset import ProblemRecord, load_problems
from journey.runs.endpoint_health import EndpointDownError
from journey.training.data import load_dpo_rows

runner = CliRunner()

# How many of a problem's 20 answers are right, by a word of the problem.
MIXED, EASY, HARD, MUTE = "Mixed", "Easy", "Hard", "Mute"
PROBLEMS = [
    {"problem": f"{MIXED}: what is 3+4?", "answer": "7"},
    {"problem": f"{EASY}: what is 1+1?", "answer": "2"},
    {"problem": f"{HARD}: what is 6*7?", "answer": "42"},
    {"problem": f"{MUTE}: what is 2+3?", "answer": "5"},
]


def write_dataset(path: Path, rows: Sequence[dict[str, object]] = PROBLEMS) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def answer_for(prompt: str, position: int) -> str:
    """A model's `position`-th answer (0-based) to a prompt: MIXED is right 8 times in 20."""
    tag = f"(try {position})"
    if MIXED in prompt:
        return f"3+4 is 7 {tag}. \\boxed{{7}}" if position % 5 < 2 else f"Hmm {tag}. \\boxed{{8}}"
    if EASY in prompt:
        return f"Easy {tag}: \\boxed{{2}}"
    if HARD in prompt:
        return f"Guess {tag}: \\boxed{{40}}"
    return f"I am not sure {tag}."


class CountingClient(FunctionChatCompletionClient):
    """Answers the n-th request for a prompt with `answer_for(prompt, n)`; records the args.

    Args:
        fail: Raise instead of answering the request with this (prompt word, position).
    """

    def __init__(self, fail: tuple[str, int] | None = None) -> None:
        super().__init__(self._answer)
        self.args: list[dict[str, Any]] = []
        self.finished = 0
        self.in_flight = self.most_in_flight = 0
        self._seen: dict[str, int] = {}
        self._fail = fail

    async def _answer(self, messages: Sequence[LLMMessage]) -> str:
        prompt = str(messages[-1].content)
        position = self._seen.get(prompt, 0)
        self._seen[prompt] = position + 1
        await asyncio.sleep(0)  # lets other requests go out meanwhile, as a real model would
        if self._fail is not None and self._fail[0] in prompt and self._fail[1] == position:
            raise RuntimeError("server fell over")
        return answer_for(prompt, position)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        extra_create_args: Mapping[str, Any] = {},
        **kwargs: Any,
    ) -> CreateResult:
        # How many requests had finished when this one went out: equal within one batch.
        self.args.append({**extra_create_args, "finished_before": self.finished})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().create(messages, extra_create_args=extra_create_args, **kwargs)
        finally:
            self.finished += 1
            self.in_flight -= 1


class SeededClient(FunctionChatCompletionClient):
    """A sampler whose answer is a function of the request's seed (as vLLM's would be)."""

    def __init__(self) -> None:
        super().__init__(lambda messages: "")

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        extra_create_args: Mapping[str, Any] = {},
        **kwargs: Any,
    ) -> CreateResult:
        seed = int(extra_create_args["seed"])
        text = f"seed {seed}: \\boxed{{{7 if seed % 3 else 8}}}"
        self._function = lambda messages: text
        return await super().create(messages, extra_create_args=extra_create_args, **kwargs)


def options(**changes: Any) -> PairsOptions:
    return PairsOptions(**{"model": "function:x:y", **changes})


def problems_of(tmp_path: Path) -> list[ProblemRecord]:
    return load_problems(write_dataset(tmp_path / "p.jsonl")).records


async def sample(
    tmp_path: Path, client: FunctionChatCompletionClient, out: Path, **changes: Any
) -> Any:
    sampler = PairsSampler(options(**changes), grade=grade_output, client=client)
    return await sampler.run(out, problems_of(tmp_path), dataset=str(tmp_path / "p.jsonl"))


def record(correct: int, wrong: int, *, unanswered: bool = False) -> ProblemSamples:
    """A problem with `correct` right and `wrong` wrong, all distinct, samples."""

    def one(i: int, right: bool) -> Sample:
        predicted = None if unanswered else ("7" if right else "8")
        return Sample(text=f"answer {i}", predicted=predicted, correct=right, finish_reason="stop",
                      tokens=3)  # fmt: skip

    samples = [one(i, True) for i in range(correct)]
    samples += [one(correct + i, False) for i in range(wrong)]
    return ProblemSamples(id="p1", index=0, line=1, problem="3+4?", gold="7", prompt="3+4?",
                          samples=samples)  # fmt: skip


def texts(rows: list[dict[str, Any]], side: str) -> list[str]:
    return [row[side][0]["content"] for row in rows]


# --- drawing pairs ----------------------------------------------------------------------


def test_five_pairs_from_eight_right_and_twelve_wrong() -> None:
    rows, reason = draw_pairs(record(8, 12), pairs=5, seed=0)
    assert reason is None and len(rows) == 5
    right = {f"answer {i}" for i in range(8)}
    assert set(texts(rows, "chosen")) <= right and len(set(texts(rows, "chosen"))) == 5
    assert not set(texts(rows, "rejected")) & right and len(set(texts(rows, "rejected"))) == 5
    assert all(row["prompt"] == [{"role": "user", "content": "3+4?"}] for row in rows)
    assert all(
        row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant" for row in rows
    )


@pytest.mark.parametrize(("correct", "wrong", "pairs"), [(2, 18, 2), (17, 3, 3), (1, 1, 1)])
def test_the_short_side_sets_the_number_of_pairs(correct: int, wrong: int, pairs: int) -> None:
    rows, reason = draw_pairs(record(correct, wrong), pairs=5, seed=0)
    assert reason is None and len(rows) == pairs
    assert len(set(texts(rows, "chosen"))) == len(set(texts(rows, "rejected"))) == pairs


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        (record(20, 0), ALL_CORRECT),
        (record(0, 20), ALL_WRONG),
        (record(0, 20, unanswered=True), NO_ANSWER),
    ],
)
def test_a_one_sided_problem_gives_no_pair(problem: ProblemSamples, reason: str) -> None:
    assert draw_pairs(problem, pairs=5, seed=0) == ([], reason)


def test_the_draw_is_seeded() -> None:
    first = draw_pairs(record(8, 12), pairs=5, seed=1)
    assert draw_pairs(record(8, 12), pairs=5, seed=1) == first
    others = [draw_pairs(record(8, 12), pairs=5, seed=seed) for seed in range(2, 6)]
    assert any(other != first for other in others)


def test_repeated_answers_are_paired_once() -> None:
    problem = record(8, 12)
    for s in problem.samples[:8]:
        s.text = "the same right answer"
    rows, _ = draw_pairs(problem, pairs=5, seed=0)
    assert texts(rows, "chosen") == ["the same right answer"]


def test_write_pairs_counts_problems_without_pairs(tmp_path: Path) -> None:
    problems = problems_of(tmp_path)
    ids = [p.session_id for p in problems]
    records = {
        ids[0]: record(8, 12).model_copy(update={"id": ids[0]}),
        ids[1]: record(20, 0).model_copy(update={"id": ids[1]}),
        ids[2]: record(0, 20, unanswered=True).model_copy(update={"id": ids[2]}),
    }  # ids[3] was never sampled
    out = tmp_path / "pairs.jsonl"
    card = write_pairs(out, problems, records, options(), dataset="p.jsonl")
    assert card.rows == 5 and len(out.read_text().splitlines()) == 5
    assert card.skipped == {ALL_CORRECT: 1, NO_ANSWER: 1, NOT_SAMPLED: 1}
    assert (card.sessions_seen, card.sessions_exported, card.session_ids) == (4, 1, [ids[0]])
    assert card.samples == 60 and card.correct_samples == 28 and card.unanswered_samples == 20
    assert PairsCard.model_validate_json(card_path(out).read_text()) == card
    assert load_card(card_path(out)).rows == 5  # the export's card reader reads it too
    assert json.loads(card_path(out).read_text())["sampling"]["samples"] == 20


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"samples": 1}, "samples must be at least 2, got 1"),
        ({"pairs_per_problem": 0}, "pairs_per_problem must be at least 1, got 0"),
        ({"top_p": 0.0}, "top_p must be in"),
        ({"temperature": 3.0}, "temperature must be between 0 and 2, got 3.0"),
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ],
)
def test_options_are_validated(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        options(**settings)


def test_the_recorded_settings_do_not_depend_on_the_backend_or_batch_size() -> None:
    # Every backend seeds each request alone (a local model samples each row from a
    # generator of its own), so no seed grouping is recorded to resume with.
    local = PairsOptions(model="embedded", batch_size=8).manifest()
    assert "seed_group" not in local
    server = PairsOptions(model="openai:m@http://localhost:1/v1", batch_size=2).manifest()
    assert {k: v for k, v in server.items() if k != "model"} == {
        k: v for k, v in local.items() if k != "model"
    }


# --- sampling -----------------------------------------------------------------------------


async def test_sampler_writes_samples_pairs_and_card(tmp_path: Path) -> None:
    out = tmp_path / "data" / "pairs.jsonl"
    client = CountingClient()
    card = await sample(tmp_path, client, out)
    assert len(client.requests) == 80
    assert {(a["temperature"], a["top_p"], a["max_tokens"]) for a in client.args} == {
        (0.7, 0.95, 512)
    }
    assert len({a["seed"] for a in client.args}) == 80  # a server seeds each request alone
    assert card.rows == 5 and card.sessions_exported == 1
    assert card.skipped == {ALL_CORRECT: 1, ALL_WRONG: 1, NO_ANSWER: 1}
    assert card.correct_samples == 28 and card.failed_requests == 0
    records = load_samples(samples_path(out))
    assert [len(r.samples) for r in records.values()] == [20, 20, 20, 20]
    # The prompt of the pairs is the one `journey eval` asks.
    prompt = DEFAULT_PROMPT_TEMPLATE.replace("{problem}", PROBLEMS[0]["problem"])  # type: ignore[arg-type]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["prompt"] == [{"role": "user", "content": prompt}] for row in rows)
    assert all("\\boxed{7}" in row["chosen"][0]["content"] for row in rows)
    assert all("\\boxed{8}" in row["rejected"][0]["content"] for row in rows)


async def test_a_local_model_seeds_each_request_and_the_batch_size_bounds_those_in_flight(
    tmp_path: Path,
) -> None:
    client = CountingClient()
    await sample(tmp_path, client, tmp_path / "pairs.jsonl", model="embedded", batch_size=8)
    seeds = [a["seed"] for a in client.args]
    assert len(seeds) == 80 and len(set(seeds)) == 80  # as a server's: one seed per sample
    assert client.most_in_flight == 8
    server = CountingClient()
    await sample(tmp_path, server, tmp_path / "server.jsonl", batch_size=3)
    assert sorted(a["seed"] for a in server.args) == sorted(seeds)
    assert server.most_in_flight == 3


async def test_the_batch_size_changes_no_sample(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    await sample(tmp_path, SeededClient(), paths[0], model="embedded", batch_size=8)
    await sample(tmp_path, SeededClient(), paths[1], model="embedded", batch_size=3)
    assert load_samples(samples_path(paths[1])) == load_samples(samples_path(paths[0]))
    assert paths[1].read_text() == paths[0].read_text()


async def test_same_seed_same_pairs_other_seed_other_pairs(tmp_path: Path) -> None:
    paths = [tmp_path / name for name in ("a.jsonl", "b.jsonl", "c.jsonl")]
    await sample(tmp_path, SeededClient(), paths[0], seed=1)
    await sample(tmp_path, SeededClient(), paths[1], seed=1)
    await sample(tmp_path, SeededClient(), paths[2], seed=2)
    first = paths[0].read_text()
    assert first and paths[1].read_text() == first
    assert samples_path(paths[1]).read_text() == samples_path(paths[0]).read_text()
    assert paths[2].read_text() != first


async def test_a_cut_off_last_line_is_dropped_and_resampled(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    await sample(tmp_path, SeededClient(), out)
    whole = out.read_text()
    path = samples_path(out)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:50])  # killed mid-write
    assert len(load_samples(path)) == 3
    again = SeededClient()
    card = await sample(tmp_path, again, out)
    assert again.requests == [] and card.cache["model"]["hits"] == 20 and card.problems_sampled == 4
    assert len(path.read_text().splitlines()) == 4 and out.read_text() == whole


async def test_a_rerun_asks_nothing_and_rebuilds_the_pairs(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    await sample(tmp_path, CountingClient(), out)
    again = CountingClient()
    card = await sample(tmp_path, again, out, pairs_per_problem=2)  # pairs only: no resampling
    assert again.requests == [] and card.rows == 2


async def test_failed_requests_are_counted_and_their_problem_retried(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    card = await sample(tmp_path, CountingClient(fail=(MIXED, 3)), out)
    assert card.failed_requests == 1 and card.skipped[NOT_SAMPLED] == 1 and card.rows == 0
    assert len(load_samples(samples_path(out))) == 3
    retry = CountingClient()
    card = await sample(tmp_path, retry, out)
    assert (
        len(retry.requests) == 1
        and card.cache["model"]["hits"] == 19
        and card.rows == 5
        and NOT_SAMPLED not in card.skipped
    )
    assert card.failed_requests == 0


async def test_a_dead_endpoint_stops_the_run_and_it_resumes(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"

    async def down(messages: Any) -> str:
        raise ModelUnavailableError("connection refused at http://127.0.0.1:9/v1")

    sampler = PairsSampler(
        options(batch_size=1),
        grade=grade_output,
        client=FunctionChatCompletionClient(down),
        max_consecutive_errors=2,
    )
    with pytest.raises(EndpointDownError, match=r"2 problems in a row.*function:x:y.*refused"):
        await sampler.run(out, problems_of(tmp_path), dataset=str(tmp_path / "p.jsonl"))
    assert not out.exists()  # nothing drawn from a run cut short
    card = await sample(tmp_path, CountingClient(), out)  # the endpoint is back
    assert card.rows > 0 and card.failed_requests == 0


async def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    await sample(tmp_path, CountingClient(), out)
    with pytest.raises(ConfigError, match=r"temperature: 0\.7 -> 1\.0"):
        await sample(tmp_path, CountingClient(), out, temperature=1.0)
    client = CountingClient()
    sampler = PairsSampler(options(temperature=1.0), grade=grade_output, client=client, force=True)
    card = await sampler.run(out, problems_of(tmp_path), dataset="p.jsonl")
    assert client.requests == [] and card.rows == 5
    # A setting an older journey did not record reads as today's default: no refusal.
    manifest = tmp_path / "pairs.sampling.json"
    recorded = json.loads(manifest.read_text())
    del recorded["top_p"], recorded["resumed"]
    recorded["temperature"] = 1.0
    manifest.write_text(json.dumps(recorded))
    card = await sample(tmp_path, CountingClient(), out, temperature=1.0)
    assert card.rows == 5


async def test_out_may_not_be_the_dataset_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="overwrite the dataset"):
        await sample(tmp_path, CountingClient(), tmp_path / "p.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        await sample(tmp_path, CountingClient(), tmp_path)


# --- command line ---------------------------------------------------------------------------

_cli_seen: dict[str, int] = {}


def cli_reply(messages: Sequence[LLMMessage]) -> str:
    """The `function:` model of the CLI test: `answer_for` with a counter per prompt."""
    prompt = str(messages[-1].content)
    position = _cli_seen.get(prompt, 0)
    _cli_seen[prompt] = position + 1
    return answer_for(prompt, position)


def test_pairs_command_writes_rows_that_train_dpo_reads(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    _cli_seen.clear()
    dataset = write_dataset(tmp_path / "p.jsonl")
    out = tmp_path / "pairs.jsonl"
    args = ["pairs", "--model", f"function:{__name__}:cli_reply", "--dataset", str(dataset),
            "--out", str(out), "--no-progress", "--seed", "3"]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["rows"] == 5 and card["skipped"] == {ALL_CORRECT: 1, ALL_WRONG: 1, NO_ANSWER: 1}
    assert card["sampling"]["seed"] == 3 and card["format"] == "dpo"

    rows = load_dpo_rows(out)  # what `journey train dpo` reads
    assert len(rows) == 5
    loaded = datasets.load_dataset(
        "json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.column_names == ["prompt", "chosen", "rejected"] and loaded.num_rows == 5

    result = runner.invoke(app, [*args, "--pairs-per-problem", "1", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "1 all correct" in result.stdout and "1/2 gave pairs" in result.stdout
    assert len(out.read_text().splitlines()) == 1


def test_pairs_command_reports_bad_options_as_user_errors(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "p.jsonl")
    result = runner.invoke(
        app, ["pairs", "--dataset", str(dataset), "--out", str(tmp_path / "o.jsonl"),
              "--model", "function:x:y", "--samples", "1"],
    )  # fmt: skip
    assert isinstance(result.exception, ConfigError)
    assert "samples must be at least 2" in str(result.exception)
