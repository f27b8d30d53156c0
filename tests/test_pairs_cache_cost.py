"""`journey pairs` pays for nothing twice: its samples go through the response cache
kept beside the pairs file (a warm-cache rerun asks the model nothing and writes the
same samples and pairs), are priced, and stop at a budget; a rerun pays only for the
answers it still lacks."""

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
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import (
    LEFT_FOR_LATER,
    PairsCard,
    PairsOptions,
    manifest_path,
    samples_path,
)
from journey.evaluation.pairs_sampling import PairsSampler
from journey.problems.dataset import load_problems
from journey.runs.request_accounts import SpendSettings
from journey.runs.response_cache import CacheSettings, recorded_cache_stats
from journey.runs.spend import RunBudget, recorded_spend

MODEL = "function:test_pairs_cache_cost:drawing_answer"
PRICED = f"{MODEL}?price_in=1&price_out=2"
CALLS: Counter[str] = Counter()
_ASKED = re.compile(r"What is (\d+) \+ \1\?")


def drawing_answer(messages: Sequence[LLMMessage]) -> str:
    """A sampling model: right or wrong by a fresh draw, so only a cache can make two
    runs write the same samples."""
    CALLS["model"] += 1
    found = _ASKED.search(str(messages[-1].content))
    assert found is not None
    k = int(found.group(1))
    draw = random.random()
    return f"{k} + {k} (draw {draw:.9f}), so \\boxed{{{2 * k if draw < 0.5 else 2 * k + 1}}}."


def write_problems(path: Path, count: int = 3) -> Path:
    rows = [{"problem": f"What is {k} + {k}?", "answer": str(2 * k)} for k in range(1, count + 1)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def sample(out: Path, spending: SpendSettings | None = None, **kw: Any) -> PairsCard:
    dataset = write_problems(out.parent / "p.jsonl")
    settings = {"model": PRICED, "samples": 4, "spending": spending or SpendSettings(), **kw}
    sampler = PairsSampler(PairsOptions(**settings), grade=grade_output)
    return asyncio.run(sampler.run(out, load_problems(dataset).records, dataset=str(dataset)))


def test_a_warm_cache_rerun_asks_the_model_nothing_and_writes_the_same_pairs(
    tmp_path: Path,
) -> None:
    shared = SpendSettings(cache=CacheSettings(directory=tmp_path / "cache"))
    CALLS.clear()
    cold = sample(tmp_path / "a.jsonl", shared)
    assert CALLS["model"] == 12 and cold.samples == 12
    assert cold.cache["model"]["misses"] == 12 and cold.cache["model"]["stored"] == 12
    assert cold.cost_usd is not None and cold.cost_usd > 0

    CALLS.clear()
    warm = sample(tmp_path / "b.jsonl", shared)
    assert CALLS["model"] == 0  # no model asked
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert samples_path(b).read_text() == samples_path(a).read_text()
    assert b.read_text() == a.read_text() and warm.rows == cold.rows
    assert warm.cache["model"]["hits"] == 12 and warm.cost_usd == 0.0
    assert warm.spend["model"]["prompt_tokens"] == 0

    # Without the cache the same run draws new answers.
    CALLS.clear()
    sample(tmp_path / "c.jsonl", SpendSettings(cache=CacheSettings(mode=CacheMode.OFF)))
    assert CALLS["model"] == 12
    assert samples_path(tmp_path / "c.jsonl").read_text() != samples_path(a).read_text()


def test_the_cache_and_the_accounts_lie_beside_the_pairs_file(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    card = sample(out)
    assert list((tmp_path / "pairs.cache").glob("*.sqlite"))
    assert recorded_cache_stats(tmp_path, prefix="pairs.")["model"].stored == 12
    paid = recorded_spend(tmp_path, prefix="pairs.")["model"]
    assert (
        paid.model_dump()
        == {k: v for k, v in card.paid["model"].items() if k != "usd"}
        == {k: card.spend["model"][k] for k in ("prompt_tokens", "completion_tokens")}
    )
    assert json.loads(manifest_path(out).read_text())["cache"]["mode"] == "readwrite"
    card_file = json.loads((tmp_path / "pairs.card.json").read_text())
    assert card_file["spend"]["model"]["usd"] == pytest.approx(card.cost_usd)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "spend.json").exists()


def test_a_token_budget_stops_sampling_and_the_rerun_pays_only_for_what_is_missing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "pairs.jsonl"
    CALLS.clear()
    # One request in flight at a time: the first answer spends the budget, and no other
    # request goes out.
    cut = sample(out, SpendSettings(budget=RunBudget(tokens=1)), batch_size=1)
    assert CALLS["model"] == 1
    assert cut.problems_sampled == 0 and cut.failed_requests == 0 and cut.rows == 0
    assert cut.skipped == {LEFT_FOR_LATER: 3}
    used = sum(u.total for u in recorded_spend(tmp_path, prefix="pairs.").values())
    assert cut.stopped == (
        f"budget: 1 tokens spent ({used:,} used); 3 problems left: "
        f"run the same command again to resume {out}"
    )
    assert samples_path(out).read_text() == ""

    CALLS.clear()
    rest = sample(out, batch_size=1)
    # The answer paid before the stop comes from the cache: 12 answers, 12 requests paid.
    assert CALLS["model"] == 11 and rest.cache["model"]["hits"] == 1
    assert (
        rest.problems_sampled == 3 and rest.stopped is None and LEFT_FOR_LATER not in rest.skipped
    )
    paid = rest.paid["model"]
    assert paid["prompt_tokens"] + paid["completion_tokens"] == used + sum(
        rest.spend["model"][k] for k in ("prompt_tokens", "completion_tokens")
    )


def test_a_usd_budget_needs_the_models_price() -> None:
    with pytest.raises(ConfigError, match=r"--budget-usd needs every role's price: no price"):
        PairsOptions(model=MODEL, spending=SpendSettings(budget=RunBudget(usd=1.0)))


def test_the_pairs_command_prices_caches_and_stops_at_a_budget(tmp_path: Path) -> None:
    write_problems(tmp_path / "p.jsonl")
    (tmp_path / "prices.json").write_text(
        json.dumps({"test_pairs_cache_cost:drawing_answer": {"in": 1, "out": 2}})
    )
    args = ["pairs", "--model", MODEL, "--dataset", str(tmp_path / "p.jsonl"),
            "--out", str(tmp_path / "pairs.jsonl"), "--samples", "4",
            "--prices", str(tmp_path / "prices.json"), "--no-progress"]  # fmt: skip
    runner = CliRunner()
    cut = runner.invoke(app, [*args, "--budget-tokens", "1", "--batch-size", "1"],
                        env={"COLUMNS": "200"})  # fmt: skip
    assert cut.exit_code == 0, cut.output
    assert "stopped: budget: 1 tokens spent" in " ".join(cut.stderr.split())
    assert "3 not sampled yet (budget spent)" in cut.stdout and "cache · model" in cut.stdout
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    card = json.loads(done.stdout)
    assert card["problems_sampled"] == 3 and card["stopped"] is None
    spent = card["spend"]["model"]
    assert spent["price"] == {"in": 1.0, "out": 2.0, "source": "prices file"}
    assert spent["usd"] == pytest.approx(
        (spent["prompt_tokens"] + 2 * spent["completion_tokens"]) / 1e6
    )
    assert card["paid_usd"] > card["cost_usd"] > 0  # two invocations paid
