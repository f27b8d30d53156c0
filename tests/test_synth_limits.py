"""Per-role request limits: `ConcurrencyLimitedClient`, the runner's role wrappers, the flags.

A slow fake endpoint counts the requests inside it at every moment; the limits are
proven by the highest count it ever saw, with many more sessions than the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import LLMMessage, SystemMessage, UserMessage
from test_runner import (
    CRITIC_SPEC,
    POLICY_SPEC,
    dataset,
    fake_critic,
    fake_policy,
    logs,
    options,
    synthesise,
)
from typer.testing import CliRunner

from journey.agents.backends import (
    ConcurrencyLimitedClient,
    FunctionChatCompletionClient,
    can_score_labels,
    limit_requests,
)
from journey.cli import app
from journey.errors import ConfigError
from journey.runs import SynthesisOptions, SynthesisRunner


class Gauge:
    """Requests inside an endpoint now, and the most there ever were at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.total = 0

    async def hold(self, seconds: float = 0.01) -> None:
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(seconds)
        self.now -= 1


def is_critic(messages: Sequence[LLMMessage]) -> bool:
    return isinstance(messages[0], SystemMessage) and "math teacher" in str(messages[0].content)


class SlowScorer(FunctionChatCompletionClient):
    """A fake endpoint whose label scoring takes time too, so its concurrency shows."""

    def __init__(self, gauge: Gauge) -> None:
        async def reply(messages: Sequence[LLMMessage]) -> str:
            await gauge.hold()
            return "ok"

        super().__init__(reply, label_scores=lambda m, labels: dict.fromkeys(labels, 0.0))
        self.gauge = gauge

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        await self.gauge.hold()
        return await super().score_labels(messages, labels, prefix=prefix)


ASK = [UserMessage(content="hi", source="user")]

# -- the wrapper -----------------------------------------------------------------------------


async def test_no_more_than_the_limit_of_creates_reach_the_client() -> None:
    gauge = Gauge()
    client = ConcurrencyLimitedClient(SlowScorer(gauge), 2)
    results = await asyncio.gather(*(client.create(ASK) for _ in range(8)))
    assert [r.content for r in results] == ["ok"] * 8
    assert (gauge.peak, gauge.total) == (2, 8)


async def test_streams_and_label_scoring_count_as_requests_too() -> None:
    gauge = Gauge()
    client = ConcurrencyLimitedClient(SlowScorer(gauge), 3)

    async def stream() -> list[Any]:
        return [chunk async for chunk in client.create_stream(ASK)]

    async def score() -> dict[str, float]:
        return await client.score_labels(ASK, ["a", "b"])

    done = await asyncio.gather(*(stream() for _ in range(5)), *(score() for _ in range(5)))
    assert done[0][0] == "ok" and done[-1] == {"a": 0.0, "b": 0.0}
    assert (gauge.peak, gauge.total) == (3, 10)


async def test_everything_else_is_the_inner_clients() -> None:
    inner = SlowScorer(Gauge())
    client = ConcurrencyLimitedClient(inner, 1)
    assert (client.inner, client.limit) == (inner, 1)
    assert can_score_labels(client) and client.model_info == inner.model_info
    assert client.count_tokens(ASK) == inner.count_tokens(ASK) == 1
    await client.create(ASK)
    assert client.total_usage() == inner.total_usage() and client.actual_usage().prompt_tokens == 1
    assert client.requests is inner.requests  # a backend's own attributes reach through
    assert getattr(client, "load", None) is None  # ...and missing ones stay missing
    plain = ConcurrencyLimitedClient(FunctionChatCompletionClient(lambda m: "x"), 1)
    assert not can_score_labels(plain)
    with pytest.raises(ValueError, match="cannot score labels"):
        await ConcurrencyLimitedClient(Gauge(), 1).score_labels(ASK, ["a"])  # type: ignore[arg-type]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="a request limit must be at least 1, got 0"):
        ConcurrencyLimitedClient(FunctionChatCompletionClient(lambda m: "x"), 0)


def test_only_roles_with_a_limit_are_wrapped_each_in_its_own_wrapper() -> None:
    shared = FunctionChatCompletionClient(lambda m: "x")
    wrapped = limit_requests({"policy": shared, "critic": shared}, {"policy": 2, "critic": 1})
    assert wrapped["policy"] is not wrapped["critic"]
    assert [(c.inner, c.limit) for c in wrapped.values()] == [(shared, 2), (shared, 1)]  # type: ignore[attr-defined]
    assert limit_requests({"policy": shared}, {"policy": None}) == {"policy": shared}


# -- in the runner ---------------------------------------------------------------------------


