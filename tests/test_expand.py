"""`journey expand`: reference solutions expanded into long thoughts, checked, not trusted.

A scripted expander (`expander`, a `function:` model) writes one kind of expansion per
problem, named by the solver in it: a good one (Tom), a wrong answer then a good one on
the retry (Ann), one missing the reference's key numbers (Bob), one whose reflection
corrects nothing (Cid), one too short (Dee); Eve's line has no reference solution.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from autogen_core.models import LLMMessage
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from journey.agents import PolicyAgent
from journey.agents.backends.scripted import FunctionChatCompletionClient
from journey.cli import app
from journey.errors import ConfigError, DatasetError
from journey.exports import ExportOptions, export_runs
from journey.longthought.writer import write_long_thought
from journey.problems import ProblemRecord, load_problems
from journey.problems.reference import key_results, reference_solution, with_reference
from journey.protocols import (
    ActionApplied,
    Backtrack,
    CriticVerdictGiven,
    ExpansionRejected,
    LabelSource,
    Reflect,
    SessionEvent,
    StepVerdict,
)
from journey.protocols.expansion import ExpansionChecks, rejection_kind, walk_expansion
from journey.runs import RunDirectory
from journey.runs.expansion import ExpandOptions, ExpansionReport, run_expand
from journey.sessions import ExpandSession
from journey.sessions.expand import expand_config
from journey.sessions.tree import NodeLabel
from journey.view.render.events import SessionRenderer

runner = CliRunner()
SPEC = "function:tests.test_expand:expander"
CALLS: list[str] = []
SYSTEMS: list[str] = []


def problem(name: str) -> str:
    return f"{name} buys 6 boxes of 8 pencils and gives away 15 pencils. How many are left?"


def reference(name: str) -> str:
    return (
        f"{name} buys 6 * 8 = 48 pencils in all. After giving 15 away, {name} has "
        "48 - 15 = 33 pencils left. \\boxed{33}"
    )


def good(name: str, answer: str = "33") -> str:
    return (
        "Let me think about this.\n\n"
        f"Step 1: {name} buys 6 boxes, and each box holds 8 pencils.\n\n"
        f"Step 2: So {name} buys 6 + 8 = 14 pencils.\n\n"
        "Wait, step 2 is wrong: each of the 6 boxes holds 8 pencils, so I have to "
        "multiply, not add.\n\n"
        f"Step 2: So {name} buys 6 * 8 = 48 pencils.\n\n"
        f"Step 3: {name} gives away 15 pencils, so 48 - 15 = 33 pencils are left.\n\n"
        f"The answer is \\boxed{{{answer}}}."
    )


def missing_keys(name: str) -> str:
    return (
        f"Step 1: {name} buys 6 boxes, and each box holds 8 pencils.\n\n"
        "Step 2: So the pencils are 6 + 8 in all.\n\n"
        "Wait, step 2 is wrong: the boxes hold 8 pencils each, so I must multiply.\n\n"
        "Step 2: So the pencils are 6 * 8 in all.\n\n"
        f"Step 3: After giving away 15 of them, {name} has 33 pencils left, so the "
        "answer is \\boxed{33}."
    )


def corrects_nothing(name: str) -> str:
    return (
        f"Step 1: {name} buys 6 boxes, and each box holds 8 pencils.\n\n"
        f"Step 2: So {name} buys 6 * 8 = 48 pencils.\n\n"
        "Wait, let me check step 2: 6 boxes of 8 pencils make 48 pencils.\n\n"
        f"Step 3: {name} gives away 15, so 48 - 15 = 33 are left. The answer is \\boxed{{33}}."
    )


def too_short(name: str) -> str:
    return (
        "Step 1: 6 + 8 = 14.\nWait, step 1 is wrong.\nStep 1: 6 * 8 = 48.\n"
        "Step 2: 48 - 15 = \\boxed{33}."
    )


def _text(message: LLMMessage) -> str:
    return str(getattr(message, "content", ""))


def expander(messages: Sequence[LLMMessage]) -> str:
    """The scripted expander: the kind of expansion depends on the solver's name."""
    SYSTEMS.append(_text(messages[0]))
    ask = next(_text(m) for m in reversed(messages) if "Reference solution:" in _text(m))
    name = ask.removeprefix("Problem: ").split()[0]
    retry = "not accepted" in _text(messages[-1])
    CALLS.append(name)
    if name == "Ann":
        return good(name) if retry else good(name, answer="34")
    kinds = {"Bob": missing_keys, "Cid": corrects_nothing, "Dee": too_short}
    return kinds.get(name, good)(name)


