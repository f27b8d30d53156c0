"""`journey eval` pays for nothing twice: its requests go through the response cache
(a warm-cache rerun asks the model nothing and writes the same records), are priced
per role, and stop at a budget, resumably."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage
from typer.testing import CliRunner

from journey.agents.backends.cached_client import CacheMode
from journey.cli import app
from journey.errors import ConfigError
from journey.evaluation import EvalMetrics, EvalOptions, EvalRunner, load_records
from journey.problems.dataset import ProblemRecord, load_problems
from journey.runs.request_accounts import SpendSettings
from journey.runs.response_cache import CacheSettings, recorded_cache_stats
from journey.runs.spend import RunBudget, recorded_spend

MODEL = "function:test_eval_cache_cost:drawing_reply"
PRICED = f"{MODEL}?price_in=1&price_out=2"
CALLS: Counter[str] = Counter()
_ASKED = re.compile(r"What is (\d+) \+ \1\?")


def drawing_reply(messages: Sequence[LLMMessage]) -> str:
    """A sampling model: every reply carries a fresh draw, so only a cache can make two
    evaluations write the same outputs; odd problems are answered wrong."""
    CALLS["model"] += 1
    found = _ASKED.search(str(messages[-1].content))
    assert found is not None
    k = int(found.group(1))
    answer = 2 * k if k % 2 == 0 else 2 * k + 1
    return f"{k} + {k} (draw {random.random():.9f}), so \\boxed{{{answer}}}."


def write_problems(path: Path, count: int = 5) -> list[ProblemRecord]:
    rows = [{"problem": f"What is {k} + {k}?", "answer": str(2 * k)} for k in range(1, count + 1)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return load_problems(path).records


def evaluate(out: Path, spending: SpendSettings | None = None, **kw: Any) -> EvalMetrics:
    problems = write_problems(out.parent / "p.jsonl")
    settings = {"model": PRICED, "spending": spending or SpendSettings(), **kw}
    runner = EvalRunner(EvalOptions(**settings))
    return asyncio.run(runner.run(out, problems, dataset="p.jsonl"))


def records(out: Path) -> list[dict[str, Any]]:
    """The records as written, without their timing."""
    return [r.model_dump(exclude={"seconds"}) for r in load_records(out)]


def usd(prompt: int, completion: int) -> float:
    return (prompt * 1 + completion * 2) / 1e6


def test_a_warm_cache_rerun_asks_the_model_nothing_and_writes_the_same_records(
    tmp_path: Path,
) -> None:
    shared = SpendSettings(cache=CacheSettings(directory=tmp_path / "cache"))
    CALLS.clear()
    cold = evaluate(tmp_path / "first", shared)
    assert CALLS["model"] == 5
    assert cold.cache["model"]["misses"] == 5 and cold.cache["model"]["stored"] == 5
    spent = cold.spend["model"]
    assert spent["prompt_tokens"] > 0 and spent["usd"] == pytest.approx(
        usd(spent["prompt_tokens"], spent["completion_tokens"])
    )
    assert cold.cost_usd == pytest.approx(spent["usd"]) and cold.paid_usd == cold.cost_usd

    CALLS.clear()
    warm = evaluate(tmp_path / "second", shared)
    assert CALLS["model"] == 0  # no model asked
    assert records(tmp_path / "second") == records(tmp_path / "first")
    assert (warm.correct, warm.problems) == (cold.correct, cold.problems) == (2, 5)
    assert warm.cache["model"]["hits"] == 5 and warm.cache["model"]["misses"] == 0
    assert warm.cache["model"]["completion_tokens_saved"] == spent["completion_tokens"]
    assert warm.spend["model"]["prompt_tokens"] == 0 and warm.cost_usd == 0.0
    assert warm.paid == {"model": {"prompt_tokens": 0, "completion_tokens": 0, "usd": 0.0}}

    # Without the cache the same evaluation draws new outputs.
    CALLS.clear()
    evaluate(tmp_path / "third", SpendSettings(cache=CacheSettings(mode=CacheMode.OFF)))
    assert CALLS["model"] == 5 and records(tmp_path / "third") != records(tmp_path / "first")
    assert not (tmp_path / "third" / "cache").exists()


def test_the_default_cache_lives_in_the_evaluation_directory(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    CALLS.clear()
    evaluate(out)
    assert list((out / "cache").glob("*.sqlite")), "the cache is in the evaluation directory"
    assert recorded_cache_stats(out)["model"].stored == 5
    assert json.loads((out / "eval.json").read_text())["cache"] == {
        "mode": "readwrite",
        "directory": "cache/ in the run",
    }
    first = records(out)
    # Records lost (deleted by hand): the evaluation is done again from its cache.
    (out / "records.jsonl").unlink()
    CALLS.clear()
    again = evaluate(out)
    assert CALLS["model"] == 0 and records(out) == first and again.problems == 5
    assert recorded_cache_stats(out)["model"].hits == 5


def test_a_token_budget_stops_the_evaluation_and_a_rerun_does_only_the_rest(
    tmp_path: Path,
) -> None:
    out = tmp_path / "eval"
    CALLS.clear()
    cut = evaluate(out, SpendSettings(budget=RunBudget(tokens=1)), batch_size=1)
    # The first problem's request spends the budget: no other problem starts.
    assert CALLS["model"] == 1 and cut.problems == 1 and cut.errors == 0
    used = sum(u.total for u in recorded_spend(out).values())
    assert cut.stopped == (
        f"budget: 1 tokens spent ({used:,} used); 4 problems left: "
        f"run the same command again to resume {out}"
    )
    assert json.loads((out / "metrics.json").read_text())["stopped"] == cut.stopped
    assert json.loads((out / "eval.json").read_text())["budget"] == {"tokens": 1}
    [done] = (out / "records.jsonl").read_text().splitlines()

    CALLS.clear()
    rest = evaluate(out, batch_size=1)  # no budget now: a resume may change it
    assert CALLS["model"] == 4 and rest.problems == 5 and rest.stopped is None
    lines = (out / "records.jsonl").read_text().splitlines()
    assert lines[0] == done and len(lines) == 5  # the finished problem was not redone
    assert len({json.loads(line)["id"] for line in lines}) == 5
    paid = rest.paid["model"]
    assert paid["prompt_tokens"] + paid["completion_tokens"] == used + sum(
        rest.spend["model"][k] for k in ("prompt_tokens", "completion_tokens")
    )
    assert rest.paid_usd == pytest.approx(usd(paid["prompt_tokens"], paid["completion_tokens"]))


def test_a_usd_budget_needs_the_models_price() -> None:
    with pytest.raises(ConfigError, match=r"--budget-usd needs every role's price: no price"):
        EvalOptions(model=MODEL, spending=SpendSettings(budget=RunBudget(usd=1.0)))
    EvalOptions(model=PRICED, spending=SpendSettings(budget=RunBudget(usd=1.0)))


def test_the_eval_command_prices_caches_and_stops_at_a_budget(tmp_path: Path) -> None:
    write_problems(tmp_path / "p.jsonl", 3)
    (tmp_path / "prices.yaml").write_text("test_eval_cache_cost:drawing_reply: {in: 1, out: 2}\n")
    args = ["eval", "--model", MODEL, "--dataset", str(tmp_path / "p.jsonl"),
            "--prices", str(tmp_path / "prices.yaml"), "--batch-size", "1",
            "--no-progress"]  # fmt: skip
    runner = CliRunner()
    cut = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--budget-usd", "1e-6"])
    assert cut.exit_code == 0, cut.output
    assert "stopped: budget: $0.0000 spent" in " ".join(cut.stderr.split())
    assert "cost" in cut.stdout and "cache · model" in cut.stdout
    done = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--json"])
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout)
    assert metrics["problems"] == 3 and metrics["stopped"] is None
    spent = metrics["spend"]["model"]
    assert spent["price"] == {"in": 1.0, "out": 2.0, "source": "prices file"}
    assert spent["usd"] == pytest.approx(usd(spent["prompt_tokens"], spent["completion_tokens"]))
    assert metrics["paid_usd"] > metrics["cost_usd"] > 0  # two invocations paid

    CALLS.clear()  # another directory on the first one's cache: nothing paid
    shared = [*args, "--out", str(tmp_path / "b"), "--cache", str(tmp_path / "a" / "cache")]
    warm = runner.invoke(app, [*shared, "--json"])
    assert warm.exit_code == 0, warm.output
    assert CALLS["model"] == 0 and json.loads(warm.stdout)["cost_usd"] == 0.0
    wrong = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--cache-mode", "maybe"])
    assert wrong.exit_code != 0 and "cache mode must be one of" in str(wrong.exception)
