"""Data you can trust: adversarial critics never get a wrong step labelled correct.

Each critic below flags the policy's wrong first step the way real models do when
they misbehave: one reasons first and quotes the opposite verdict inside its thoughts,
one says "incorrect" but chooses continue, one says nothing at all, one is cut off
mid-thought. The policy always writes a wrong step 1 ("carrying the one") first, then
the right one when asked again, then the right final answer, so every session solves.
Whatever the critic, no export (sft, shortcut, dpo, prm) may teach the wrong step as
right: not in a shortcut row, not in a chosen answer, never labelled `true`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from autogen_core.models import AssistantMessage, LLMMessage

from journey.agents import DEFAULT_CRITIC_TOKENS, step_under_judgement
from journey.agents.backends import FunctionChatCompletionClient
from journey.exports import ExportOptions, export_runs
from journey.exports.export import load_card
from journey.exports.options import card_path
from journey.problems import load_problems
from journey.protocols import CriticVerdictGiven, LabelSource, PolicyStepProposed, StepVerdict
from journey.runs import SynthesisOptions, SynthesisRunner, read_event_log
from journey.sessions import SessionLimits

WRONG = "carrying the one"
"""Marks the policy's wrong step; no exported row may accept a step holding it."""
OK = "VERDICT: correct\nACTION: continue\nREASON: The sum checks out."
PAIRS = [(2, 3), (4, 5), (7, 8), (12, 30), (25, 17), (9, 9)]
_PROBLEM = re.compile(r"What is (\d+) \+ (\d+)\?")


def _sum_asked(messages: Sequence[LLMMessage]) -> tuple[int, int, int]:
    """The two numbers, and where the problem is posed (after the prompt's worked example)."""
    for at, message in enumerate(messages):
        match = _PROBLEM.search(str(message.content))
        if match is not None:
            return int(match.group(1)), int(match.group(2)), at
    raise AssertionError("no problem in the prompt")


def policy(messages: Sequence[LLMMessage]) -> str:
    """Step 1 wrong at first, right when asked again; step 2 the right answer."""
    a, b, posed = _sum_asked(messages)
    step = int(re.findall(r"Step (\d+)", str(messages[-1].content))[-1])
    if step >= 2:
        return f"Step 2: So the answer is \\boxed{{{a + b}}}."
    tries = sum(
        isinstance(m, AssistantMessage) and str(m.content).startswith("Step 1:")
        for m in messages[posed:]
    )
    if tries == 0:
        return f"Step 1: {a} + {b} = {a + b + 1}, {WRONG}."
    return f"Step 1: {a} + {b} = {a + b}."


def _judge(messages: Sequence[LLMMessage], on_wrong: str) -> str:
    return on_wrong if WRONG in step_under_judgement(messages) else OK


def honest_critic(messages: Sequence[LLMMessage]) -> str:
    return _judge(messages, "VERDICT: incorrect\nACTION: reflect\nREASON: The sum is off by one.")


def thinking_critic(messages: Sequence[LLMMessage]) -> str:
    """Reasons first, quoting the opposite verdict inside its thoughts."""
    if WRONG in step_under_judgement(messages):
        return (
            "<think>A first guess would be VERDICT: correct, ACTION: continue. But adding "
            "again, the sum is off by one, so that guess is wrong.</think>\n"
            "VERDICT: incorrect\nACTION: reflect\nREASON: The sum is off by one."
        )
    return (
        "<think>Is it VERDICT: incorrect, ACTION: backtrack 0? No: the sum checks out."
        "</think>\n" + OK
    )


def contradicting_critic(messages: Sequence[LLMMessage]) -> str:
    """Says incorrect, then chooses continue."""
    return _judge(messages, "VERDICT: incorrect\nACTION: continue\nREASON: The sum is off.")


def silent_critic(messages: Sequence[LLMMessage]) -> str:
    """Says nothing about a wrong step, however often it is asked."""
    return _judge(messages, "")


