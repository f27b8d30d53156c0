"""`journey iterate`: the recipe, rounds end to end, resuming, the report, the command.

The fast tests run every step for real (synthesis, exports, pairs, evaluation) with
`function:` models on reasoning-gym problems, and train through a `RecordingTrainer`
that writes a model folder and hands back a `function:` or `replay:` spec, so the
orchestration, the resume and the report are checked in seconds. The embedded test at
the end trains the real model for a step.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from autogen_core.models import LLMMessage
from rich.console import Console
from typer.testing import CliRunner

from journey.cli import app
from journey.cli import train as train_cli
from journey.errors import ConfigError, DatasetError
from journey.evaluation.compare import wilson_interval
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.runner import EvalOptions
from journey.problems import load_problems
from journey.runs.stats import read_run, run_stats
from journey.runs.synthesis_options import SynthesisOptions
from journey.training.iterate import IterateHooks, run_iteration
from journey.training.iterate_recipe import IterateRecipe, load_recipe
from journey.training.iterate_report import IterateReport
from journey.training.iterate_steps import only_more_problems
from journey.training.iterate_train import TrainJob
from journey.view.iterate_report import render_iterate_report

runner = CliRunner()

TRAIN_SPEC = "rg:basic_arithmetic?size=6&seed={round}"
EVAL_SPEC = "rg:basic_arithmetic?size=8&seed=100"


# -- models: functions of the messages --------------------------------------------------------


def _value(messages: Sequence[LLMMessage]) -> int:
    """The value of the last `Calculate EXPRESSION.` the messages ask for."""
    found = re.findall(r"Calculate (.+?)\.\s*$", "\n".join(str(m.content) for m in messages), re.M)
    assert found and re.fullmatch(r"[\d\s()+\-*/]+", found[-1]), messages
    return int(eval(found[-1]))  # digits and operators only, checked above


def _tries(messages: Sequence[LLMMessage]) -> int:
    """Answers given so far (the instruction's empty `\\boxed{}` is none)."""
    return sum(bool(re.search(r"\\boxed\{-?\d", str(m.content))) for m in messages)


def base_model(messages: Sequence[LLMMessage]) -> str:
    """Right on even values; on odd ones wrong at first (and, asked once, always)."""
    value = _value(messages)
    answer = value if value % 2 == 0 or _tries(messages) else value + 1
    return f"Step 1: the expression is {answer}, so the answer is \\boxed{{{answer}}}."


def shortcut_model(messages: Sequence[LLMMessage]) -> str:
    """What the shortcut arm learnt: the base model's answers."""
    return base_model(messages)


def journey_model(messages: Sequence[LLMMessage]) -> str:
    """What the journey arm learnt: to check, and so always right."""
    value = _value(messages)
    return f"Step 1: it is {value + 1}. Wait, let me check: {value}. \\boxed{{{value}}}"


def critic(messages: Sequence[LLMMessage]) -> str:
    return "VERDICT: correct\nACTION: continue\nREASON: The step follows."


class RecordingTrainer:
    """Stands in for TRL: records each job, writes a model folder, returns `specs[name]`."""

    def __init__(self, specs: dict[str, str], *, fail_on: str | None = None) -> None:
        self.specs = specs
        self.fail_on = fail_on
        self.jobs: list[TrainJob] = []

    def __call__(self, job: TrainJob, log: Any) -> str:
        if job.name == self.fail_on:
            raise KeyboardInterrupt  # killed mid-training
        self.jobs.append(job)
        job.out.mkdir(parents=True, exist_ok=True)
        record = {"start": job.start, "data": [str(p.data) for p in job.phases]}
        (job.out / "trained.json").write_text(json.dumps(record))
        return self.specs[job.name]

    @property
    def names(self) -> list[str]:
        return [job.name for job in self.jobs]


SPECS = {
    "shortcut": "function:test_iterate:shortcut_model",
    "journey": "function:test_iterate:journey_model",
}

RECIPE: dict[str, Any] = {
    "rounds": 2,
    "dataset": TRAIN_SPEC,
    "eval_dataset": EVAL_SPEC,
    "policy": "function:test_iterate:base_model",
    "critic": "function:test_iterate:critic",
    "synth": {"critic_mode": "generate", "concurrency": 2, "limits": {"max_turns": 4}},
    "training": {"model": "embedded", "max_steps": 1, "max_length": 64},
    "eval": {"max_new_tokens": 64, "batch_size": 2},
    "next_policy": "journey",
}


def _recipe(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, **changes}))
    return path


