"""Prices and costs: where a price comes from, what a usage costs, and the cost of a run
per role, per action, per solved session and paid, in the report and `journey stats`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_runner import dataset, options
from typer.testing import CliRunner

from journey.cli import app
from journey.errors import ConfigError, ModelSpecError
from journey.protocols import (
    ActionApplied,
    CriticVerdictGiven,
    PolicyStepProposed,
    Role,
    TokenUsage,
)
from journey.runs import RunDirectory, SynthesisReport, SynthesisRunner, read_event_log
from journey.runs.prices import ModelPrice, PriceTable, builtin_prices, load_prices, total_cost
from journey.runs.response_cache import CacheSettings
from journey.runs.stats import read_run, run_stats
from journey.runs.synthesis import SynthesisOptions

POLICY = "function:test_runner:fake_policy?price_in=1&price_out=2"
CRITIC = "function:test_runner:fake_critic"
CRITIC_PRICE = ModelPrice(0.5, 1.5, "prices file")
"""The critic's price, from a prices file (its spec has none)."""
MILLION = 1_000_000


def usd(usage: TokenUsage, price_in: float, price_out: float) -> float:
    return (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / MILLION


# -- prices ----------------------------------------------------------------------------------


def test_the_builtin_table_is_dated_and_prices_per_million_tokens() -> None:
    date, table = builtin_prices()
    assert date == "2025-06-01"
    assert table["gpt-4o-mini"] == ModelPrice(0.15, 0.60)
    assert table["gpt-4o"] == ModelPrice(2.50, 10.00)
    assert table["o1"] == ModelPrice(15.00, 60.00)
    assert table["o3-mini"] == table["o4-mini"] == ModelPrice(1.10, 4.40)
    role = PriceTable().for_role("policy", "openai:gpt-4o-mini")
    assert role.price is not None and role.price.source == "journey's table (2025-06-01)"
    used = TokenUsage(prompt_tokens=2_000_000, completion_tokens=500_000)
    assert role.cost(used) == pytest.approx(2 * 0.15 + 0.5 * 0.60)  # $0.60


def test_a_spec_option_wins_over_a_prices_file_which_wins_over_the_table(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("gpt-4o-mini: {in: 0.1, out: 0.2}\n")
    (tmp_path / "p.json").write_text(json.dumps({"my-model": {"in": 3, "out": 4}}))
    table = PriceTable({**load_prices(tmp_path / "p.yaml"), **load_prices(tmp_path / "p.json")})
    mini = table.for_role("critic", "openai:gpt-4o-mini?price_out=0.9").price
    assert mini == ModelPrice(0.1, 0.9)
    assert mini is not None and mini.source == "prices file + spec"
    assert table.for_role("policy", "openai:my-model@http://h:1/v1").price == ModelPrice(3, 4)
    # One endpoint of several with another price: the role has none.
    mixed = "openai:my-model@http://a:1/v1,openai:my-model@http://b:1/v1?price_in=9"
    assert table.for_role("policy", mixed).missing == "the policy's endpoints have different prices"


def test_an_unknown_price_is_unknown_never_zero() -> None:
    role = PriceTable().for_role("critic", "openai:some-local-model@http://h:1/v1")
    assert role.price is None and role.cost(TokenUsage(prompt_tokens=5)) is None
    assert role.missing == (
        "no price for the critic (some-local-model): give its spec price_in and price_out, "
        "or --prices FILE"
    )
    assert total_cost([0.25, None]) is None and total_cost([0.25, 0.5]) == 0.75


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("gpt-4o: {in: cheap, out: 1}", "'gpt-4o' 'in' must be a number of USD per million"),
        ("gpt-4o: {in: 1}", "'gpt-4o' must have exactly 'in' and 'out'"),
        ("- gpt-4o", "must map model names to {in: X, out: Y}"),
        ("gpt-4o: {in: -1, out: 1}", "got -1"),
    ],
)
def test_a_bad_prices_file_is_refused_quoting_the_value(
    tmp_path: Path, text: str, error: str
) -> None:
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match=error.replace("{", r"\{").replace("}", r"\}")):
        load_prices(tmp_path / "p.yaml")