NAMES = ("Tom", "Ann", "Bob", "Cid", "Dee")


def write_dataset(path: Path) -> Path:
    lines = [
        {"problem": problem(name), "answer": "33", "solution": reference(name)} for name in NAMES
    ]
    lines.append({"problem": problem("Eve"), "answer": "33"})  # no reference solution
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def problems(tmp_path: Path) -> list[ProblemRecord]:
    return load_problems(write_dataset(tmp_path / "math.jsonl")).records


# -- reading an expansion: the reflection rule ------------------------------------------------


def test_a_reflection_rewrites_the_step_it_names() -> None:
    walk = walk_expansion(good("Tom"))
    assert walk.problems == () and walk.reflections == 1
    assert walk.preamble == "Let me think about this."
    assert [(s.number, s.parent, s.back_to) for s in walk.steps] == [
        (1, None, None),
        (2, 0, 2),
        (2, 0, None),
        (3, 2, None),
    ]
    wrong = walk.steps[1]
    assert wrong.corrected_by is not None and wrong.corrected_by.startswith("Wait, step 2")
    assert [s.index for s in walk.final_path] == [0, 2, 3]


def test_a_mistake_noticed_later_goes_back_to_the_wrong_step() -> None:
    text = (
        "Step 1: There are 6 * 8 = 48 pencils.\n"
        "Step 2: Giving 15 away leaves 48 + 15 = 63.\n"
        "Step 3: Half of 63 is 31.5.\n"
        "Hmm, step 2 is wrong: giving pencils away means subtracting. Let me go back.\n"
        "Step 2: Giving 15 away leaves 48 - 15 = 33.\n"
        "Step 3: So \\boxed{33} pencils are left."
    )
    walk = walk_expansion(text)
    assert walk.problems == ()
    third = walk.steps[2]
    assert third.back_to == 2 and third.corrected_by is None and not third.on_final_path
    assert walk.steps[1].corrected_by is not None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Step 1: 6 * 8 = 48.\nWait, that is wrong.\nStep 1: 6 * 8 = 47.",
         "reflection names no step"),
        ("Step 1: 6 * 8 = 48.\nWait, step 1 is wrong.\nStep 2: 48 - 15 = 33.",
         "reflection corrects nothing"),
        ("Step 1: 6 * 8 = 48.\nHmm, step 1 is wrong.\nStep 1: So 6 * 8 = 48 pencils.",
         "reflection corrects nothing"),
        ("Step 1: 6 * 8 = 48.\nStep 2: 48 - 15 = 33.\nWait, step 1 is wrong.\nStep 2: 33.",
         "reflection corrects nothing"),
        ("Step 1: 6 * 8 = 48.\nWait, step 3 is wrong.\nStep 1: 6 * 8 = 47.",
         "reflection corrects nothing"),
        ("Step 1: 6 * 8 = 48.\nWait, step 1 is wrong.", "reflection corrects nothing"),
        ("Step 1: 6 * 8 = 48.\nStep 3: 48 - 15 = 33.", "steps out of order"),
        ("There are 33 left.", "no steps"),
        ("Step 1:\nStep 2: 48 - 15 = 33.", "empty step"),
    ],
)  # fmt: skip
def test_the_reflection_rule_refuses_what_corrects_nothing(text: str, kind: str) -> None:
    assert kind in {rejection_kind(p) for p in walk_expansion(text).problems}


def test_a_marker_in_a_steps_first_sentence_is_no_reflection() -> None:
    walk = walk_expansion("Step 1: Hmm, 6 * 8 = 48 pencils.\nStep 2: 48 - 15 = \\boxed{33}.")
    assert walk.problems == () and walk.reflections == 0