class Lines:
    """Collects what an iteration logs, one line per step."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def hooks(self) -> IterateHooks:
        return IterateHooks(log=self.lines.append)

    def ran(self) -> list[str]:
        """The steps that did work (not 'done before', not 'the same as')."""
        done = ("done before", "the same as")
        return [
            line.split(":")[0] for line in self.lines if not line.split(": ", 1)[1].startswith(done)
        ]


def _iterate(
    recipe: Path, out: Path, trainer: RecordingTrainer, **options: Any
) -> tuple[IterateReport, Lines]:
    lines = Lines()
    report = run_iteration(
        load_recipe(recipe), out, trainer=trainer, hooks=lines.hooks(), **options
    )
    return report, lines


def _even_share(spec: str) -> tuple[int, int]:
    records = load_problems(spec).records
    return sum(int(r.answer) % 2 == 0 for r in records), len(records)


# -- the recipe -------------------------------------------------------------------------------


def test_a_recipe_with_defaults_reads_back_typed(tmp_path: Path) -> None:
    recipe = load_recipe(_recipe(tmp_path))
    assert recipe.rounds == 2 and recipe.dataset.for_round(2).source.endswith("seed=2")
    assert recipe.eval_dataset.source == EVAL_SPEC and recipe.next_critic == "none"
    assert [p.set for p in recipe.training.arms["journey"]] == ["shortcut", "journey"]
    options = recipe.synth.options("embedded", "embedded")
    assert options.limits.max_turns == 4 and options.critic_mode == "generate"
    assert recipe.export.options("journey").format == "sft"


def test_the_defaults_are_the_commands_defaults() -> None:
    """A recipe that sets nothing trains, samples and evaluates as the commands do."""
    recipe = IterateRecipe.model_validate({"dataset": "a.jsonl", "eval_dataset": "b.jsonl"})
    sft = inspect.signature(train_cli.sft).parameters
    dpo = inspect.signature(train_cli.dpo).parameters
    values = recipe.training.options()
    assert values == {name: sft[name].default for name in values}
    dpo_recipe = recipe.model_validate(
        {"dataset": "a", "eval_dataset": "b", "training": {"dpo": {"arms": ["journey"]}}}
    )
    assert dpo_recipe.training.dpo is not None
    dpo_values = dpo_recipe.training.dpo.options()
    assert dpo_values == {name: dpo[name].default for name in dpo_values}
    pairs = PairsOptions()
    assert all(
        getattr(pairs, k) == v for k, v in dpo_recipe.training.dpo.pairs.model_dump().items()
    )
    evals = EvalOptions()
    assert all(getattr(evals, k) == v for k, v in recipe.eval.model_dump(exclude={"base"}).items())
    synth, plain = recipe.synth.options("embedded", "embedded"), SynthesisOptions()
    assert synth.record() == plain.record()


def test_every_mistake_is_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "rounds": 0,
                "dataset": "rg:chain_sum?seed={round}&size={n}",
                "policy": "nosuch:model",
                "synth": {"strategy": "debate", "bogus": 1},
                "training": {"lr": "fast", "arms": {"journey": ["journey", "prm"]}},
                "eval": {"temperature": 5},
            }
        )
    )
    with pytest.raises(ConfigError) as raised:
        load_recipe(path)
    lines = str(raised.value).splitlines()
    assert lines[0] == "8 mistakes in the recipe:"
    assert lines[1:] == [
        f"{path}: rounds: Input should be greater than or equal to 1 (got 0)",
        f"{path}: dataset: only {{round}} may stand in the source, got "
        "'rg:chain_sum?seed={round}&size={n}'",
        f"{path}: eval_dataset: Field required",
        f"{path}: policy: unknown model spec 'nosuch:model': use 'embedded', 'hf:DIR' (or a "
        "directory), 'openai:MODEL[@URL]', 'vllm:MODEL', 'llama:GGUF', 'replay:FILE' or "
        "'function:MODULE:NAME'",
        f"{path}: synth.bogus: unknown key (known: strategy, critic_mode, concurrency, limits, "
        "step_tokens, critic_tokens, critic_reasks, strategy_config)",
        f"{path}: training.lr: Input should be a valid number, unable to parse string as a "
        "number (got 'fast')",
        f"{path}: training.arms.journey.1.set: Input should be 'shortcut', 'journey' or "
        "'revision' (got 'prm')",
        f"{path}: eval.temperature: Input should be less than or equal to 2 (got 5)",
    ]


def test_names_that_do_not_agree_are_each_a_line(tmp_path: Path) -> None:
    path = _recipe(
        tmp_path,
        export={"sets": ["journey"]},
        training={"dpo": {"arms": ["nobody"]}},
        next_critic="critic_arm",
    )
    with pytest.raises(ConfigError) as raised:
        load_recipe(path)
    assert str(raised.value).splitlines() == [
        "4 mistakes in the recipe:",
        f"{path}: recipe: arm 'shortcut' trains on ['shortcut'] that export.sets leaves out",
        f"{path}: recipe: arm 'journey' trains on ['shortcut'] that export.sets leaves out",
        f"{path}: recipe: training.dpo.arms names no arm: ['nobody']",
        f"{path}: recipe: next_critic 'critic_arm' is not an arm (shortcut, journey, none)",
    ]
    # What a step's own options refuse is refused here, before any work.
    path = _recipe(tmp_path, synth={"strategy": "beam", "strategy_config": {"beam_width": 0}})
    with pytest.raises(
        ConfigError, match=r"recipe.yaml: synth: beam width must be an integer of at least 1, got 0"
    ):
        load_recipe(path)
    path = _recipe(tmp_path, export={"layout": "wide"})
    with pytest.raises(ConfigError, match=r"recipe.yaml: export: unknown layout 'wide'"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "must be a mapping of settings"),
        ("rounds: [1\n", "not valid YAML (line 2)"),
        ("dataset: a.jsonl\neval_dataset: 'rg:x?seed={round}'\n", "eval_dataset: the held-out"),
        ("dataset: a.jsonl\neval_dataset: b\ntraining: {arms: {base: [journey]}}\n", "'base'"),
    ],
)
def test_recipe_files_that_cannot_be_read(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


# -- two rounds end to end --------------------------------------------------------------------


def test_two_rounds_end_to_end_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "it"
    recipe = _recipe(tmp_path)
    trainer = RecordingTrainer(SPECS)
    report, lines = _iterate(recipe, out, trainer)

    # Round 1 trains each arm from `training.model`; round 2 from round 1's journey model,
    # which is also round 2's policy.
    assert trainer.names == ["shortcut", "journey", "shortcut", "journey"]
    assert [job.start for job in trainer.jobs] == ["embedded", "embedded", *[SPECS["journey"]] * 2]
    journey_job = trainer.jobs[1]
    assert [p.data.name for p in journey_job.phases] == ["shortcut.jsonl", "journey.jsonl"]
    assert journey_job.phases[1].model == f"hf:{out / 'round-1/models/journey/phase1'}"
    assert dict(journey_job.values)["max_steps"] == 1 and journey_job.kind == "sft"
    for folder in (
        "synth/sessions.jsonl",
        "exports/journey.card.json",
        "models/journey",
        "eval/base/metrics.json",
        "eval/journey/metrics.json",
    ):
        assert (out / "round-1" / folder).exists(), folder
    assert not (out / "round-2/eval/base").exists()  # round 1's journey evaluation, reused
    assert "round 2 · eval base: the same as round-1/eval/journey" in lines.lines

    assert json.loads((out / "report.json").read_text()) == report.model_dump(mode="json")
    first, second = report.rounds
    assert (first.round, first.policy, first.critic) == (1, RECIPE["policy"], RECIPE["critic"])
    assert second.policy == SPECS["journey"]
    # Synthesis: every problem solved (odd ones at the second try), as `journey stats` says.
    stats = run_stats(read_run(out / "round-1/synth"), keywords=())
    assert (first.synth.solved, first.synth.finished, first.synth.yield_rate) == (6, 6, 1.0)
    assert first.synth.tokens_per_solved == stats.tokens_per_solved is not None
    assert [(s.name, s.rows, s.sessions) for s in first.sets] == [
        ("shortcut", 6, 6),
        ("journey", 6, 6),
    ]
    assert [m.name for m in first.models] == ["shortcut", "journey"]
    assert first.models[1].data == ["shortcut", "journey"]
    # Evaluation: base and shortcut right on even values only, journey always right.
    even, total = _even_share(EVAL_SPEC)
    rows = {row.name: row for row in first.evals}
    assert list(rows) == ["base", "shortcut", "journey"]
    assert [rows[n].correct for n in rows] == [even, even, total]
    assert (rows["base"].ci_low, rows["base"].ci_high) == wilson_interval(even, total)
    assert rows["base"].difference is None and rows["shortcut"].difference == 0.0
    assert rows["journey"].difference == (total - even) / total
    assert rows["journey"].reflection_rate == 1.0 and rows["base"].reflection_rate == 0.0
    assert [(g.name, g.reference, g.shared, g.difference) for g in first.gaps] == [
        ("journey", "shortcut", total, (total - even) / total)
    ]
    assert [row.name for row in second.evals] == ["base", "shortcut", "journey"]
    assert second.evals[0].directory == str(out / "round-1/eval/journey")
    assert second.evals[0].accuracy == 1.0 and second.evals[1].difference == (even - total) / total

    text = _render(report)
    assert "held-out evaluation" in text and "journey − shortcut +62.5 points" in text

    # Again: nothing is redone, and the report is the same.
    again, lines = _iterate(recipe, out, RecordingTrainer(SPECS))
    assert lines.ran() == [] and again == report
    # A deleted step is redone, and nothing that depends on it: the model it makes
    # again has the same inputs.
    shutil.rmtree(out / "round-2/models/shortcut")
    (out / "round-2/exports/journey.step.json").unlink()
    redo = RecordingTrainer(SPECS)
    again, lines = _iterate(recipe, out, redo)
    assert lines.ran() == ["round 2 · export journey", "round 2 · train shortcut"]
    assert redo.names == ["shortcut"] and _untimed(again) == _untimed(report)


def _untimed(report: IterateReport) -> Any:
    """The report without wall times, which a step run again changes."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("seconds")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(report.model_dump(mode="json"))