def cut_off_critic(messages: Sequence[LLMMessage]) -> str:
    """Thinks past its generation limit: the thoughts never close, no answer follows."""
    return _judge(messages, "<think>Let me add the two numbers again. " + "Hmm, carry... " * 600)


CRITICS = {
    "honest": honest_critic,
    "thinking": thinking_critic,
    "contradicting": contradicting_critic,
    "silent": silent_critic,
    "cut_off": cut_off_critic,
}
ADVERSARIAL = ("thinking", "contradicting", "silent", "cut_off")


def synth(run: Path, critic: str, tmp_path: Path) -> None:
    data = tmp_path / "sums.jsonl"
    data.write_text(
        "".join(
            json.dumps({"problem": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n"
            for a, b in PAIRS
        ),
        encoding="utf-8",
    )
    options = SynthesisOptions(
        policy="function:test_trust:policy",
        critic=f"function:test_trust:{critic}_critic",
        critic_mode="generate",
        concurrency=3,
        limits=SessionLimits(max_turns=8),
    )
    runner = SynthesisRunner(options)
    asyncio.run(runner.run(run, load_problems(data).records))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trust")
    out = {}
    for name in CRITICS:
        out[name] = base / name
        synth(out[name], name, base)
    return out


def export(run: Path, out: Path, fmt: str, **options: Any) -> list[dict[str, Any]]:
    export_runs([run], out, ExportOptions(format=fmt, allow_empty=True, **options))
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return texts(value.get("content", ""))
    return [t for item in value for t in texts(item)]


def verdicts(run: Path, *, on_wrong_steps: bool = False) -> list[CriticVerdictGiven]:
    """The critic's verdicts in a run; only those on the wrong steps if asked."""
    out = []
    for log in sorted((run / "sessions").glob("*/events.jsonl")):
        events = read_event_log(log).events
        steps = {e.node_id: e.content for e in events if isinstance(e, PolicyStepProposed)}
        out += [
            e
            for e in events
            if isinstance(e, CriticVerdictGiven)
            and (not on_wrong_steps or WRONG in steps[e.node_id])
        ]
    return out


@pytest.mark.parametrize("critic", list(CRITICS))
def test_every_session_still_solves(runs: dict[str, Path], critic: str) -> None:
    index = [
        json.loads(line) for line in (runs[critic] / "sessions.jsonl").read_text().splitlines()
    ]
    assert len(index) == len(PAIRS)
    assert {s["outcome"] for s in index} == {"solved"}


@pytest.mark.parametrize("critic", list(CRITICS))
def test_no_export_teaches_the_wrong_step_as_right(
    runs: dict[str, Path], critic: str, tmp_path: Path
) -> None:
    run = runs[critic]
    for row in export(run, tmp_path / "shortcut.jsonl", "shortcut"):
        assert not any(WRONG in t for t in texts(row["completion"]))
    for row in export(run, tmp_path / "sft.jsonl", "sft"):
        [thought] = texts(row["completion"])
        if WRONG in thought:  # only as a wrong turn the long thought walks back from
            assert "step 1 is wrong" in thought
    for row in export(run, tmp_path / "dpo.jsonl", "dpo"):
        assert not any(WRONG in t for t in texts(row["prompt"]) + texts(row["chosen"]))
    for unknown in ("drop", "skip", "keep"):
        prm = export(run, tmp_path / f"prm-{unknown}.jsonl", "prm", prm_unknown=unknown)
        for row in prm:
            for step, label in zip(row["completions"], row["labels"], strict=True):
                if WRONG in step:
                    assert label is not True, (critic, unknown, row)


@pytest.mark.parametrize("critic", ["honest", "thinking", "contradicting"])
def test_a_critic_that_flags_the_step_still_gives_journey_rows(
    runs: dict[str, Path], critic: str, tmp_path: Path
) -> None:
    sft = export(runs[critic], tmp_path / "sft.jsonl", "sft")
    shortcut = export(runs[critic], tmp_path / "shortcut.jsonl", "shortcut")
    assert len(sft) == len(shortcut) == len(PAIRS)
    assert all("step 1 is wrong" in texts(r["completion"])[0] for r in sft)
    card = load_card(card_path(tmp_path / "shortcut.jsonl"))
    assert card.labels == {"critic": {"correct": 6}, "verifier": {"correct": 6}}
    prm = export(runs[critic], tmp_path / "prm.jsonl", "prm")
    wrong_labels = [
        (label, source)
        for row in prm
        for step, label, source in zip(
            row["completions"], row["labels"], row["label_sources"], strict=True
        )
        if WRONG in step
    ]
    assert wrong_labels == [(False, "critic")] * len(PAIRS)


@pytest.mark.parametrize("critic", ["silent", "cut_off"])
def test_a_step_nobody_could_judge_stays_unknown_and_out_of_the_data(
    runs: dict[str, Path], critic: str, tmp_path: Path
) -> None:
    judged = verdicts(runs[critic], on_wrong_steps=True)
    assert len(judged) == len(PAIRS)
    assert {(e.verdict, e.source) for e in judged} == {(StepVerdict.UNKNOWN, LabelSource.NONE)}
    assert export(runs[critic], tmp_path / "shortcut.jsonl", "shortcut") == []
    card = load_card(card_path(tmp_path / "shortcut.jsonl"))
    assert card.skipped == {"path not accepted": len(PAIRS)}
    kept = export(runs[critic], tmp_path / "prm.jsonl", "prm", prm_unknown="keep")
    unknown = [
        (label, source)
        for row in kept
        for step, label, source in zip(
            row["completions"], row["labels"], row["label_sources"], strict=True
        )
        if WRONG in step
    ]
    assert unknown and set(unknown) == {(None, "none")}
    assert export(runs[critic], tmp_path / "prm.jsonl", "prm") == []  # drop, by default
    dropped = load_card(card_path(tmp_path / "prm.jsonl")).rows_dropped
    assert dropped["unknown step"] >= len(PAIRS)


def test_each_misbehaviour_is_recorded_as_what_it_was(runs: dict[str, Path]) -> None:
    def kinds(critic: str) -> set[str]:
        return {v.kind for e in verdicts(runs[critic]) for v in e.violations}

    assert "inconsistent_action" in kinds("contradicting")
    assert "fallback_continue" in kinds("silent")
    assert {"truncated_reply", "fallback_continue"} <= kinds("cut_off")
    thinking = verdicts(runs["thinking"])
    assert not kinds("thinking") and all("</think>" not in e.reason for e in thinking)
    assert all(e.reasoning and "VERDICT" in e.reasoning for e in thinking)
    wrong = verdicts(runs["thinking"], on_wrong_steps=True)
    assert len(wrong) == len(PAIRS)
    assert {(e.verdict, e.source) for e in wrong} == {(StepVerdict.INCORRECT, LabelSource.CRITIC)}


def test_the_credit_rule_is_opt_in_and_named(runs: dict[str, Path], tmp_path: Path) -> None:
    """`credit_verified_path` labels unjudged steps on a verified path, under its own source."""
    shortcut = export(runs["silent"], tmp_path / "s.jsonl", "shortcut", credit_verified_path=True)
    assert len(shortcut) == len(PAIRS)  # the user asked for it, and the card says so
    card = load_card(card_path(tmp_path / "s.jsonl"))
    assert card.labels["verified_path"] == {"correct": len(PAIRS)}
    assert card.filters["credit_verified_path"] is True


def slow_thinker(messages: Sequence[LLMMessage]) -> str:
    """Thinks for 30 words before a plain verdict."""
    return "<think>" + "hmm " * 30 + "</think>" + OK


def test_a_roles_generation_limit_and_reasks_are_options(tmp_path: Path) -> None:
    """The critic spec's max_tokens wins over --critic-tokens; --critic-reasks bounds re-asks."""
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"problem": "What is 2 + 3?", "answer": "5"}) + "\n")

    def run(out: Path, critic_spec: str, **options: Any) -> list[CriticVerdictGiven]:
        critic = FunctionChatCompletionClient(slow_thinker)
        runner = SynthesisRunner(
            SynthesisOptions(
                policy="function:test_trust:policy",
                critic=critic_spec,
                critic_mode="generate",
                limits=SessionLimits(max_turns=4),
                **options,
            ),
            clients={"policy": FunctionChatCompletionClient(policy), "critic": critic},
        )
        asyncio.run(runner.run(out, load_problems(data).records))
        return verdicts(out)

    roomy = run(tmp_path / "roomy", "openai:m@http://127.0.0.1:9/v1")
    assert {e.verdict for e in roomy} == {StepVerdict.CORRECT}  # 1024 tokens by default
    cramped = run(tmp_path / "cramped", "openai:m@http://127.0.0.1:9/v1?max_tokens=20")
    assert {e.verdict for e in cramped} == {StepVerdict.UNKNOWN}
    assert all(
        [v.kind for v in e.violations].count("truncated_reply") == 2 for e in cramped
    )  # asked once more by default
    once = run(
        tmp_path / "once", "openai:m@http://127.0.0.1:9/v1", critic_tokens=20, critic_reasks=0
    )
    assert all([v.kind for v in e.violations].count("truncated_reply") == 1 for e in once)
    recorded = json.loads((tmp_path / "once" / "run.json").read_text())
    assert (recorded["critic_tokens"], recorded["critic_reasks"]) == (20, 0)


