"""The synthesis runner: many sessions at once, failures contained, exact reports.

The fake models answer from the messages alone (the problem and the step asked
for), never from a call counter, so how sessions interleave cannot change what
they say. `fake_policy` / `fake_critic` are also reachable as model specs
(`function:test_runner:fake_policy`), which the resume tests run in a subprocess.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import AssistantMessage, LLMMessage
from filelock import FileLock
from rich.console import Console
from typer.testing import CliRunner

from journey.agents import step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError
from journey.problems import ProblemRecord, load_problems
from journey.protocols import Role, SessionEnded, StopReason
from journey.runs import (
    RunDirectory,
    SynthesisOptions,
    SynthesisReport,
    SynthesisRunner,
    read_event_log,
)
from journey.sessions import SessionLimits
from journey.view.progress import synthesis_progress
from journey.view.reports import render_synthesis_report

POLICY_SPEC = "function:test_runner:fake_policy"
CRITIC_SPEC = "function:test_runner:fake_critic"
OK = "VERDICT: correct\nACTION: continue\nREASON: The step is right."

# -- deterministic fake models ---------------------------------------------------------------

KINDS = ("plain", "reflect", "backtrack", "wrongfinal", "stuck", "explode")
"""plain: two steps; reflect: the critic rejects step 2 once; backtrack: the critic sends
step 3 back to step 1; wrongfinal: the verifier rejects the first answer; stuck: never
right (runs out of turns); explode: the policy's backend raises."""

_PROBLEM = re.compile(r"Problem (\d+) \((\w+)\)")
DELAY = 0.0
"""Seconds each fake reply waits (the kill test raises it, through `slow_policy`)."""


def problem_text(k: int, kind: str) -> str:
    return f"Problem {k} ({kind}): what is {k} + {k}?"


def _asked(messages: Sequence[LLMMessage]) -> tuple[int, str, int, int]:
    """(problem number, kind, step asked for, earlier attempts at that step)."""
    start = max(i for i, m in enumerate(messages) if str(m.content).startswith("Problem:"))
    k, kind = _PROBLEM.search(str(messages[start].content)).groups()  # type: ignore[union-attr]
    step = int(re.findall(r"Step (\d+)", str(messages[-1].content))[-1])
    tries = sum(
        isinstance(m, AssistantMessage) and str(m.content).startswith(f"Step {step}:")
        for m in messages[start:]
    )
    return int(k), kind, step, tries


def fake_policy(messages: Sequence[LLMMessage]) -> str:
    k, kind, n, tries = _asked(messages)
    final = f"Step {n}: {k} + {k} = {2 * k}, so the answer is \\boxed{{{2 * k}}}."
    if kind == "explode":
        raise RuntimeError(f"backend exploded on problem {k}")
    if kind == "stuck":
        return f"Step {n}: Guess number {tries} gives \\boxed{{{900 + tries}}}."
    if n == 1:
        return f"Step 1: We add {k} and {k}."
    if kind == "reflect" and n == 2 and tries == 0:
        return f"Step 2: {k} + {k} = {2 * k + 1}, oops."
    if kind == "backtrack" and tries == 0 and n in (2, 3):
        return f"Step 2: Double {k} wrongly." if n == 2 else f"Step 3: That is {2 * k + 2}, late."
    if kind == "wrongfinal" and n == 2 and tries == 0:
        return f"Step 2: So the answer is \\boxed{{{2 * k + 1}}}."
    return final


def fake_critic(messages: Sequence[LLMMessage]) -> str:
    newest = step_under_judgement(messages)
    if "oops" in newest:
        return "VERDICT: incorrect\nACTION: reflect\nREASON: The sum is wrong."
    if "late" in newest:
        return "VERDICT: incorrect\nACTION: backtrack 1\nREASON: Step 2 went wrong."
    return OK


async def slow_policy(messages: Sequence[LLMMessage]) -> str:
    await asyncio.sleep(0.03)
    return fake_policy(messages)