def _render(report: IterateReport) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(render_iterate_report(report))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_an_interrupted_round_resumes_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "it"
    recipe = _recipe(tmp_path)
    _, lines = _iterate(recipe, out, RecordingTrainer(SPECS), rounds=1)
    assert not (out / "round-2").exists() and len(lines.ran()) == 8
    killed = RecordingTrainer(SPECS, fail_on="journey")
    with pytest.raises(KeyboardInterrupt):
        _iterate(recipe, out, killed, rounds=2)
    assert killed.names == ["shortcut"]  # round 2's shortcut model, then the kill
    resumed = RecordingTrainer(SPECS)
    report, lines = _iterate(recipe, out, resumed)
    assert resumed.names == ["journey"]
    assert lines.ran() == [
        "round 2 · train journey",
        "round 2 · eval shortcut",
        "round 2 · eval journey",
    ]
    assert len(report.rounds) == 2


def test_a_synthesis_done_in_parts_resumes_the_sessions_done(tmp_path: Path) -> None:
    """A larger `dataset.limit` (with --force) is the same problems and more: the
    synthesis run is kept, its sessions resumed. A smaller one, or another dataset,
    starts the synthesis afresh, so no session of a problem left out is exported."""
    out = tmp_path / "it"
    synth = out / "round-1/synth"

    def synthesise(limit: int | None, source: str = TRAIN_SPEC) -> tuple[bool, int]:
        """Whether the run before this one was kept, and how many sessions it has now."""
        recipe = _recipe(tmp_path, dataset={"source": source, "limit": limit})
        _iterate(recipe, out, RecordingTrainer(SPECS), rounds=1, force=True)
        kept = (synth / "planted").exists()
        (synth / "planted").touch()  # gone if the next run removes the synthesis
        return kept, len((synth / "sessions.jsonl").read_text().splitlines())

    assert synthesise(3) == (False, 3)
    assert synthesise(5) == (True, 5)
    assert synthesise(None) == (True, 6)  # all of them
    assert synthesise(2) == (False, 2)
    assert synthesise(3, TRAIN_SPEC.replace("size=6", "size=7")) == (False, 3)
    assert synthesise(3, TRAIN_SPEC.replace("size=6", "size=7")) == (True, 3)  # unchanged


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ({"limit": 5}, True),
        ({"limit": None}, True),
        ({"limit": 3}, True),
        ({"limit": 2}, False),
        ({"limit": 5, "offset": 1}, False),
        ({"limit": 5, "source": "other.jsonl"}, False),
    ],
)
def test_only_more_problems_keeps_a_synthesis(wanted: dict[str, Any], kept: bool) -> None:
    dataset = {"source": "p.jsonl", "offset": 0, "limit": 3}
    recorded = {"dataset": dataset, "models": {"policy": {"spec": "embedded"}}}
    grown = {**recorded, "dataset": {**dataset, **wanted}}
    assert only_more_problems(recorded, grown) is kept
    other_model = {**grown, "models": {"policy": {"spec": "hf:other"}}}
    assert not only_more_problems(recorded, other_model)
    assert not only_more_problems({**recorded, "dataset": {**dataset, "limit": None}}, grown)