def test_the_checks_refuse_bad_settings() -> None:
    with pytest.raises(ConfigError, match=r"key_share must be between 0 and 1, got 1\.5"):
        ExpansionChecks(key_share=1.5)
    with pytest.raises(ConfigError, match=r"min=3\.0, max=2\.0"):
        ExpansionChecks(min_length=3.0, max_length=2.0)


# -- reference solutions ------------------------------------------------------------------------


def test_key_results_are_the_numbers_the_reference_derives() -> None:
    assert key_results(reference("Tom"), problem("Tom")) == ("48", "33")
    assert key_results("1,000 and 1000.0 and 2.50", "nothing") == ("1000", "2.5")
    figure = "[asy]\ndraw((0,0)--(3.5,2));\n[/asy]\nSo $x = 7$, and \\boxed{7}."
    solution = reference_solution(figure, "What is x?")
    assert solution is not None and solution.key_results == ("7",) and solution.answer == "7"


def test_a_gsm8k_rationale_is_its_own_reference_and_answer(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k.jsonl"
    rationale = "He buys 6*8=<<6*8=48>>48 pencils.\nHe keeps 48-15=<<48-15=33>>33.\n#### 33"
    path.write_text(json.dumps({"question": problem("Tom"), "answer": rationale}) + "\n")
    [record] = load_problems(path, problem_field="question").records
    ready, why = with_reference(record, "answer", answer_field="answer")
    assert why is None and ready.answer == "33"
    assert ready.meta["answer"] == "He buys 6*8=48 pencils.\nHe keeps 48-15=33."
    solution = reference_solution(ready.meta["answer"], ready.problem)
    assert solution is not None and solution.key_results == ("48", "33")
    assert with_reference(record, "solution")[1] == "no 'solution' field"


# -- a run: acceptance, rejections, retries, layout, export, resume ---------------------------


async def _run(tmp_path: Path, checks: ExpansionChecks | None = None) -> ExpansionReport:
    options = ExpandOptions(
        model=SPEC, attempts=2, concurrency=2, checks=checks or ExpansionChecks()
    )
    client = FunctionChatCompletionClient(expander)
    return await run_expand(
        options, tmp_path / "run", problems(tmp_path), clients={"policy": client}
    )


async def test_an_expand_run_keeps_only_checked_expansions(tmp_path: Path) -> None:
    CALLS.clear()
    report = await _run(tmp_path)
    assert report.accepted == 2 and report.exhausted == 3
    assert report.attempts == 9 and report.rejected_attempts == 7
    assert report.rejections == {
        "key results missing": 2,
        "reflection corrects nothing": 2,
        "no wrong turn": 2,
        "too short": 2,
        "wrong answer": 1,
    }
    assert report.without_reference == {"no 'solution' field": 1}
    assert sorted(CALLS) == sorted(["Tom", "Ann", "Ann", *["Bob", "Cid", "Dee"] * 2])

    run = RunDirectory(tmp_path / "run")
    summaries = {s.problem.split()[0]: s for s in run.summaries()}
    assert {name: s.outcome for name, s in summaries.items()} == {
        "Tom": "solved",
        "Ann": "solved",
        "Bob": "failed",
        "Cid": "failed",
        "Dee": "failed",
    }
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["strategy"] == "expand" and manifest["models"] == {"policy": SPEC}
    assert manifest["dataset"]["without_reference"] == {"no 'solution' field": 1}
    assert manifest["strategy_config"]["expand_key_share"] == 0.75

    ann = summaries["Ann"].session_id
    folder = run.session_dir(ann)
    for name in ("events.jsonl", "tree.json", "transcript.md", "shortcut.md"):
        assert (folder / name).is_file()
    events = run.load_events(ann).events
    [rejected] = [e for e in events if isinstance(e, ExpansionRejected)]
    assert rejected.attempt == 1 and rejected.reasons == ["wrong answer: 34, not 33"]
    # The accepted expansion's tree: the wrong step rewritten, labels from the expansion.
    tree = run.load_tree(ann)
    labels = [(n.depth, n.label, n.label_source, n.abandoned) for n in list(tree)[1:]]
    assert labels == [
        (1, NodeLabel.CORRECT, LabelSource.EXPANSION, False),
        (2, NodeLabel.INCORRECT, LabelSource.EXPANSION, True),
        (2, NodeLabel.CORRECT, LabelSource.EXPANSION, False),
        (3, NodeLabel.CORRECT, LabelSource.VERIFIER, False),
    ]
    reflect = next(e for e in events if isinstance(e, ActionApplied) and e.node_id == 2)
    assert isinstance(reflect.action, Reflect) and reflect.source.value == "policy"
    transcript = (folder / "transcript.md").read_text()
    assert transcript.strip() == good("Ann").removeprefix("Let me think about this.\n\n")
    assert summaries["Ann"].reflections == 1
    # The rejected attempt's tokens count with the accepted one's.
    assert summaries["Ann"].usage["policy"].completion_tokens == 2 * len(good("Ann").split())

    out = tmp_path / "sft.jsonl"
    card = export_runs([tmp_path / "run"], out, ExportOptions(format="sft"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and card.strategies == ["expand"]
    assert all("Wait, step 2 is wrong: each of the 6 boxes" in r["completion"][0]["content"]
               for r in rows)  # fmt: skip
    assert card.skipped == {"outcome failed": 3}
    assert card.labels["expansion"] == {"correct": 4}
    assert card.dropped_upstream == {
        "expansion attempts rejected": 7,
        "expansion attempts rejected: key results missing": 2,
        "expansion attempts rejected: no wrong turn": 2,
        "expansion attempts rejected: reflection corrects nothing": 2,
        "expansion attempts rejected: too short": 2,
        "expansion attempts rejected: wrong answer": 1,
        "problem without a reference solution: no 'solution' field": 1,
    }
    assert card.strategy_settings["expand_min_reflections"] == [1]

    # A second invocation finds everything done: nothing is asked, nothing written.
    CALLS.clear()
    logs = {p: p.read_bytes() for p in (tmp_path / "run" / "sessions").rglob("events.jsonl")}
    again = await _run(tmp_path)
    assert CALLS == [] and again.synthesis.ran == 0 and again.synthesis.skipped == 5
    assert again.rejections == report.rejections
    assert {p: p.read_bytes() for p in logs} == logs


async def test_looser_checks_accept_more(tmp_path: Path) -> None:
    checks = ExpansionChecks(key_share=0.5, min_length=0.5, min_reflections=0)
    report = await _run(tmp_path, checks=checks)
    # Bob keeps one of two key numbers, Dee's length passes; Cid's reflection still
    # corrects nothing.
    assert report.accepted == 4 and report.rejections == {
        "wrong answer": 1,
        "reflection corrects nothing": 2,
    }


async def test_no_problem_with_a_reference_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no selected problem has a reference solution"):
        await run_expand(ExpandOptions(model=SPEC), tmp_path / "run", problems(tmp_path)[5:])


# -- a session: restore at every cut ---------------------------------------------------------


def _session(events: Sequence[SessionEvent] | None = None) -> ExpandSession:
    policy = PolicyAgent(FunctionChatCompletionClient(expander), max_tokens=1000)
    if events is not None:
        return ExpandSession.restore(events, policy=policy, critic=None)
    config = {**expand_config(), "meta": {"solution": reference("Ann")}}
    return ExpandSession(problem("Ann"), policy=policy, gold_answer="33", config=config)


def _stable(events: Sequence[SessionEvent]) -> list[dict[str, object]]:
    return [e.model_dump(exclude={"time", "latency"}) for e in events]


async def test_a_session_restored_at_any_cut_ends_as_an_uninterrupted_one() -> None:
    whole = (await _session().run()).events
    assert any(isinstance(e, ExpansionRejected) for e in whole)
    for cut in range(1, len(whole)):
        restored = _session(whole[:cut])
        result = await restored.run()
        assert _stable(result.events) == _stable(whole), f"cut at event {cut}"


async def test_a_late_correction_is_a_backtrack_with_hindsight_labels() -> None:
    text = (
        "Step 1: Ann buys 6 * 8 = 48 pencils.\n\n"
        "Step 2: Giving 15 away leaves 48 + 15 = 63.\n\n"
        "Step 3: So Ann has 63 pencils.\n\n"
        "Hmm, step 2 is wrong: giving pencils away means subtracting.\n\n"
        "Step 2: Giving 15 away leaves 48 - 15 = 33.\n\n"
        "Step 3: So Ann has \\boxed{33} pencils left, the answer."
    )
    policy = PolicyAgent(FunctionChatCompletionClient(lambda _: text), max_tokens=1000)
    config = {**expand_config(), "meta": {"solution": reference("Ann")}}
    session = ExpandSession(problem("Ann"), policy=policy, gold_answer="33", config=config)
    result = await session.run()
    verdicts = [e for e in result.events if isinstance(e, CriticVerdictGiven)]
    assert [(v.node_id, v.verdict, v.action.action) for v in verdicts] == [
        (1, StepVerdict.CORRECT, "continue"),
        (2, StepVerdict.INCORRECT, "continue"),
        (3, StepVerdict.UNKNOWN, "backtrack"),
        (4, StepVerdict.CORRECT, "continue"),
    ]
    assert verdicts[2].action == Backtrack(to_step=1, critique=verdicts[1].reason)
    assert result.ended.backtracks == 1 and result.tree[3].abandoned
    thought = write_long_thought(result.events, result.tree)
    assert "Step 3: So Ann has 63 pencils.\n\nHmm, step 2 is wrong" in thought


def test_replay_shows_a_rejected_attempt() -> None:
    event = ExpansionRejected(
        session_id="s", turn=1, time=0.5, attempt=1, reasons=["wrong answer: 34, not 33"], raw="x"
    )
    console = Console(file=io.StringIO(), width=80)
    SessionRenderer(console).show(event)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "attempt 1 rejected" in shown and "✗ wrong answer: 34, not 33" in shown


# -- the command ------------------------------------------------------------------------------


def _cli(tmp_path: Path, *extra: str) -> Result:
    args = ["expand", "--dataset", str(write_dataset(tmp_path / "math.jsonl")), "--model", SPEC,
            "--out", str(tmp_path / "run"), "--attempts", "2", "--no-progress", *extra]  # fmt: skip
    return runner.invoke(app, args)


def test_the_command_writes_a_run_and_reports_as_json(tmp_path: Path) -> None:
    result = _cli(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["accepted"], report["exhausted"], report["rejected_attempts"]) == (2, 3, 7)
    assert report["synthesis"]["strategy"] == "expand"
    result = _cli(tmp_path)
    assert result.exit_code == 0, result.output
    assert "Expansion checks" in result.output and "wrong answer" in result.output
    sft = tmp_path / "sft.jsonl"
    result = runner.invoke(
        app, ["export", str(tmp_path / "run"), "--format", "sft", "--out", str(sft)]
    )
    assert result.exit_code == 0, result.output
    assert "Wait, step 2 is wrong" in sft.read_text()


def test_a_prompt_file_replaces_the_packaged_prompts(tmp_path: Path) -> None:
    prompt = tmp_path / "mine.yaml"
    prompt.write_text(
        "system: You are TESTPROMPT.\n"
        "expand: |-\n  Problem: {problem}\n\n  Reference solution:\n  {reference}\n  {answer}\n"
        "retry: 'Not accepted ({attempt}): {reasons}'\n",
        encoding="utf-8",
    )
    # The `function:` spec imports this file as `tests.test_expand`, a module of its own.
    systems: list[str] = importlib.import_module("tests.test_expand").SYSTEMS
    systems.clear()
    result = _cli(tmp_path, "--prompt", str(prompt), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert systems == ["You are TESTPROMPT."]
    config = json.loads((tmp_path / "run" / "run.json").read_text())["strategy_config"]
    assert config["expand_prompt"] == str(prompt) and len(config["expand_prompt_sha256"]) == 64
    prompt.write_text("system: x\nexpand: y\n", encoding="utf-8")
    result = _cli(tmp_path, "--prompt", str(prompt), "--out", str(tmp_path / "other"))
    assert isinstance(result.exception, ConfigError)
    assert "lacks 'retry'" in str(result.exception)
