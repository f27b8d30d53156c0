"""One round of `journey iterate`: synthesise, export, train, sample pairs, evaluate.

A round lives in `OUT/round-K/`:

    synth/                  the synthesis run (`journey synth`), with the round's policy
    exports/SET.jsonl       each SFT set (`journey export`), with its card
    exports/pairs-ARM.jsonl pairs from the arm's own samples (`journey pairs`), if DPO
    models/ARM/             each arm's model (`journey train sft`, its phases inside)
    models/ARM-dpo/         the arm's model after DPO on its pairs
    eval/NAME/              each model on the held-out problems (`journey eval`), and
                            the round's starting policy as `base`

Each step is skipped when its marker says it is done with the same inputs
(`iterate_steps`); synthesis, pairs and evaluation resume themselves when they run.
An evaluation with the very inputs of an earlier one (the model a round starts from is
the one the round before trained and evaluated) is not run twice: the round points to
the earlier folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from journey.errors import ConfigError
from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.pairs_sampling import PairsSampler
from journey.evaluation.runner import EvalOptions, EvalRunner
from journey.exports.export import EmptyExportError, card_path, export_runs
from journey.problems.dataset import ProblemRecord, issue_lines, load_problems
from journey.runs.jobs import JobProgress, NoProgress
from journey.runs.synthesis import SynthesisRunner
from journey.training.iterate_recipe import IterateRecipe
from journey.training.iterate_settings import BASE, DatasetChoice
from journey.training.iterate_steps import MARKER_FILE, ModelRef, Step, file_digest, inputs_digest
from journey.training.iterate_train import Log, Trainer, TrainJob
from journey.training.phases import TrainKind
from journey.training.recipe import PhaseSpec, plan_phases

__all__ = ["IterateHooks", "LoadedProblems", "RoundRecord", "RoundRunner", "TrainedModel"]

_FREE_SYNTH_SETTINGS = ("concurrency", "policy_concurrency", "critic_concurrency", "cache")
"""Synthesis settings that never change what a session says: not a step's inputs."""


def _quiet(_: str) -> None:
    """Logs nothing."""


@dataclass(frozen=True)
class IterateHooks:
    """Where an iteration reports: a line per step, and each long job's progress."""

    log: Log = field(default=_quiet, metadata={"help": "Told one line per step."})
    synthesis: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each synthesis."}
    )
    evaluation: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each evaluation."}
    )
    pairs: Callable[[], JobProgress] = field(
        default=NoProgress, metadata={"help": "A progress for each pairs sampling."}
    )


@dataclass(frozen=True)
class LoadedProblems:
    """A dataset choice's problems, and how its runs record where they came from."""

    records: list[ProblemRecord]
    source: dict[str, Any]
    """The `dataset` section of a synthesis run's `run.json`."""
    name: str
    """The dataset as evaluation and pairs cards name it."""
    issues: int


def load_choice(choice: DatasetChoice, log: Log) -> LoadedProblems:
    """Read (or generate) the problems of `choice`, logging the lines skipped.

    Raises:
        ConfigError: the selection holds no problem, or is malformed.
        DatasetError: the dataset cannot be read.
    """
    data = load_problems(
        choice.source,
        problem_field=choice.problem_field,
        answer_field=choice.answer_field,
        split=choice.split,
    )
    for line in issue_lines(data.issues):
        log(f"skipped {line}")
    records = data.select(offset=choice.offset, limit=choice.limit)
    if not records:
        raise ConfigError(f"no problems selected from {choice.source!r}")
    source = {
        **(data.source.record() if data.source else {"path": choice.source}),
        "problem_field": choice.problem_field,
        "answer_field": choice.answer_field,
        "offset": choice.offset,
        "limit": choice.limit,
        "shard": None,
        "problems": len(records),
    }
    return LoadedProblems(records, source, str(data.source or choice.source), len(data.issues))


@dataclass(frozen=True)
class TrainedModel:
    """A model a round trained."""

    name: str
    kind: TrainKind
    ref: ModelRef
    out: Path
    start: str
    """The spec its first phase started from."""
    data: tuple[str, ...]
    """What each phase trained on: a set name, or `pairs`."""