async def slow_critic(messages: Sequence[LLMMessage]) -> str:
    await asyncio.sleep(0.03)
    return fake_critic(messages)


# -- helpers ---------------------------------------------------------------------------------


def dataset(path: Path, kinds: Sequence[str]) -> list[ProblemRecord]:
    lines = [
        json.dumps({"problem": problem_text(k, kind), "answer": str(2 * k), "level": k})
        for k, kind in enumerate(kinds, 1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_problems(path).records


def options(concurrency: int = 4, max_turns: int = 6, **overrides: Any) -> SynthesisOptions:
    settings: dict[str, Any] = {
        "policy": POLICY_SPEC,
        "critic": CRITIC_SPEC,
        "critic_mode": "generate",
        "concurrency": concurrency,
        "limits": SessionLimits(max_turns=max_turns),
    }
    return SynthesisOptions(**(settings | overrides))


def synthesise(
    out: Path, problems: Sequence[ProblemRecord], *, console: Console | None = None, **kw: Any
) -> SynthesisReport:
    force = kw.pop("force", False)
    runner = SynthesisRunner(
        options(**kw),
        progress=synthesis_progress(console or Console(file=io.StringIO())),
        force=force,
    )
    return asyncio.run(runner.run(out, problems))


def comparable(event: Any) -> dict[str, Any]:
    """An event without what depends on the clock."""
    data = event.model_dump(mode="json")
    data.pop("time")
    data.pop("latency", None)
    return data


def logs(run: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for folder in sorted((run / "sessions").iterdir()):
        log = read_event_log(folder / "events.jsonl")
        assert not log.truncated and not log.bad_lines
        out[folder.name] = [comparable(e) for e in log.events]
    return out


# -- tests -----------------------------------------------------------------------------------


def test_every_problem_gets_one_finished_session_and_exact_report(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", KINDS)
    report = synthesise(tmp_path / "run", problems, concurrency=3)
    run = RunDirectory(tmp_path / "run")
    summaries = {s.session_id: s for s in run.summaries()}
    assert sorted(summaries) == sorted(p.session_id for p in problems)
    assert len(run.summaries()) == len(problems)
    outcome = {p.problem.split("(")[1].split(")")[0]: summaries[p.session_id] for p in problems}
    assert {kind: s.outcome for kind, s in outcome.items()} == {
        "plain": "solved",
        "reflect": "solved",
        "backtrack": "solved",
        "wrongfinal": "solved",
        "stuck": "failed",
        "explode": "error",
    }
    assert outcome["reflect"].reflections == 1 and outcome["backtrack"].backtracks == 1
    assert outcome["stuck"].stop_reason == "max_turns" and outcome["stuck"].turns == 6
    generated = sum(u.completion_tokens for s in summaries.values() for u in s.usage.values())
    prompt = sum(u.prompt_tokens for s in summaries.values() for u in s.usage.values())
    # Every request reached a model (a cold cache); the one that raised has no usage.
    spend = {
        role.value: {
            "prompt_tokens": sum(s.usage[role].prompt_tokens for s in summaries.values()),
            "completion_tokens": sum(s.usage[role].completion_tokens for s in summaries.values()),
            "usd": None,
            "price": None,
            "missing": f"no price for the {role.value} (test_runner:fake_{role.value}): give "
            "its spec price_in and price_out, or --prices FILE",
        }
        for role in (Role.POLICY, Role.CRITIC)
    }
    assert report.model_dump(exclude={"wall_time", "tokens_per_second", "cache"}) == {
        "run_dir": str(tmp_path / "run"),
        "strategy": "debate",
        "sessions": 6,
        "skipped": 0,
        "resumed": 0,
        "reindexed": 0,
        "restarted": 0,
        "retried": 0,
        "ran": 6,
        "crashed": 0,
        "solved": 4,
        "unverified": 0,
        "failed": 1,
        "errors": 1,
        "generated_tokens": generated,
        "prompt_tokens": prompt,
        "dataset_issues": 0,
        "retries": 0,  # scripted clients never retry; the flaky-server test counts real ones
        "retries_by_cause": {},
        "endpoints": {},
        "spend": spend,
        "cost_usd": None,
        "stopped": None,
        "problems": [],
        "finished": 6,
        "yield_rate": 4 / 5,  # the model_error session is not in the yield
    }
    assert report.wall_time > 0 and report.tokens_per_second == generated / report.wall_time
    # A cold cache: every request a miss, every answer stored but the one that raised.
    events = [e for log in logs(tmp_path / "run").values() for e in log]
    steps = sum(e["type"] == "policy_step" for e in events)
    verdicts = sum(e["type"] == "critic_verdict" for e in events)
    nothing_saved = {"hits": 0, "prompt_tokens_saved": 0, "completion_tokens_saved": 0}
    assert report.cache == {
        "policy": {**nothing_saved, "misses": steps + 1, "stored": steps},
        "critic": {**nothing_saved, "misses": verdicts, "stored": verdicts},
    }
    # The record's extra fields travel with the session.
    posed = read_event_log(run.session_dir(problems[0].session_id) / "events.jsonl").events[0]
    assert posed.config["index"] == 0 and posed.config["meta"] == {"level": 1}  # type: ignore[union-attr]


def test_a_backend_that_raises_ends_only_its_own_session(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["explode", "plain", "explode", "plain"])
    report = synthesise(tmp_path / "run", problems, concurrency=4)
    assert (report.ran, report.solved, report.errors, report.crashed) == (4, 2, 2, 0)
    for problem in problems[::2]:
        ended = read_event_log(tmp_path / "run/sessions" / problem.session_id / "events.jsonl")
        last = ended.events[-1]
        assert isinstance(last, SessionEnded) and last.stop_reason is StopReason.MODEL_ERROR
        assert last.error == f"RuntimeError: backend exploded on problem {problem.index + 1}"


def test_results_do_not_depend_on_concurrency(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", KINDS * 2)
    synthesise(tmp_path / "one", problems, concurrency=1)
    synthesise(tmp_path / "many", problems, concurrency=12)
    assert logs(tmp_path / "one") == logs(tmp_path / "many")


def test_sessions_really_run_at_once_up_to_the_limit(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"] * 8)
    in_flight, peak = 0, 0

    async def policy(messages: Sequence[LLMMessage]) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return fake_policy(messages)

    clients = {
        "policy": FunctionChatCompletionClient(policy),
        "critic": FunctionChatCompletionClient(fake_critic),
    }
    runner = SynthesisRunner(options(concurrency=3), clients=clients)
    report = asyncio.run(runner.run(tmp_path / "run", problems))
    assert report.solved == 8 and peak == 3


def test_an_unexpected_failure_in_one_session_is_reported_and_the_rest_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect", "wrongfinal"])
    real_save = RunDirectory.save
    victim = problems[1].session_id

    def save(self: RunDirectory, result: Any) -> Any:
        if result.session_id == victim:
            raise OSError("disk full")
        return real_save(self, result)

    monkeypatch.setattr(RunDirectory, "save", save)
    report = synthesise(tmp_path / "run", problems)
    assert (report.ran, report.crashed, report.solved) == (2, 1, 2)
    assert report.problems == [f"{victim}: OSError: disk full"]
    assert "crashed" in _render(report)
    # Its log ended, unindexed: the next run indexes it without running it again.
    monkeypatch.setattr(RunDirectory, "save", real_save)
    again = synthesise(tmp_path / "run", problems)
    assert (again.skipped, again.reindexed, again.ran, again.solved) == (2, 1, 0, 3)
    assert [s.session_id for s in RunDirectory(tmp_path / "run").summaries()].count(victim) == 1


def _render(report: SynthesisReport) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(render_synthesis_report(report))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_summary_table_shows_the_numbers() -> None:
    report = SynthesisReport(
        run_dir="runs/x",
        strategy="debate",
        sessions=10,
        skipped=2,
        resumed=1,
        ran=8,
        solved=6,
        failed=3,
        errors=1,
        generated_tokens=12000,
        prompt_tokens=50000,
        wall_time=60.0,
    )
    text = _render(report)
    for expected in [
        "10/10 finished (8 ran now, 1 resumed, 2 already done)",
        "66.7% (6/9) · 1 error",
        "12,000 generated · 50,000 prompt",
        "60.0s",
        "200.0",
    ]:
        assert expected in text, text
    assert "│ errors    │ 1" in text and "│ failed    │ 3" in text and "│ solved    │ 6" in text


@pytest.mark.parametrize(
    ("terminal", "flag", "shown"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_progress_bar_only_on_a_terminal_and_when_asked(
    tmp_path: Path, terminal: bool, flag: bool, shown: bool
) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain", "reflect"])
    console = Console(file=io.StringIO(), force_terminal=terminal, width=120)
    runner = SynthesisRunner(options(), progress=synthesis_progress(console, enabled=flag))
    asyncio.run(runner.run(tmp_path / "run", problems))
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert ("2/2" in output and "yield 2/2" in output and "tok/s" in output) is shown
    if not shown:
        assert output == ""


def test_run_json_records_the_options_and_other_models_are_refused(tmp_path: Path) -> None:
    problems = dataset(tmp_path / "d.jsonl", ["plain"])
    synthesise(tmp_path / "run", problems)
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert meta["command"] == "synth" and meta["strategy"] == "debate"
    assert meta["models"] == {"policy": POLICY_SPEC, "critic": CRITIC_SPEC}
    assert meta["critic_mode"] == "generate" and meta["limits"]["max_turns"] == 6
    with pytest.raises(ConfigError) as refused:
        synthesise(tmp_path / "run", problems, critic_mode="auto")
    assert "critic mode 'generate' (now 'auto')" in str(refused.value)
    other = SynthesisOptions(policy=CRITIC_SPEC, critic=CRITIC_SPEC, critic_mode="generate")
    with pytest.raises(ConfigError, match=f"policy '{POLICY_SPEC}' \\(now '{CRITIC_SPEC}'\\)"):
        asyncio.run(SynthesisRunner(other).run(tmp_path / "run", problems))
    # Forced, it goes on, and run.json says so.
    report = synthesise(tmp_path / "run", problems, critic_mode="auto", force=True)
    assert report.skipped == 1
    resumed = json.loads((tmp_path / "run/run.json").read_text())["resumed"]
    assert len(resumed) == 1 and "critic mode" in resumed[0]["forced"][0]


def test_a_debate_run_directory_is_not_resumed_as_a_synthesis(tmp_path: Path) -> None:
    RunDirectory(tmp_path / "run", meta={"command": "debate"})
    with pytest.raises(ConfigError, match="'journey debate', not 'journey synth'"):
        synthesise(tmp_path / "run", dataset(tmp_path / "d.jsonl", ["plain"]))


def test_a_run_directory_in_use_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with FileLock(str(tmp_path / "run/.synth.lock")), pytest.raises(ConfigError, match="in use"):
        synthesise(tmp_path / "run", dataset(tmp_path / "d.jsonl", ["plain"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"strategy": "best-of-n"}, "unknown strategy 'best-of-n'; choose one of debate"),
        (
            {"strategy": "mcts"},
            "unknown strategy 'mcts'; choose one of debate, propose-critique, beam",
        ),
        ({"concurrency": 0}, "concurrency must be at least 1, got 0"),
        ({"critic_mode": "vote"}, "critic mode 'vote' is not one of auto, generate, score"),
        (
            {"strategy": "beam", "strategy_config": {"beam_width": 0}},
            "beam width must be an integer of at least 1, got 0",
        ),
        # Each strategy takes only its own settings (an iterate recipe's as well).
        (
            {"strategy_config": {"beam_width": 2}},
            "--beam-width only applies to --strategy beam, not 'debate'",
        ),
        (
            {"strategy": "beam", "strategy_config": {"policy_context": "path", "colour": 1}},
            "--policy-context only applies to --strategy debate or propose-critique, "
            "not 'beam'; --colour: no strategy takes it",
        ),
    ],
)
def test_options_are_validated(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SynthesisOptions(**overrides)
    assert str(raised.value).startswith(message)


# -- the command -----------------------------------------------------------------------------

cli = CliRunner()


def test_synth_help_has_an_example() -> None:
    result = cli.invoke(app, ["synth", "--help"])
    assert result.exit_code == 0 and "journey synth --dataset" in result.output
    assert "--shard" in result.output and "--no-progress" in result.output


def test_synth_command_runs_and_resumes(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain", "stuck", "reflect", "explode"])
    with (tmp_path / "d.jsonl").open("a") as file:
        file.write("{not json\n")
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--max-turns", "5", "--concurrency", "2", "--no-progress"]  # fmt: skip
    result = cli.invoke(app, [*args, "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'd.jsonl'}:5: not valid JSON" in result.output
    assert "66.7% (2/3)" in result.output
    result = cli.invoke(app, [*args, "--json"])
    report = json.loads(result.output[result.output.index("{") :])
    assert (report["skipped"], report["ran"], report["errors"], report["dataset_issues"]) == (
        3,
        1,
        1,
        1,
    )
    assert len(RunDirectory(tmp_path / "run").summaries()) == 4
    result = cli.invoke(app, [*args, "--shard", "1/2", "--json"])
    assert json.loads(result.output[result.output.index("{") :])["sessions"] == 2


def test_synth_user_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    dataset(tmp_path / "d.jsonl", ["plain"])
    base = [sys.executable, "-m", "journey", "synth", "--dataset", str(tmp_path / "d.jsonl"),
            "--out", str(tmp_path / "run")]  # fmt: skip
    for extra, message in [
        (["--strategy", "mcts"], "unknown strategy 'mcts'"),
        (["--shard", "3/2"], "shard 3/2 does not exist"),
        (["--dataset", str(tmp_path / "none.jsonl")], "does not exist"),
    ]:
        done = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and message in lines[0], done.stderr


def test_beam_settings_reach_run_json_and_every_session(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain", "plain"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--policy", POLICY_SPEC, "--critic", CRITIC_SPEC, "--critic-mode", "generate",
            "--strategy", "beam", "--beam-width", "2", "--beam-size", "1",
            "--beam-temperature", "0.5", "--no-progress"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["strategy"] == "beam"
    assert meta["strategy_config"] == {"beam_width": 2, "beam_size": 1, "beam_temperature": 0.5}
    run = RunDirectory(tmp_path / "run")
    for summary in run.summaries():
        posed = run.load_events(summary.session_id).events[0]
        assert posed.strategy == "beam"
        assert (posed.config["beam_width"], posed.config["beam_size"]) == (2, 1)


def test_beam_flags_with_another_strategy_are_refused(tmp_path: Path) -> None:
    dataset(tmp_path / "d.jsonl", ["plain"])
    args = ["synth", "--dataset", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "run"),
            "--beam-width", "2", "--beam-size", "1"]  # fmt: skip
    result = cli.invoke(app, args)
    assert isinstance(result.exception, ConfigError)
    assert (
        str(result.exception)
        == "--beam-width, --beam-size only apply to --strategy beam, not 'debate'"
    )
    path_view = ["--strategy", "beam", "--policy-context", "path"]
    result = cli.invoke(app, [*args[:5], *path_view])
    assert isinstance(result.exception, ConfigError)
    assert (
        str(result.exception)
        == "--policy-context only applies to --strategy debate or propose-critique, not 'beam'"
    )
    result = cli.invoke(app, [*args[:5], "--policy-context", "story"])
    assert isinstance(result.exception, ConfigError)
    assert "unknown policy_context 'story'; choose dialogue or path" in str(result.exception)
