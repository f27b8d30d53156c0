"""`journey eval` and `journey pairs` on Ray: units on worker actors (one killed), merged
into what one process writes; the units' spend added once; one budget for the cluster."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage
from typer.testing import CliRunner

from journey.agents.backends.scripted import FunctionChatCompletionClient
from journey.cli import app
from journey.evaluation import EvalOptions, EvalRunner, load_records
from journey.evaluation.pairs import samples_path
from journey.evaluation.pairs_sampling import load_samples
from journey.evaluation.ray_eval import evaluate_on_ray
from journey.evaluation.ray_jobs import absorb_accounts
from journey.exports.export import card_path
from journey.problems.dataset import load_problems
from journey.protocols import TokenUsage
from journey.runs.ray_jobs import pending_units
from journey.runs.ray_units import RayOptions, unit_dirs
from journey.runs.request_accounts import SpendSettings
from journey.runs.spend import RunBudget, recorded_spend, write_spend

TESTS = Path(__file__).parent
KILL_MARKER = "JOURNEY_TEST_KILL_MARKER"
runner = CliRunner()


def write_dataset(path: Path, count: int = 8) -> Path:
    rows = [
        {"problem": f"What is {n}+{n}?", "answer": str(2 * n), "level": n % 3} for n in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _number(messages: Sequence[LLMMessage]) -> int:
    found = re.search(r"What is (\d+)\+", str(messages[-1].content))
    assert found is not None
    return int(found.group(1))


def reply(messages: Sequence[LLMMessage]) -> str:
    """Right unless the number is a multiple of 3; some reflect."""
    n = _number(messages)
    answer = 2 * n + (1 if n % 3 == 0 else 0)
    return f"{'Wait, let me check. ' if n % 2 else ''}{n}+{n} is \\boxed{{{answer}}}"


def killing_reply(messages: Sequence[LLMMessage]) -> str:
    """`reply`, but its worker process dies the first time it is asked about 5+5."""
    marker = Path(os.environ[KILL_MARKER])
    if _number(messages) == 5 and not marker.exists():
        marker.write_text("killed")
        os._exit(1)  # the worker dies mid-unit, as a preempted node would
    return reply(messages)


_seen: dict[str, int] = {}


def sampling_reply(messages: Sequence[LLMMessage]) -> str:
    """A sampler: the k-th answer to a prompt (in this process) is right when k % 3 == 0."""
    prompt = str(messages[-1].content)
    k = _seen[prompt] = _seen.get(prompt, -1) + 1
    n = _number(messages)
    return f"try {k}: \\boxed{{{2 * n if k % 3 == 0 else 2 * n + k}}}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local cluster for the module's Ray tests; workers import this module's models
    and find the kill marker in the environment."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    marker = tmp_path_factory.mktemp("marker") / "killed-once"
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), *sys.path])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, KILL_MARKER: str(marker)}},
    )
    yield marker
    ray.shutdown()


def _records(out: Path) -> list[dict[str, Any]]:
    return sorted(
        (r.model_dump(exclude={"seconds"}) for r in load_records(out)), key=lambda r: r["id"]
    )


_SPENT = {"wall_seconds", "cache", "spend", "cost_usd", "paid", "paid_usd"}


def test_eval_on_ray_with_a_killed_worker_writes_what_one_process_writes(
    cluster: Path, tmp_path: Path
) -> None:
    problems = load_problems(write_dataset(tmp_path / "d.jsonl")).records
    options = EvalOptions(model=f"function:{__name__}:killing_reply")
    single = EvalRunner(options, client=FunctionChatCompletionClient(reply))  # no kill here
    plain = asyncio.run(single.run(tmp_path / "plain", problems, dataset="d.jsonl"))
    out = tmp_path / "ray"
    metrics = evaluate_on_ray(
        options, problems, out, RayOptions(workers=2, units=4), dataset="d.jsonl"
    )
    assert cluster.exists(), "a worker was killed once"
    assert metrics.stopped is None and metrics.problems == 8
    assert metrics.model_dump(exclude=_SPENT) == plain.model_dump(exclude=_SPENT)
    assert _records(out) == _records(tmp_path / "plain")
    assert len((out / "records.jsonl").read_text().splitlines()) == 8  # nothing twice
    assert json.loads((out / "metrics.json").read_text())["correct"] == plain.correct
    assert sorted(p.name for p in (out / "cache").glob("*.sqlite")) == [
        f"{root.name}.sqlite" for root in unit_dirs(out, 4)
    ]
    paid = recorded_spend(out)["model"]
    assert (
        paid.completion_tokens > 0
        and metrics.paid["model"]["completion_tokens"] == paid.completion_tokens
    )
    # Again: every record is in, so no unit runs (no worker starts) and nothing is added.
    again = evaluate_on_ray(options, problems, out, RayOptions(workers=2), dataset="d.jsonl")
    assert again.model_dump(exclude=_SPENT) == metrics.model_dump(exclude=_SPENT)
    assert recorded_spend(out) == {"model": paid}
    assert len((out / "records.jsonl").read_text().splitlines()) == 8


def test_eval_on_ray_stops_at_the_clusters_budget_and_a_rerun_does_only_the_rest(
    cluster: Path, tmp_path: Path
) -> None:
    problems = load_problems(write_dataset(tmp_path / "d.jsonl")).records
    options = EvalOptions(model=f"function:{__name__}:reply", batch_size=1)
    single = EvalRunner(options, client=FunctionChatCompletionClient(reply))
    asyncio.run(single.run(tmp_path / "plain", problems, dataset="d.jsonl"))
    out = tmp_path / "ray"
    budget = SpendSettings(budget=RunBudget(tokens=1))
    cut = evaluate_on_ray(
        replace(options, spending=budget), problems, out, RayOptions(workers=2, units=4),
        dataset="d.jsonl",
    )  # fmt: skip
    # Each worker's first answer spends the job's budget: it starts no other problem, and
    # no unit is given out once the ledger's sum says so.
    left = 8 - cut.problems
    used = sum(u.total for u in recorded_spend(out).values())  # every worker's
    assert left > 0 and cut.errors == 0
    assert cut.stopped == (
        f"budget: 1 tokens spent ({used:,} used); {left} problems left: "
        f"run the same command again to resume {out}"
    )
    rest = evaluate_on_ray(options, problems, out, RayOptions(workers=2), dataset="d.jsonl")
    assert rest.stopped is None and rest.problems == 8
    assert len((out / "records.jsonl").read_text().splitlines()) == 8  # nothing twice
    assert _records(out) == _records(tmp_path / "plain")


def test_pairs_on_ray_take_a_budget_and_a_rerun_samples_only_the_rest(
    cluster: Path, tmp_path: Path
) -> None:
    dataset, out = write_dataset(tmp_path / "d.jsonl", 6), tmp_path / "pairs.jsonl"
    args = [*_pairs_args(dataset, out), "--ray", "auto", "--ray-workers", "2"]
    cut = runner.invoke(app, [*args, "--budget-tokens", "1", "--batch-size", "1"])
    assert cut.exit_code == 0, cut.output
    card = json.loads(cut.stdout)
    left = 6 - card["problems_sampled"]
    assert left > 0 and card["skipped"]["not sampled yet (budget spent)"] == left
    assert card["stopped"].startswith("budget: 1 tokens spent (")
    assert card["stopped"].endswith(f"{left} problems left: run the same command again "
                                    f"to resume {out}")  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    card = json.loads(done.stdout)
    assert card["problems_sampled"] == 6 and card["stopped"] is None
    ids = [json.loads(line)["id"] for line in samples_path(out).read_text().splitlines()]
    assert len(set(ids)) == len(ids) == 6  # each problem sampled once


def _pairs_args(dataset: Path, out: Path) -> list[str]:
    return ["pairs", "--model", f"function:{__name__}:sampling_reply", "--dataset", str(dataset),
            "--out", str(out), "--samples", "6", "--pairs-per-problem", "2",
            "--no-progress", "--json"]  # fmt: skip


def test_pairs_on_ray_write_the_pairs_samples_and_card_of_one_process(
    cluster: Path, tmp_path: Path
) -> None:
    dataset = write_dataset(tmp_path / "d.jsonl", 6)
    _seen.clear()
    plain = runner.invoke(app, _pairs_args(dataset, tmp_path / "plain/pairs.jsonl"))
    assert plain.exit_code == 0, plain.output
    out = tmp_path / "ray/pairs.jsonl"
    ray_args = ["--ray", "auto", "--ray-workers", "2", "--ray-units", "3"]
    result = runner.invoke(app, [*_pairs_args(dataset, out), *ray_args])
    assert result.exit_code == 0, result.output
    card, expected = json.loads(result.stdout), json.loads(plain.stdout)
    assert card["rows"] == 12 and not card["stopped"]
    for where in ("file", "samples_file", "created"):
        card.pop(where), expected.pop(where)
    assert card == expected  # the cache counts, tokens and what was paid too
    assert out.read_text() == (tmp_path / "plain/pairs.jsonl").read_text()
    ours, theirs = (
        load_samples(samples_path(out)),
        load_samples(tmp_path / "plain/pairs.samples.jsonl"),
    )
    assert ours == theirs and len(samples_path(out).read_text().splitlines()) == 6
    assert sorted(p.name for p in (tmp_path / "ray/pairs.units").iterdir()) == [
        "accounts.json", "unit-0000-of-0003", "unit-0001-of-0003", "unit-0002-of-0003"
    ]  # fmt: skip
    assert json.loads(card_path(out).read_text())["rows"] == 12


# --- without a cluster ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["eval", "pairs"])
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ray-workers", "0"], "ray workers must be at least 1, got 0"),
    ],
)
def test_the_cli_refuses_no_workers_on_ray(
    tmp_path: Path, command: str, extra: list[str], message: str
) -> None:
    dataset = write_dataset(tmp_path / "d.jsonl")
    out = tmp_path / ("eval" if command == "eval" else "pairs.jsonl")
    args = [command, "--model", "function:x:y", "--dataset", str(dataset), "--out", str(out),
            "--ray", "local", *extra]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not out.exists()  # refused before anything was written


def test_units_hold_only_problems_without_a_result_and_the_same_ones_every_run(
    tmp_path: Path,
) -> None:
    problems = load_problems(write_dataset(tmp_path / "d.jsonl")).records
    roots = unit_dirs(tmp_path, 4)
    done = {p.session_id for p in problems if p.index in (1, 5, 2)}
    units = pending_units(problems, roots, done)
    assert [(root.name, [p.index for p in todo]) for root, todo in units] == [
        ("unit-0000-of-0004", [0, 4]),
        ("unit-0002-of-0004", [6]),
        ("unit-0003-of-0004", [3, 7]),
    ]


def test_the_units_spend_is_added_to_the_job_once(tmp_path: Path) -> None:
    units = [tmp_path / "units/u0", tmp_path / "units/u1"]
    for i, unit in enumerate(units):
        write_spend(
            unit / "spend.json",
            {"model": TokenUsage(prompt_tokens=10 * (i + 1), completion_tokens=1)},
        )
    ledger = tmp_path / "units/accounts.json"

    def absorb() -> Any:
        return absorb_accounts(
            SpendSettings(), {"model": "function:x:y"}, tmp_path, units, ledger=ledger
        )

    first = absorb()
    assert first.spend["model"]["prompt_tokens"] == 30
    assert recorded_spend(tmp_path)["model"] == TokenUsage(prompt_tokens=30, completion_tokens=2)
    again = absorb()  # nothing new in the units: nothing added
    assert again.spend["model"]["prompt_tokens"] == 0 and again.paid == first.paid
    write_spend(
        units[1] / "spend.json", {"model": TokenUsage(prompt_tokens=25, completion_tokens=3)}
    )
    third = absorb()  # a unit resumed and spent more: only that is added
    assert third.spend["model"]["prompt_tokens"] == 5
    assert recorded_spend(tmp_path)["model"] == TokenUsage(prompt_tokens=35, completion_tokens=4)
