"""One round of `journey iterate`: synthesise, export, train, sample pairs, evaluate.

A round lives in `OUT/round-K/`:

    synth/                  the synthesis run (`journey synth`), with the round's policy
    exports/SET.jsonl       each SFT set (`journey export`), with its card
    exports/matched/        each arm's rows, matched to the smallest arm (`training.match`)
    exports/pairs-NAME.jsonl pairs from a model's own samples (`journey pairs`), if DPO
    models/NAME/            each arm's model (`journey train sft`, its phases inside),
                            one per seed with `training.seeds` (`ARM-seedS`)
    models/ARM-dpo/         the arm's model after DPO on its pairs
    eval/NAME/              each model on the held-out problems (`journey eval`), and
                            the round's starting policy as `base`

Each step is skipped when its marker says it is done with the same inputs
(`iterate_steps`); synthesis, pairs and evaluation resume themselves when they run.
An evaluation with the very inputs of an earlier one (the model a round starts from is
the one the round before trained and evaluated) is not run twice: the round points to
the earlier folder. Every step's wall time is kept in its marker, so a resumed round
still reports what each step cost.
"""

from __future__ import annotations

import asyncio
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from journey.evaluation.grading import grade_output
from journey.evaluation.pairs import PairsOptions
from journey.evaluation.pairs_sampling import PairsSampler
from journey.evaluation.runner import EvalOptions, EvalRunner
from journey.exports.export import EmptyExportError, card_path, export_runs
from journey.exports.token_counts import TokenCounter, count_tokens_cheaply, embedded_token_counter
from journey.longthought import LongThoughtOptions
from journey.problems import HeldOutProblems
from journey.runs.synthesis import SynthesisRunner
from journey.training.iterate_arms import ArmTraining, dpo_training, matched_data, sft_trainings
from journey.training.iterate_recipe import IterateRecipe
from journey.training.iterate_records import (
    IterateHooks,
    LoadedProblems,
    RoundProblems,
    RoundRecord,
    TrainedModel,
    load_choice,
    model_name,
)
from journey.training.iterate_settings import BASE
from journey.training.iterate_steps import (
    MARKER_FILE,
    ModelRef,
    Step,
    file_digest,
    only_more_problems,
)
from journey.training.iterate_train import Trainer, TrainJob
from journey.training.recipe import plan_phases

__all__ = [
    "IterateHooks",
    "LoadedProblems",
    "RoundRecord",
    "RoundRunner",
    "TrainedModel",
    "load_choice",
]