def test_progress_off_reaches_the_trainers_and_changes_no_step(tmp_path: Path) -> None:
    # --no-progress is how a run is shown, not what it computes: no step is redone.
    out = tmp_path / "it"
    recipe = _recipe(tmp_path)
    shown = RecordingTrainer(SPECS)
    _iterate(recipe, out, shown, rounds=1)
    assert [job.progress for job in shown.jobs] == [True, True]
    quiet = RecordingTrainer(SPECS)
    lines = Lines()
    hooks = IterateHooks(log=lines.lines.append, training_progress=False)
    run_iteration(load_recipe(recipe), out, trainer=quiet, hooks=hooks, rounds=2)
    assert [job.progress for job in quiet.jobs] == [False, False]  # round 2's only
    assert not any(line.startswith("round 1") for line in lines.ran())


def test_a_changed_recipe_is_refused_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "it"
    _iterate(_recipe(tmp_path), out, RecordingTrainer(SPECS), rounds=1)
    changed = _recipe(tmp_path, eval={"max_new_tokens": 32, "batch_size": 2})
    with pytest.raises(ConfigError) as refused:
        _iterate(changed, out, RecordingTrainer(SPECS), rounds=1)
    assert "eval.max_new_tokens: 64 -> 32" in str(refused.value)
    assert "--force" in str(refused.value)
    trainer = RecordingTrainer(SPECS)
    _, lines = _iterate(changed, out, trainer, rounds=1, force=True)
    assert trainer.names == []  # only the evaluations changed
    assert lines.ran() == [
        "round 1 · eval base",
        "round 1 · eval shortcut",
        "round 1 · eval journey",
    ]


