"""`journey merge` sums what the runs paid: each role's tokens (`spend.json`) and cache
counts (`cache.json`) reach the merged run, whose stats then price them per role; a
merge again adds only what the sources spent since, never a token twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runner import KINDS, dataset, synthesise
from typer.testing import CliRunner

from journey.cli import app
from journey.protocols import TokenUsage
from journey.runs.merge import merge_runs
from journey.runs.response_cache import recorded_cache_stats
from journey.runs.spend import recorded_spend, write_spend
from journey.runs.stats import read_run, run_stats

POLICY = "function:test_runner:fake_policy?price_in=1&price_out=2"
CRITIC = "function:test_runner:fake_critic?price_in=0.5&price_out=1.5"
SOLVABLE = tuple(kind for kind in KINDS if kind != "explode")


def spend(run: Path) -> dict[str, dict[str, int]]:
    return {role: used.model_dump() for role, used in recorded_spend(run).items()}


def total(*runs: Path) -> dict[str, dict[str, int]]:
    summed: dict[str, TokenUsage] = {}
    for run in runs:
        for role, used in recorded_spend(run).items():
            summed[role] = summed.get(role, TokenUsage()) + used
    return {role: used.model_dump() for role, used in summed.items()}


def paid(run: Path) -> dict[str, float | None]:
    cost = run_stats(read_run(run)).cost
    assert cost is not None
    return cost.paid


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    """Two shard runs of priced models, as `--shard 0/2` and `--shard 1/2` write them."""
    problems = dataset(tmp_path / "d.jsonl", SOLVABLE)
    roots = [tmp_path / "s0", tmp_path / "s1"]
    for i, root in enumerate(roots):
        synthesise(root, problems[i::2], policy=POLICY, critic=CRITIC)
    return roots


def test_merge_sums_the_runs_spend_and_stats_prices_it_per_role(
    shards: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    assert all(spend(s)["policy"]["completion_tokens"] > 0 for s in shards)
    report = merge_runs(shards, out)
    assert spend(out) == total(*shards) == report.spend_added
    merged, first, second = paid(out), paid(shards[0]), paid(shards[1])
    for role in ("policy", "critic"):
        assert merged[role] == pytest.approx(first[role] + second[role])  # type: ignore[operator]
    cache = recorded_cache_stats(out)
    assert cache["policy"].misses == sum(recorded_cache_stats(s)["policy"].misses for s in shards)
    sources = json.loads((out / "run.json").read_text())["merged"][0]["sources"]
    assert [s["spend"] for s in sources] == [spend(s) for s in shards]

    stats = CliRunner().invoke(app, ["stats", str(out), "--json"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["cost"]["paid_total"] == pytest.approx(
        sum(first.values()) + sum(second.values())  # type: ignore[arg-type]
    )


def test_merging_again_adds_only_what_the_sources_spent_since(
    shards: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    merge_runs(shards, out)
    once = spend(out)
    again = merge_runs([*shards, shards[0]], out)  # a source named twice counts once
    assert again.spend_added == {} and spend(out) == once

    # A shard resumed with more problems: the merge adds just what it spent since.
    before = spend(shards[1])
    more = dataset(tmp_path / "more.jsonl", ("plain", "reflect", "plain", "reflect"))
    synthesise(shards[1], more[2:], policy=POLICY, critic=CRITIC)
    grown = merge_runs(shards, out)
    after = spend(shards[1])
    delta = {role: {k: after[role][k] - before[role][k] for k in after[role]} for role in after}
    assert grown.spend_added == delta
    assert spend(out) == total(*shards)


def test_a_source_made_again_adds_its_spend_whole_and_out_keeps_its_own(
    shards: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    merge_runs(shards, out)
    own = {"policy": TokenUsage(prompt_tokens=7, completion_tokens=3)}  # OUT resumed itself
    summed = recorded_spend(out)
    write_spend(out / "spend.json", {**summed, "policy": summed["policy"] + own["policy"]})
    smaller = {"policy": TokenUsage(prompt_tokens=1, completion_tokens=1)}
    write_spend(shards[0] / "spend.json", smaller)  # its counts went down: a new run
    report = merge_runs(shards, out)
    assert report.spend_added == {"policy": {"prompt_tokens": 1, "completion_tokens": 1}}
    assert (
        spend(out)["policy"] == (summed["policy"] + own["policy"] + smaller["policy"]).model_dump()
    )