@dataclass
class RoundRecord:
    """Where one round's steps left their results."""

    number: int
    root: Path
    policy: ModelRef
    critic: ModelRef
    roles: tuple[str, ...]
    """The roles its strategy asks (no critic for propose-critique)."""
    synth: Path
    sets: dict[str, Path] = field(default_factory=dict)
    pairs: dict[str, Path] = field(default_factory=dict)
    models: dict[str, TrainedModel] = field(default_factory=dict)
    evals: dict[str, Path] = field(default_factory=dict)
    """By model name (`base`, an arm, ARM-dpo): its evaluation folder."""
    notes: list[str] = field(default_factory=list)

    def final(self, arm: str) -> TrainedModel:
        """The arm's last model: after DPO where DPO ran, else its SFT model."""
        return self.models.get(f"{arm}-dpo", self.models[arm])


class _Round:
    """The problems of one round, read only when a step needs them."""

    def __init__(self, choice: DatasetChoice, log: Log) -> None:
        self.choice = choice
        self._log = log

    @cached_property
    def problems(self) -> LoadedProblems:
        return load_choice(self.choice, self._log)


class RoundRunner:
    """Runs rounds of one iteration; remembers what was evaluated across them."""

    def __init__(
        self,
        recipe: IterateRecipe,
        out: Path,
        *,
        trainer: Trainer,
        hooks: IterateHooks,
        force: bool = False,
    ) -> None:
        self.recipe = recipe
        self.out = out
        self.trainer = trainer
        self.hooks = hooks
        self.force = force
        self.synth_runs: list[Path] = []
        self._evaluated: dict[str, Path] = {}
        self._held_out = _Round(recipe.eval_dataset, hooks.log)

    def _say(self, step: Step, what: str) -> None:
        self.hooks.log(f"{step.name}: {what}")

    def run(self, number: int, policy: ModelRef, critic: ModelRef, start: ModelRef) -> RoundRecord:
        """Run round `number` with this policy and critic; its arms start from `start`."""
        root = self.out / f"round-{number}"
        problems = _Round(self.recipe.dataset.for_round(number), self.hooks.log)
        options = self.recipe.synth.options(policy.spec, critic.spec)
        record = RoundRecord(
            number, root, policy, critic, tuple(options.models), synth=root / "synth"
        )
        self._synth(record, problems)
        self.synth_runs.append(record.synth)
        runs = list(self.synth_runs) if self.recipe.export.cumulative else [record.synth]
        for name in self.recipe.export.sets:
            record.sets[name] = self._export(record, name, runs)
        values = self.recipe.training.options()
        for arm, phases in self.recipe.training.arms.items():
            specs = [PhaseSpec(record.sets[p.set], p.options()) for p in phases]
            sets = tuple(p.set for p in phases)
            record.models[arm] = self._train(record, arm, "sft", start, specs, sets, values)
        dpo = self.recipe.training.dpo
        for arm in dpo.arms if dpo is not None else ():
            assert dpo is not None
            pairs = self._pairs(record, arm, record.models[arm], problems)
            if pairs is None:
                record.notes.append(f"{arm}: no DPO (its samples gave no pair)")
                continue
            record.pairs[arm] = pairs
            base = record.models[arm].ref
            record.models[f"{arm}-dpo"] = self._train(
                record, f"{arm}-dpo", "dpo", base, [PhaseSpec(pairs, {})], ("pairs",), dpo.options()
            )
        if self.recipe.eval.base:
            record.evals[BASE] = self._evaluate(record, BASE, policy)
        for model in record.models.values():
            record.evals[model.name] = self._evaluate(record, model.name, model.ref)
        return record

    # -- the steps -------------------------------------------------------------------------

    def _synth(self, record: RoundRecord, problems: _Round) -> None:
        options = self.recipe.synth.options(record.policy.spec, record.critic.spec)
        settings = {k: v for k, v in options.record().items() if k not in _FREE_SYNTH_SETTINGS}
        models = {"policy": record.policy, "critic": record.critic}
        step = Step(
            f"round {record.number} · synth",
            record.synth / MARKER_FILE,
            {
                "dataset": problems.choice.record(),
                "settings": settings,
                "models": {role: models[role].record() for role in record.roles},
            },
            outputs=[record.synth / "sessions.jsonl"],
        )
        if step.done() is not None:
            self._say(step, "done before")
            return
        step.clear()
        loaded = problems.problems
        runner = SynthesisRunner(options, progress=self.hooks.synthesis(), force=self.force)
        report = asyncio.run(
            runner.run(
                record.synth, loaded.records, dataset=loaded.source, dataset_issues=loaded.issues
            )
        )
        self._say(step, f"{report.solved} of {report.finished} sessions solved")
        if report.crashed or report.errors or report.finished < report.sessions:
            self._say(step, "not every session ended well; run again to resume them")
            return
        step.finish({"sessions": report.sessions, "solved": report.solved})

    def _export(self, record: RoundRecord, name: str, runs: list[Path]) -> Path:
        file = record.root / "exports" / f"{name}.jsonl"
        options = self.recipe.export.options(name)
        step = Step(
            f"round {record.number} · export {name}",
            file.with_name(f"{name}.step.json"),
            {
                "format": str(options.format),
                "layout": options.layout,
                "transcript": options.transcript,
                "filters": options.filters(),
                "runs": {str(run): file_digest(run / "sessions.jsonl") for run in runs},
            },
            outputs=[file, card_path(file)],
        )
        if step.done() is not None:
            self._say(step, "done before")
            return file
        step.clear()
        try:
            card = export_runs(runs, file, options)
        except EmptyExportError as error:
            hint = "" if self.recipe.export.cumulative else " (or export.cumulative: true)"
            raise EmptyExportError(f"round {record.number}, {name} set: {error}{hint}") from None
        self._say(step, f"{card.rows} rows from {card.sessions_exported} sessions")
        step.finish({"rows": card.rows})
        return file

    def _train(
        self,
        record: RoundRecord,
        name: str,
        kind: TrainKind,
        start: ModelRef,
        specs: list[PhaseSpec],
        data: tuple[str, ...],
        values: dict[str, Any],
    ) -> TrainedModel:
        out = record.root / "models" / name
        phases = tuple(plan_phases(start.spec, out, specs))
        step = Step(
            f"round {record.number} · train {name}",
            out / MARKER_FILE,
            {
                "kind": kind,
                "start": start.record(),
                "values": values,
                "phases": [
                    {"data": str(p.data), "digest": file_digest(p.data), "settings": p.settings}
                    for p in phases
                ],
            },
            outputs=[out],
        )
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
        else:
            step.clear()
            spec = self.trainer(TrainJob(name, kind, out, phases, values), self.hooks.log)
            marker = step.finish({"spec": spec})
            self._say(step, f"saved as {spec}")
        ref = ModelRef(str(marker.result["spec"]), marker.digest)
        return TrainedModel(name, kind, ref, out, start.spec, data)

    def _pairs(
        self, record: RoundRecord, arm: str, model: TrainedModel, problems: _Round
    ) -> Path | None:
        dpo = self.recipe.training.dpo
        assert dpo is not None
        file = record.root / "exports" / f"pairs-{arm}.jsonl"
        options = PairsOptions(model=model.ref.spec, **dpo.pairs.model_dump())
        step = Step(
            f"round {record.number} · pairs {arm}",
            file.with_name(f"pairs-{arm}.step.json"),
            {
                "model": model.ref.record(),
                "dataset": problems.choice.record(),
                "sampling": options.manifest(),
                "pairs_per_problem": options.pairs_per_problem,
            },
            outputs=[file, card_path(file)],
        )
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
            return file if marker.result.get("rows") else None
        step.clear()
        loaded = problems.problems
        sampler = PairsSampler(
            options, grade=grade_output, progress=self.hooks.pairs(), force=self.force
        )
        card = asyncio.run(sampler.run(file, loaded.records, dataset=loaded.name))
        self._say(step, f"{card.rows} pairs from {card.sessions_exported} problems")
        if not card.failed_requests:
            step.finish({"rows": card.rows})
        return file if card.rows else None

    def _evaluate(self, record: RoundRecord, name: str, model: ModelRef) -> Path:
        directory = record.root / "eval" / name
        settings = self.recipe.eval
        options = EvalOptions(
            model=model.spec,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            temperature=settings.temperature,
        )
        inputs = {
            "model": model.record(),
            "dataset": self.recipe.eval_dataset.record(),
            "max_new_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "prompt_template": options.prompt_template,
        }
        step = Step(
            f"round {record.number} · eval {name}",
            directory / MARKER_FILE,
            inputs,
            outputs=[directory / "metrics.json"],
        )
        earlier = self._evaluated.get(inputs_digest(inputs))
        if earlier is not None and earlier != directory:
            self._say(step, f"the same as {earlier.relative_to(self.out)}")
            return earlier
        if step.done() is not None:
            self._say(step, "done before")
        else:
            step.clear()
            loaded = self._held_out.problems
            runner = EvalRunner(options, progress=self.hooks.evaluation(), force=self.force)
            metrics = asyncio.run(runner.run(directory, loaded.records, dataset=loaded.name))
            self._say(step, f"{metrics.correct} of {metrics.problems} correct")
            if not metrics.errors:
                step.finish({"correct": metrics.correct, "problems": metrics.problems})
        self._evaluated[step.digest] = directory
        return directory