def test_a_recipe_recorded_before_a_setting_existed_is_the_same_recipe(tmp_path: Path) -> None:
    """Upgrading journey refuses no iteration: a key its iterate.json lacks has the
    default it had then; a recorded value that differs is still a change."""
    out = tmp_path / "it"
    _iterate(_recipe(tmp_path), out, RecordingTrainer(SPECS), rounds=1)
    manifest = out / "iterate.json"
    recorded = json.loads(manifest.read_text())
    del recorded["export"]["walk_trials"], recorded["export"]["policy_reasoning"]
    manifest.write_text(json.dumps(recorded))
    trainer = RecordingTrainer(SPECS)
    _, lines = _iterate(_recipe(tmp_path), out, trainer, rounds=1)
    assert trainer.names == [] and lines.ran() == []

    walked = _recipe(tmp_path, export={"walk_trials": 1})
    with pytest.raises(ConfigError, match=r"export.walk_trials: None -> 1"):
        _iterate(walked, out, RecordingTrainer(SPECS), rounds=1)


def test_dpo_on_the_arms_own_pairs_and_the_next_policy_after_it(tmp_path: Path) -> None:
    """A replay model answering 4 then 5 gives a pair per problem; the DPO model is the
    arm's last model, evaluated and handed to the next round."""
    problems = tmp_path / "twos.jsonl"
    problems.write_text(
        "".join(
            json.dumps({"problem": f"Calculate 2 + 2 + {i} - {i}.", "answer": "4"}) + "\n"
            for i in range(3)
        )
    )
    replies = tmp_path / "four-five.json"
    replies.write_text(json.dumps(["\\boxed{4}", "\\boxed{5}"]))
    sampled = f"replay:{replies}?cycle=true"
    specs = {**SPECS, "journey": sampled, "journey-dpo": SPECS["journey"]}
    recipe = _recipe(
        tmp_path,
        rounds=1,
        dataset=str(problems),
        eval_dataset=str(problems),
        training={
            "model": "embedded",
            "dpo": {"arms": ["journey"], "beta": 0.2, "pairs": {"samples": 2, "batch_size": 1}},
        },
        eval={"batch_size": 1},
    )
    trainer = RecordingTrainer(specs)
    report, _ = _iterate(recipe, tmp_path / "it", trainer)
    assert trainer.names == ["shortcut", "journey", "journey-dpo"]
    dpo = trainer.jobs[-1]
    assert dpo.kind == "dpo" and dpo.start == sampled and dict(dpo.values)["beta"] == 0.2
    assert dpo.phases[0].data.name == "pairs-journey.jsonl"
    only = report.rounds[0]
    assert [(p.name, p.rows, p.sessions) for p in only.pairs] == [("pairs journey", 3, 3)]
    assert [row.name for row in only.evals] == ["base", "shortcut", "journey", "journey-dpo"]
    assert [row.accuracy for row in only.evals][-1] == 1.0


