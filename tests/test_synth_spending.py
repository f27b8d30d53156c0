"""`journey synth` spends through the same accounts as `eval` and `pairs`: its options
hold one `SpendSettings`, recorded under the keys older runs wrote (so they resume), its
report's cache, spend, cost and stop come from `RequestAccounts`; `journey eval`'s
summary shows what it spent."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from rich.console import Console
from test_runner import dataset, options

from journey.agents.backends.cached_client import CacheMode
from journey.evaluation.metrics import EvalMetrics
from journey.runs import SynthesisReport, SynthesisRunner, read_manifest
from journey.runs.prices import ModelPrice
from journey.runs.request_accounts import SPEND_SETTINGS, SpendReport, SpendSettings
from journey.runs.response_cache import CacheSettings
from journey.runs.spend import RunBudget, recorded_spend
from journey.view.reports import render_metrics

POLICY = "function:test_runner:fake_policy?price_in=1&price_out=2"
CRITIC = "function:test_runner:fake_critic?price_in=1&price_out=2"


def test_the_shorthands_set_the_parts_of_spending() -> None:
    cache = CacheSettings(mode=CacheMode.READ, directory=Path("/tmp/shared-cache"))
    prices = {"m": ModelPrice(1, 2, "prices file")}
    budget = RunBudget(tokens=100)
    whole = options(spending=SpendSettings(cache=cache, prices=prices, budget=budget))
    assert options(cache=cache, prices=prices, budget=budget) == whole
    assert whole.spending == SpendSettings(cache=cache, prices=prices, budget=budget)
    # A shorthand replaces its part of a given `spending`, and only that part.
    cheaper = options(spending=whole.spending, budget=RunBudget(usd=1.0))
    assert cheaper.spending.cache == cache and cheaper.spending.prices == prices
    assert cheaper.spending.budget == RunBudget(usd=1.0)
    assert options().spending == SpendSettings()


def test_the_record_keeps_the_spend_keys_at_its_top() -> None:
    settings = SpendSettings(prices={"m": ModelPrice(1, 2)}, budget=RunBudget(tokens=5))
    record = options(spending=settings).record()
    assert {key: record[key] for key in SPEND_SETTINGS} == settings.record()
    assert record["budget"] == {"tokens": 5} and record["prices"] == {"m": {"in": 1, "out": 2}}


def test_a_run_recorded_before_spending_was_one_field_resumes(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ("plain", "reflect"))
    run = tmp_path / "run"
    cut = options(policy=POLICY, critic=CRITIC, concurrency=1, budget=RunBudget(tokens=150))
    first = asyncio.run(SynthesisRunner(cut).run(run, problems))
    assert first.stopped is not None and first.stopped.endswith(f"resume {run}")
    # run.json as an older journey wrote it: the three settings at its top.
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["cache"] == {"mode": "readwrite", "directory": "cache/ in the run"}
    assert manifest["budget"] == {"tokens": 150} and "spending" not in manifest
    spending = SpendSettings(cache=CacheSettings(mode=CacheMode.OFF))
    again = options(policy=POLICY, critic=CRITIC, concurrency=1, spending=spending)
    rest = asyncio.run(SynthesisRunner(again).run(run, problems))  # no force needed
    assert rest.stopped is None and rest.finished == 2 and rest.cache == {}
    recorded = read_manifest(run / "run.json")
    assert recorded is not None and recorded.current["cache"]["mode"] == "off"
    assert "budget" not in recorded.current
    # What each invocation spent is added up, as `journey eval`'s and `pairs`' are.
    assert sum(u.total for u in recorded_spend(run).values()) == sum(
        s["prompt_tokens"] + s["completion_tokens"]
        for report in (first, rest)
        for s in report.spend.values()
    )


def test_the_synthesis_report_carries_the_accounts_fields_but_paid() -> None:
    unpaid = set(SpendReport.model_fields) - {"paid", "paid_usd"}
    assert unpaid <= set(SynthesisReport.model_fields)


def test_the_evaluation_summary_shows_what_its_requests_cost() -> None:
    metrics = EvalMetrics(
        model="m",
        dataset="d.jsonl",
        problems=2,
        correct=1,
        accuracy=0.5,
        mean_output_tokens=10.0,
        reflection_rate=0.0,
        mean_reflections=0.0,
        backtrack_rate=0.0,
        no_answer_rate=0.0,
        truncated_rate=0.0,
        by_level={},
        by_subject={},
        cache={"model": {"hits": 1, "misses": 1, "stored": 1}},
        spend={"model": {"prompt_tokens": 30, "completion_tokens": 20, "usd": 0.0123}},
        cost_usd=0.0123,
        stopped="budget: 50 tokens spent; 1 problem left: resume evals/[v2]",
    )
    console = Console(file=io.StringIO(), width=160)
    console.print(render_metrics(metrics))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    [table] = [t for t in text.split("\n\n") if "evaluation of m" in t]  # one table
    assert "$0.0123 (model $0.0123; 50 tokens)" in table
    assert "1 hits · 1 misses · 1 stored" in table and "resume evals/[v2]" in table