def test_price_options_are_checked_and_are_no_part_of_the_client() -> None:
    from journey.agents.backends.reply_identity import reply_identity
    from journey.agents.backends.spec import client_spec, parse_model_spec

    with pytest.raises(ModelSpecError, match=r"price_in=-1\.0.*at least 0"):
        parse_model_spec("openai:gpt-4o?price_in=-1")
    priced = parse_model_spec("openai:gpt-4o?price_in=2&price_out=8&temperature=0.5")
    assert client_spec(priced).options == {"temperature": 0.5}
    assert reply_identity(priced) == reply_identity(
        parse_model_spec("openai:gpt-4o?temperature=0.5")
    )


# -- a run's cost ------------------------------------------------------------------------------


def synthesise(out: Path, kinds: tuple[str, ...], **kw: Any) -> SynthesisReport:
    problems = dataset(out.parent / f"{out.name}.jsonl", kinds)
    settings = options(
        policy=POLICY, critic=CRITIC, prices={"test_runner:fake_critic": CRITIC_PRICE}, **kw
    )
    return asyncio.run(SynthesisRunner(settings).run(out, problems))


def role_usage(run: Path) -> dict[Role, TokenUsage]:
    total: dict[Role, TokenUsage] = {}
    for summary in RunDirectory(run).summaries():
        for role, used in summary.usage.items():
            total[role] = total.get(role, TokenUsage()) + used
    return total


def test_the_report_prices_what_reached_each_model(tmp_path: Path) -> None:
    report = synthesise(tmp_path / "run", ("plain", "reflect"))
    used = role_usage(tmp_path / "run")
    policy = usd(used[Role.POLICY], 1, 2)
    critic = usd(used[Role.CRITIC], 0.5, 1.5)
    assert report.spend["policy"] == {
        "prompt_tokens": used[Role.POLICY].prompt_tokens,
        "completion_tokens": used[Role.POLICY].completion_tokens,
        "usd": pytest.approx(policy),
        "price": {"in": 1.0, "out": 2.0, "source": "spec"},
    }
    assert report.spend["critic"]["usd"] == pytest.approx(critic)
    assert report.spend["critic"]["price"]["source"] == "prices file"
    assert report.cost_usd == pytest.approx(policy + critic) and report.stopped is None
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["prices"]
    assert recorded == {"test_runner:fake_critic": {"in": 0.5, "out": 1.5}}


def test_stats_splits_the_cost_by_action_and_per_solved_session(tmp_path: Path) -> None:
    run = tmp_path / "run"
    synthesise(run, ("reflect",))
    [summary] = RunDirectory(run).summaries()
    events = read_event_log(run / "sessions" / summary.session_id / "events.jsonl").events
    # Step 1 continued, step 2 ("oops") reflected, its rewrite a final answer the verifier took.
    acted = {e.node_id: e for e in events if isinstance(e, ActionApplied)}
    assert [(acted[n].action.action, acted[n].source) for n in sorted(acted)] == [
        ("continue", Role.CRITIC),
        ("reflect", Role.CRITIC),
        ("terminate", Role.VERIFIER),
    ]

    def node_cost(node: int) -> float:
        cost = 0.0
        for e in events:
            if isinstance(e, PolicyStepProposed) and e.node_id == node:
                cost += usd(e.usage, 1, 2)
            if isinstance(e, CriticVerdictGiven) and e.node_id == node:
                cost += usd(e.usage, 0.5, 1.5)
        return cost

    cost = run_stats(read_run(run)).cost
    assert cost is not None and cost.missing == []
    assert cost.actions == {
        "continue": pytest.approx(node_cost(1)),
        "reflect": pytest.approx(node_cost(2)),
        "backtrack": 0.0,
        "terminate": 0.0,
        "verifier": pytest.approx(node_cost(3)),
        "other": 0.0,
    }
    used = role_usage(run)
    total = usd(used[Role.POLICY], 1, 2) + usd(used[Role.CRITIC], 0.5, 1.5)
    assert sum(v for v in cost.actions.values() if v is not None) == pytest.approx(total)
    assert cost.total == pytest.approx(total) and cost.per_solved == pytest.approx(total / 1)
    assert cost.paid == {"policy": pytest.approx(usd(used[Role.POLICY], 1, 2)),
                         "critic": pytest.approx(usd(used[Role.CRITIC], 0.5, 1.5))}  # fmt: skip