def test_the_cli_defaults_are_the_libraries() -> None:
    """The CLI spells some defaults out (it imports the work only when run): they must agree."""
    from journey.cli.debate import debate
    from journey.cli.evaluate import evaluate
    from journey.cli.pairs import pairs
    from journey.cli.synth import synth
    from journey.runs.endpoint_health import DEFAULT_MAX_CONSECUTIVE_ERRORS

    def default(command: Any, name: str) -> Any:
        return inspect.signature(command).parameters[name].default

    for command in (debate, synth):
        assert default(command, "critic_tokens") == DEFAULT_CRITIC_TOKENS
    for command in (synth, evaluate, pairs):
        assert default(command, "max_consecutive_errors") == DEFAULT_MAX_CONSECUTIVE_ERRORS


def self_checking_policy(messages: Sequence[LLMMessage]) -> str:
    """Propose-critique: the policy writes step 1 wrong and judges it incorrect, but picks
    continue; then the right step, checked and continued; then the right answer."""
    step = policy(messages)
    if WRONG in step:
        return f"{step}\nCheck: the sum is off by one.\nVERDICT: incorrect\nACTION: continue"
    return f"{step}\nCheck: the sum checks out.\nACTION: continue"


def test_a_policy_judging_itself_never_keeps_a_step_it_called_incorrect(tmp_path: Path) -> None:
    data = tmp_path / "sums.jsonl"
    data.write_text(
        "".join(
            json.dumps({"problem": f"What is {a} + {b}?", "answer": str(a + b)}) + "\n"
            for a, b in PAIRS
        )
    )
    options = SynthesisOptions(
        strategy="propose-critique",
        policy="function:test_trust:self_checking_policy",
        limits=SessionLimits(max_turns=8),
    )
    runner = SynthesisRunner(options)
    asyncio.run(runner.run(tmp_path / "run", load_problems(data).records))
    wrong = verdicts(tmp_path / "run", on_wrong_steps=True)
    assert len(wrong) == len(PAIRS)
    assert {(e.verdict, e.source, e.action.action) for e in wrong} == {
        (StepVerdict.INCORRECT, LabelSource.SELF_CHECK, "reflect")
    }
    shortcut = export(tmp_path / "run", tmp_path / "s.jsonl", "shortcut")
    assert len(shortcut) == len(PAIRS)
    assert not any(WRONG in t for row in shortcut for t in texts(row["completion"]))
    card = load_card(card_path(tmp_path / "s.jsonl"))
    assert card.labels == {"self_check": {"correct": 6}, "verifier": {"correct": 6}}