def run_with_gauges(
    out: Path, problems: Any, *, shared: bool = False, **limits: int | None
) -> tuple[Gauge, Gauge, Gauge]:
    """Run with slow fake models; returns the policy, critic and whole-endpoint gauges."""
    policy_gauge, critic_gauge, endpoint = Gauge(), Gauge(), Gauge()

    async def reply(messages: Sequence[LLMMessage]) -> str:
        critic = is_critic(messages)
        role = critic_gauge if critic else policy_gauge
        role.now, role.total = role.now + 1, role.total + 1
        role.peak = max(role.peak, role.now)
        await endpoint.hold(0.04 if critic else 0.01)  # a slow critic: its requests pile up
        role.now -= 1
        return fake_critic(messages) if critic else fake_policy(messages)

    one = FunctionChatCompletionClient(reply)
    clients = {"policy": one, "critic": one if shared else FunctionChatCompletionClient(reply)}
    runner = SynthesisRunner(options(concurrency=8, **limits), clients=clients)
    report = asyncio.run(runner.run(out, problems))
    assert report.solved == len(problems)
    return policy_gauge, critic_gauge, endpoint


def test_the_policy_limit_holds_across_many_sessions(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 8)
    policy, critic, _ = run_with_gauges(tmp_path / "run", problems, policy_concurrency=2)
    assert policy.peak == 2 and policy.total >= 16
    assert critic.peak > 2  # the critic has no limit: only the 8 sessions bound it


def test_without_limits_only_sessions_bound_the_requests(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 8)
    policy, _, _ = run_with_gauges(tmp_path / "run", problems)
    assert policy.peak == 8


def test_roles_on_one_shared_client_each_keep_their_own_limit(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 8)
    policy, critic, endpoint = run_with_gauges(
        tmp_path / "run", problems, shared=True, policy_concurrency=2, critic_concurrency=1
    )
    assert (policy.peak, critic.peak) == (2, 1)
    assert endpoint.peak <= 3  # the shared model sees at most the sum


def test_limits_do_not_change_what_sessions_say(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect", "backtrack", "stuck"] * 2)
    synthesise(tmp_path / "free", problems, concurrency=8)
    synthesise(
        tmp_path / "tight", problems, concurrency=8, policy_concurrency=1, critic_concurrency=2
    )
    assert logs(tmp_path / "free") == logs(tmp_path / "tight")


def test_run_json_records_the_limits_and_a_resume_may_change_them(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "stuck"])
    synthesise(tmp_path / "run", problems[:1], policy_concurrency=2)
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert (meta["policy_concurrency"], meta["critic_concurrency"]) == (2, None)
    report = synthesise(tmp_path / "run", problems, policy_concurrency=1, critic_concurrency=3)
    assert (report.skipped, report.ran) == (1, 1)
    [resumed] = json.loads((tmp_path / "run/run.json").read_text())["resumed"]
    assert "forced" not in resumed
    assert (resumed["policy_concurrency"], resumed["critic_concurrency"]) == (1, 3)


@pytest.mark.parametrize("role", ["policy", "critic"])
def test_limits_below_one_are_refused_in_the_options(role: str) -> None:
    with pytest.raises(ConfigError, match=f"^{role} concurrency must be at least 1, got 0$"):
        SynthesisOptions(**{f"{role}_concurrency": 0})


# -- the flags -------------------------------------------------------------------------------

cli = CliRunner()


def test_the_flags_reach_run_json(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain", "reflect", "stuck"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--max-turns", "4", "--policy-concurrency", "2", "--critic-concurrency", "1",
            "--no-progress", "--json"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert (meta["concurrency"], meta["policy_concurrency"], meta["critic_concurrency"]) == (
        8,
        2,
        1,
    )


def test_the_flags_default_to_no_limit_and_show_in_help(tmp_path: Path) -> None:
    result = cli.invoke(app, ["synth", "--help"])
    assert "--policy-concurrency" in result.output and "--critic-concurrency" in result.output
    dataset(tmp_path / "d.jsonl", ["plain"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--no-progress", "--json"]  # fmt: skip
    assert cli.invoke(app, args).exit_code == 0
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert (meta["policy_concurrency"], meta["critic_concurrency"]) == (None, None)


@pytest.mark.parametrize(
    ("flag", "value"), [("--policy-concurrency", "0"), ("--critic-concurrency", "-1")]
)
def test_bad_flag_values_are_user_errors(tmp_path: Path, flag: str, value: str) -> None:
    dataset(tmp_path / "d.jsonl", ["plain"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            flag, value]  # fmt: skip
    result = cli.invoke(app, args)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == f"{flag[2:].replace('-', ' ')} must be at least 1, got {value}"
    assert not (tmp_path / "run").exists()
    result = cli.invoke(app, [*args[:-1], "two"])
    assert result.exit_code == 2  # typer's usage error: not an integer