def test_a_set_with_no_row_stops_the_round_with_its_reasons(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, export={"min_backtracks": 5})
    with pytest.raises(DatasetError, match=r"round 1, shortcut set: no shortcut rows"):
        _iterate(recipe, tmp_path / "it", RecordingTrainer(SPECS))


def test_the_command_prints_the_report_and_refuses_untrainable_models(tmp_path: Path) -> None:
    out = tmp_path / "it"
    recipe = _recipe(tmp_path)
    report, _ = _iterate(recipe, out, RecordingTrainer(SPECS))
    # Every step is done, so the command (whose trainer is TRL) trains nothing.
    result = runner.invoke(app, ["iterate", str(recipe), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "held-out evaluation" in result.stdout and "report in" in result.stdout
    result = runner.invoke(app, ["iterate", str(recipe), "--out", str(out), "--json"])
    assert IterateReport.model_validate_json(result.stdout) == report

    untrainable = _recipe(tmp_path, training={"max_steps": 1})  # starts from the policy
    result = runner.invoke(app, ["iterate", str(untrainable), "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, ConfigError)
    assert "cannot train 'function:test_iterate:base_model'" in str(result.exception)
    assert not (tmp_path / "x").exists()  # refused before any work


# -- on the embedded model --------------------------------------------------------------------


@pytest.mark.embedded
def test_two_rounds_train_the_embedded_model(tmp_path: Path) -> None:
    """TRL for real: two rounds of one-step training, the second from the first's model
    (one arm, so two trainings: about 35 s on two cores)."""
    pytest.importorskip("trl")
    recipe = _recipe(
        tmp_path,
        dataset="rg:basic_arithmetic?size=2&seed={round}",
        eval_dataset="rg:basic_arithmetic?size=2&seed=100",
        export={"sets": ["journey"]},
        training={
            "model": "embedded",
            "max_steps": 1,
            "batch_size": 2,
            "max_length": 64,
            "arms": {"journey": ["journey"]},
        },
        eval={"max_new_tokens": 8},
        next_policy="none",  # the synthesis keeps its function: policy
    )
    out = tmp_path / "it"
    result = runner.invoke(app, ["iterate", str(recipe), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = IterateReport.model_validate_json(result.stdout)
    first, second = report.rounds
    for entry in report.rounds:
        (model,) = entry.models
        summary = json.loads((Path(model.directory) / "journey-train.json").read_text())
        assert summary["steps"] == 1 and model.spec == f"hf:{model.directory}"
        assert [row.name for row in entry.evals] == ["base", "journey"]
    assert first.models[0].start == "embedded"
    assert second.models[0].start == "embedded"  # next_policy none: from the start again
    assert second.evals[0].directory == str(out / "round-1/eval/base")


def test_cumulative_exports_read_every_round_so_far(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, export={"cumulative": True})
    report, _ = _iterate(recipe, tmp_path / "it", RecordingTrainer(SPECS))
    problems = {
        r.problem for n in (1, 2) for r in load_problems(TRAIN_SPEC.format(round=n)).records
    }
    assert [s.rows for s in report.rounds[0].sets] == [6, 6]
    # A problem both rounds drew is exported once (round 1's session).
    assert [s.rows for s in report.rounds[1].sets] == [len(problems)] * 2
    card = json.loads((tmp_path / "it/round-2/exports/journey.card.json").read_text())
    assert card["source_runs"] == [str(tmp_path / f"it/round-{n}/synth") for n in (1, 2)]