def test_a_warm_cache_rerun_costs_the_same_sessions_but_pays_nothing(tmp_path: Path) -> None:
    shared = CacheSettings(directory=tmp_path / "cache")
    first = synthesise(tmp_path / "first", ("plain", "reflect"), cache=shared)
    second = synthesise(tmp_path / "second", ("plain", "reflect"), cache=shared)
    assert first.cost_usd is not None and first.cost_usd > 0
    assert second.cost_usd == 0.0 and second.spend["policy"]["prompt_tokens"] == 0
    cost = run_stats(read_run(tmp_path / "second")).cost
    assert cost is not None and cost.total == pytest.approx(first.cost_usd)
    assert cost.paid_total == 0.0


def test_stats_shows_costs_and_names_the_role_without_a_price(tmp_path: Path) -> None:
    run = tmp_path / "run"
    problems = dataset(tmp_path / "d.jsonl", ("plain",))
    settings = options(policy=POLICY, critic=CRITIC)  # no price for the critic
    report = asyncio.run(SynthesisRunner(settings).run(run, problems))
    assert report.cost_usd is None and report.spend["critic"]["usd"] is None
    table = CliRunner().invoke(app, ["stats", str(run)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    lines = {" ".join(line.split()[:-1]): line.split()[-1] for line in table.stdout.splitlines()}
    policy = usd(role_usage(run)[Role.POLICY], 1, 2)
    assert lines["cost · policy"] == f"${policy:.4f}"
    assert lines["cost · critic"] == "—" and lines["cost · all roles"] == "—"
    assert "no price for the critic (test_runner:fake_critic)" in " ".join(table.stdout.split())
    # The same run priced afterwards: the prices given to stats.
    (tmp_path / "p.yaml").write_text("test_runner:fake_critic: {in: 0.5, out: 1.5}\n")
    priced = CliRunner().invoke(
        app, ["stats", str(run), "--prices", str(tmp_path / "p.yaml"), "--json"]
    )
    cost = json.loads(priced.stdout)["cost"]
    critic = usd(role_usage(run)[Role.CRITIC], 0.5, 1.5)
    assert cost["total"] == pytest.approx(policy + critic) and cost["missing"] == []


def test_the_synth_command_takes_prices(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ("plain",))
    (tmp_path / "p.json").write_text(
        json.dumps({"test_runner:fake_critic": {"in": 0.5, "out": 1.5}})
    )
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY, "--critic", CRITIC, "--critic-mode", "generate",
            "--prices", str(tmp_path / "p.json"), "--no-progress", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    used = role_usage(tmp_path / "run")
    expected = usd(used[Role.POLICY], 1, 2) + usd(used[Role.CRITIC], 0.5, 1.5)
    assert report["cost_usd"] == pytest.approx(expected)
    wrong = CliRunner().invoke(app, [*args[:-4], "--prices", str(tmp_path / "none.yaml")])
    assert wrong.exit_code != 0 and "cannot read prices file" in str(wrong.exception)


def test_options_record_prices_only_when_given() -> None:
    assert "prices" not in SynthesisOptions().record()
    assert "budget" not in SynthesisOptions().record()