_FREE_SYNTH_SETTINGS = ("concurrency", "policy_concurrency", "critic_concurrency", "cache")
"""Synthesis settings that never change what a session says: not a step's inputs."""


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
        self._held_out = RoundProblems(recipe.eval_dataset, hooks.log)

    def _say(self, step: Step, what: str) -> None:
        self.hooks.log(f"{step.name}: {what}")

    @cached_property
    def _count_tokens(self) -> TokenCounter:
        embedded = self.recipe.training.tokenizer == "embedded"
        return embedded_token_counter() if embedded else count_tokens_cheaply

    def _held_out_inputs(self) -> dict[str, Any]:
        """What a step reading the training problems also depends on: the problems left out
        (nothing when none are, so the inputs of other recipes stay as they were)."""
        if not self.recipe.exclude_held_out:
            return {}
        return {"left_out": self.recipe.eval_dataset.record()}

    def _held_out_problems(self) -> HeldOutProblems | None:
        """The held-out set an export leaves out: a run can hold sessions of problems its
        round's dataset no longer has (a copied, merged or grown run)."""
        if not self.recipe.exclude_held_out:
            return None
        records = self._held_out.problems.records
        return HeldOutProblems.of(self.recipe.eval_dataset.source, (r.problem for r in records))

    def run(self, number: int, policy: ModelRef, critic: ModelRef, start: ModelRef) -> RoundRecord:
        """Run round `number` with this policy and critic; its arms start from `start`."""
        root = self.out / f"round-{number}"
        held_out = self._held_out if self.recipe.exclude_held_out else None
        choice = self.recipe.dataset.for_round(number)
        problems = RoundProblems(choice, self.hooks.log, held_out=held_out)
        options = self.recipe.synth.options(policy.spec, critic.spec)
        training = self.recipe.training
        record = RoundRecord(
            number,
            root,
            policy,
            critic,
            tuple(options.models),
            synth=root / "synth",
            seeds=training.runs,
        )
        self._synth(record, problems)
        self.synth_runs.append(record.synth)
        runs = list(self.synth_runs) if self.recipe.export.cumulative else [record.synth]
        for name in self.recipe.export.sets:
            record.sets[name] = self._export(record, name, runs)
        folder = root / "exports" / "matched"
        data = {
            seed: matched_data(
                training,
                record.sets,
                seed=seed,
                count=self._count_tokens,
                folder=folder,
                round_number=number,
            )
            for seed in training.runs
        }
        for planned in sft_trainings(training, data, start):
            record.models[planned.name] = self._train(record, planned)
        self._dpo(record, problems)
        if self.recipe.eval.base:
            record.evals[BASE] = self._evaluate(record, BASE, policy)
        for model in record.models.values():
            record.evals[model.name] = self._evaluate(record, model.name, model.ref)
        return record

    def _dpo(self, record: RoundRecord, problems: RoundProblems) -> None:
        """DPO of each `training.dpo` arm's SFT models on pairs of their own samples."""
        dpo = self.recipe.training.dpo
        if dpo is None:
            return
        for arm in dpo.arms:
            for seed in self.recipe.training.runs:
                sft = record.models[model_name(arm, seed)]
                pairs = self._pairs(record, sft, problems)
                if pairs is None:
                    record.notes.append(f"{sft.name}: no DPO (its samples gave no pair)")
                    continue
                record.pairs[sft.name] = pairs
                planned = dpo_training(dpo, arm, seed, sft.ref, pairs)
                record.models[planned.name] = self._train(record, planned)

    # -- the steps -------------------------------------------------------------------------

    def _synth(self, record: RoundRecord, problems: RoundProblems) -> None:
        options = self.recipe.synth.options(record.policy.spec, record.critic.spec)
        settings = {k: v for k, v in options.record().items() if k not in _FREE_SYNTH_SETTINGS}
        models = {"policy": record.policy, "critic": record.critic}
        step = Step(
            f"round {record.number} · synth",
            record.synth / MARKER_FILE,
            {
                "dataset": problems.choice.record(),
                **self._held_out_inputs(),
                "settings": settings,
                "models": {role: models[role].record() for role in record.roles},
            },
            outputs=[record.synth / "sessions.jsonl"],
            out=self.out,
            work=[record.synth],
            keeps_work=only_more_problems,  # more problems resume the sessions done
        )
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
            _keep_seconds(record, "synth", marker.result)
            return
        step.begin()
        started = time.monotonic()
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
        seconds = time.monotonic() - started
        step.finish({"sessions": report.sessions, "solved": report.solved, "seconds": seconds})
        record.seconds["synth"] = seconds

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
                **self._held_out_inputs(),
                **_writer_inputs(options.writer),
            },
            outputs=[file, card_path(file)],
            out=self.out,
        )
        if step.done() is not None:
            self._say(step, "done before")
            return file
        step.begin()
        try:
            card = export_runs(runs, file, options, held_out=self._held_out_problems())
        except EmptyExportError as error:
            hint = "" if self.recipe.export.cumulative else " (or export.cumulative: true)"
            raise EmptyExportError(f"round {record.number}, {name} set: {error}{hint}") from None
        self._say(step, f"{card.rows} rows from {card.sessions_exported} sessions")
        step.finish({"rows": card.rows})
        return file

    def _train(self, record: RoundRecord, planned: ArmTraining) -> TrainedModel:
        out = record.root / "models" / planned.name
        phases = tuple(plan_phases(planned.start.spec, out, planned.specs))
        step = Step(
            f"round {record.number} · train {planned.name}",
            out / MARKER_FILE,
            {
                "kind": planned.kind,
                "start": planned.start.record(),
                "values": planned.values,
                "phases": [
                    {"data": str(p.data), "digest": file_digest(p.data), "settings": p.settings}
                    for p in phases
                ],
            },
            outputs=[out],
            out=self.out,
        )
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
        else:
            step.begin()
            started = time.monotonic()
            job = TrainJob(
                planned.name,
                planned.kind,
                out,
                phases,
                planned.values,
                progress=self.hooks.training_progress,
            )
            spec = self.trainer(job, self.hooks.log)
            seconds = time.monotonic() - started
            marker = step.finish({"spec": spec, "seconds": seconds, **planned.counts()})
            self._say(step, f"saved as {spec}")
        _keep_seconds(record, f"train {planned.name}", marker.result)
        return TrainedModel(
            planned.name,
            planned.kind,
            ModelRef(str(marker.result["spec"]), marker.digest),
            out,
            planned.start.spec,
            planned.sets,
            arm=planned.arm,
            seed=planned.seed,
            rows=marker.result.get("rows"),
            tokens=marker.result.get("tokens"),
            seconds=marker.result.get("seconds"),
        )

    def _pairs(
        self, record: RoundRecord, model: TrainedModel, problems: RoundProblems
    ) -> Path | None:
        dpo = self.recipe.training.dpo
        assert dpo is not None
        file = record.root / "exports" / f"pairs-{model.name}.jsonl"
        options = PairsOptions(model=model.ref.spec, **dpo.pairs.model_dump())
        step = Step(
            f"round {record.number} · pairs {model.name}",
            file.with_name(f"pairs-{model.name}.step.json"),
            {
                "model": model.ref.record(),
                "dataset": problems.choice.record(),
                **self._held_out_inputs(),
                "sampling": options.manifest(),
                "pairs_per_problem": options.pairs_per_problem,
            },
            outputs=[file, card_path(file)],
            out=self.out,
            work=sorted(file.parent.glob(f"{file.stem}.*")),  # samples, cache, card...
        )
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
            return file if marker.result.get("rows") else None
        step.begin()
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
            out=self.out,
            work=[directory],
        )
        earlier = self._evaluated.get(step.digest)
        if earlier is not None and earlier != directory:
            self._say(step, f"the same as {earlier.relative_to(self.out)}")
            return earlier
        marker = step.done()
        if marker is not None:
            self._say(step, "done before")
            _keep_seconds(record, f"eval {name}", marker.result)
        else:
            step.begin()
            loaded = self._held_out.problems
            runner = EvalRunner(options, progress=self.hooks.evaluation(), force=self.force)
            metrics = asyncio.run(runner.run(directory, loaded.records, dataset=loaded.name))
            self._say(step, f"{metrics.correct} of {metrics.problems} correct")
            seconds = metrics.wall_seconds  # a resumed evaluation's earlier runs included
            record.seconds[f"eval {name}"] = seconds
            if not metrics.errors:
                result = {"correct": metrics.correct, "problems": metrics.problems}
                step.finish({**result, "seconds": seconds})
        self._evaluated[step.digest] = directory
        return directory


def _keep_seconds(record: RoundRecord, step: str, result: dict[str, Any]) -> None:
    """A finished step's recorded wall time, into the round's record (if it has one)."""
    seconds = result.get("seconds")
    if isinstance(seconds, int | float):
        record.seconds[step] = float(seconds)


def _writer_inputs(writer: LongThoughtOptions) -> dict[str, Any]:
    """How the long thoughts are written, as an export step's input: the options not at
    their default, so a writer option added to journey changes no step's inputs (a step
    keyed before this rule exports again, to the same rows, and trains nothing again)."""
    default = LongThoughtOptions().record()
    changed = {k: v for k, v in writer.record().items() if v != default[k]}
    return {"writer": changed} if changed else {}
