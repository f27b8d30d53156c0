"""`EvalRunner`: generate one answer per problem, grade it, append its record; resumable.

An evaluation directory holds:

    eval.json       the manifest: model and generation settings (a re-run with others
                    is refused; `journey.runs.manifest`), the cache, prices and budget
    records.jsonl   one `EvalRecord` per graded problem, appended as each finishes
    metrics.json    `EvalMetrics` over the selected problems, rewritten at the end
    cache/          the response cache, unless `--cache` names another
    cache.json      what the cache did, summed over invocations
    spend.json      the tokens that reached the model, summed over invocations

Requests go to the model client concurrently (up to `batch_size` at once): the
embedded/HF client batches concurrent requests into one `generate` call, and an
OpenAI-compatible server serves them in parallel. A re-run skips the problems that
already have a record, so a killed evaluation resumes where it stopped; a problem
whose generation failed gets no record, is counted, and is retried next time. When
`max_consecutive_errors` problems in a row fail (the endpoint is down, its URL wrong,
a quota spent), the evaluation stops with `EndpointDownError` instead of failing
every problem left, and resumes when run again.

The model's requests go through the response cache and are metered
(`journey.runs.spend.RequestAccounts`, as synthesis's roles; the one role here is
`model`): an evaluation started again in a new directory on a warm cache asks the model
nothing. A spent budget starts no new problem; those in flight finish and are recorded,
and the metrics say why the run stopped (`stopped`); running again does the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Unpack

from autogen_core.models import ChatCompletionClient, UserMessage
from pydantic import ValidationError

from journey.agents.backends.spec import create_client, parse_model_spec
from journey.errors import ConfigError
from journey.evaluation._model_client import accounted_model
from journey.evaluation.grading import grade_output
from journey.evaluation.metrics import (
    DEFAULT_BACKTRACK_PHRASES,
    DEFAULT_REFLECTION_KEYWORDS,
    EvalMetrics,
    EvalRecord,
    PhraseCounter,
    compute_metrics,
)
from journey.exports.rows import user_prompt
from journey.problems.dataset import ProblemRecord
from journey.problems.procedural import dataset_scorer
from journey.runs.files import read_appended, write_atomic
from journey.runs.jobs import AppendedResults, ControlKeywords, JobControls, StreakStop, run_job
from journey.runs.manifest import Manifest, absent_as_default, read_manifest
from journey.runs.request_accounts import (
    SPEND_SETTINGS,
    RequestAccounts,
    SpendReport,
    SpendSettings,
)

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "METRICS_FILE",
    "MODEL_ROLE",
    "RECORDS_FILE",
    "EvalOptions",
    "EvalRunner",
    "load_records",
    "open_manifest",
    "recorded_model",
    "write_metrics",
]

logger = logging.getLogger(__name__)

# The exports' user turn, so a model is evaluated on the prompt it was trained on.
DEFAULT_PROMPT_TEMPLATE = user_prompt("{problem}")
RECORDS_FILE = "records.jsonl"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "eval.json"
MODEL_ROLE = "model"
"""The role of the one model `journey eval` and `journey pairs` ask, as their cost, cache
counts and `spend.json` name it."""


@dataclass(frozen=True)
class EvalOptions:
    """How an evaluation generates and what it counts."""

    model: str = field(
        default="embedded",
        metadata={
            "help": "Model spec (see 'journey models'): embedded, hf:DIR (a trained output)..."
        },
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Generation limit per answer."})
    batch_size: int = field(default=8, metadata={"help": "Requests sent to the model at once."})
    temperature: float = field(default=0.0, metadata={"help": "0 decodes greedily."})
    prompt_template: str = field(
        default=DEFAULT_PROMPT_TEMPLATE,
        metadata={"help": "The user message; {problem} is replaced by the problem."},
    )
    reflection_keywords: tuple[str, ...] = field(
        default=DEFAULT_REFLECTION_KEYWORDS, metadata={"help": "Counted as reflection."}
    )
    backtrack_phrases: tuple[str, ...] = field(
        default=DEFAULT_BACKTRACK_PHRASES, metadata={"help": "Counted as backtracking."}
    )
    spending: SpendSettings = field(
        default_factory=SpendSettings,
        metadata={"help": "The response cache, the prices and the budget of the requests."},
    )

    def __post_init__(self) -> None:
        parse_model_spec(self.model)  # raises ModelSpecError on a bad spec
        self.spending.meter({MODEL_ROLE: self.model})  # a USD budget needs the model's price
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {self.max_new_tokens!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature!r}")
        if "{problem}" not in self.prompt_template:
            raise ConfigError(
                f"prompt template must contain {{problem}}, got {self.prompt_template!r}"
            )

    def manifest(self, dataset: str) -> dict[str, object]:
        """What `eval.json` records; all but the dataset file must not change on resume."""
        return {
            "model": self.model,
            "dataset": dataset,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "prompt_template": self.prompt_template,
        }

    def client(self) -> ChatCompletionClient:
        """The client the model spec names, batching up to `batch_size` requests locally."""
        spec = parse_model_spec(self.model).with_default("max_batch_size", self.batch_size)
        return create_client(spec)


def recorded_model(directory: Path) -> str:
    """The model spec an evaluation directory's latest run used ("?" when unrecorded)."""
    manifest = read_manifest(directory / MANIFEST_FILE)
    return "?" if manifest is None else str(manifest.current.get("model", "?"))


def load_records(directory: Path) -> list[EvalRecord]:
    """The records of an evaluation directory, in file order.

    A last line cut off by a killed run is dropped (and cut from the file, so that
    appending goes on cleanly); a bad line elsewhere is logged and skipped.
    """
    return read_appended(directory / RECORDS_FILE, EvalRecord)


def open_manifest(out: Path, options: EvalOptions, dataset: str, *, force: bool) -> None:
    """Record the settings in `out`'s `eval.json`, or refuse those of another evaluation.

    Raises:
        ConfigError: `out` holds an evaluation made with other settings (without force).
    """
    settings = {**options.manifest(dataset), **options.spending.record()}
    defaults = absent_as_default(EvalOptions().manifest(dataset))
    manifest = Manifest("eval", settings, free={"dataset", *SPEND_SETTINGS}, read_as_today=defaults)
    manifest.open(out / MANIFEST_FILE, subject=f"{out} holds an evaluation", force=force)


def write_metrics(
    out: Path,
    problems: Sequence[ProblemRecord],
    records: Mapping[str, EvalRecord],
    options: EvalOptions,
    *,
    dataset: str,
    errors: int,
    wall_seconds: float,
    spend: SpendReport,
) -> EvalMetrics:
    """The metrics over the records of `problems`, with what the requests cost, written to
    `out`'s `metrics.json` (by one process, or by the merge of a run's units).

    Args:
        records: Every record of `out`, by problem id.
        errors: Problems whose generation failed in this run.
        wall_seconds: This run's wall time; the earlier runs' of `out` is added to it.
        spend: What this run's requests did and cost.
    """
    selected = [records[p.session_id] for p in problems if p.session_id in records]
    wall_seconds += _earlier_wall_seconds(out)
    metrics = compute_metrics(
        selected, model=options.model, dataset=dataset, errors=errors, wall_seconds=wall_seconds
    )
    metrics = metrics.model_copy(update=dict(spend))
    write_atomic(out / METRICS_FILE, metrics.model_dump_json(indent=2) + "\n")
    return metrics


def _earlier_wall_seconds(out: Path) -> float:
    """What the runs of `out` so far took, as its metrics say (0 when it has none yet)."""
    try:
        return EvalMetrics.model_validate_json((out / METRICS_FILE).read_bytes()).wall_seconds
    except (OSError, ValidationError):
        return 0.0  # no run finished here (a killed run writes none): nothing to add


class EvalRunner:
    """Evaluates a model on problems into a resumable directory.

    Args:
        options: Model and generation settings.
        client: Use this client instead of building one from `options.model` (tests,
            or a client shared with other work); it is not closed.
        **controls: `progress` (told of each problem graded), `force` and
            `max_consecutive_errors` (problems failed in a row), as `ControlKeywords`.

    Raises:
        ConfigError: `max_consecutive_errors` is negative.
    """

    def __init__(
        self,
        options: EvalOptions,
        *,
        client: ChatCompletionClient | None = None,
        **controls: Unpack[ControlKeywords],
    ) -> None:
        self.options = options
        self._client = client
        self._controls = JobControls.of(**controls)
        self._reflections = PhraseCounter(options.reflection_keywords)
        self._backtracks = PhraseCounter(options.backtrack_phrases)

    async def run(
        self, out: Path, problems: Sequence[ProblemRecord], *, dataset: str
    ) -> EvalMetrics:
        """Grade every problem that has no record in `out` yet, then write metrics.

        Returns:
            Metrics over `problems` (records from earlier runs included).

        Raises:
            ConfigError: `out` holds an evaluation made with other settings (without force).
            EndpointDownError: `max_consecutive_errors` problems in a row failed; the
                records so far are kept, and running again resumes.
        """
        started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        open_manifest(out, self.options, dataset, force=self._controls.force)
        done = {record.id: record for record in load_records(out)}
        todo = [p for p in problems if p.session_id not in done]
        errors = 0
        accounts = RequestAccounts(self.options.spending, {MODEL_ROLE: self.options.model}, out)
        with closing(accounts):
            if todo:
                new, errors = await self._generate(accounts, todo, out)
                done.update((record.id, record) for record in new)
        left = sum(p.session_id not in done for p in problems)
        return write_metrics(
            out,
            problems,
            done,
            self.options,
            dataset=dataset,
            errors=errors,
            wall_seconds=time.perf_counter() - started,
            spend=accounts.report(left, "problem", out),
        )

    async def _generate(
        self, accounts: RequestAccounts, todo: Sequence[ProblemRecord], out: Path
    ) -> tuple[list[EvalRecord], int]:
        """Load the model and grade `todo` through the cache and the meter."""
        loading = accounted_model(self._client, self.options.client, accounts, MODEL_ROLE)
        async with loading as client:
            return await self._generate_all(client, todo, out, halted=accounts.halted)

    async def _generate_all(
        self,
        client: ChatCompletionClient,
        todo: Sequence[ProblemRecord],
        out: Path,
        *,
        halted: Callable[[], bool],
    ) -> tuple[list[EvalRecord], int]:
        with AppendedResults[EvalRecord](out / RECORDS_FILE, log=logger) as results:
            records = results.records

            def accuracy() -> dict[str, str]:
                right = sum(r.correct for r in records)
                return {"accuracy": f"acc {right / len(records):.1%}" if records else ""}

            await run_job(
                todo,
                results.saving(
                    lambda problem: self._evaluate(client, problem),
                    name=lambda problem: f"problem {problem.session_id}",
                ),
                concurrency=self.options.batch_size,
                controls=self._controls,
                fields=accuracy,
                halted=halted,
                stop_line=lambda stop: self._stop_line(stop, out),
            )
        return records, results.errors

    def _stop_line(self, stop: StreakStop, out: Path) -> str:
        """One line: the model spec that kept failing and its last error."""
        return (
            f"stopped after {stop.count} problems in a row failed: the model "
            f"{self.options.model} failed with {stop.error}; fix it and run the same command "
            f"again to resume {out}"
        )

    async def _evaluate(self, client: ChatCompletionClient, problem: ProblemRecord) -> EvalRecord:
        prompt = self.options.prompt_template.replace("{problem}", problem.problem)
        started = time.perf_counter()
        result = await client.create(
            [UserMessage(content=prompt, source="user")],
            extra_create_args={
                "max_tokens": self.options.max_new_tokens,
                "temperature": self.options.temperature,
            },
        )
        output = result.content if isinstance(result.content, str) else str(result.content)
        grade = grade_output(output, problem.answer, dataset_scorer(problem.meta))
        level = problem.meta.get("level")
        subject = problem.meta.get("subject")
        return EvalRecord(
            id=problem.session_id,
            index=problem.index,
            line=problem.line,
            problem=problem.problem,
            gold=problem.answer,
            output=output,
            predicted=grade.predicted,
            correct=grade.correct,
            level=None if level is None else str(level),
            subject=None if subject is None else str(subject),
            output_tokens=result.usage.completion_tokens,
            finish_reason=str(result.finish_reason),
            seconds=round(time.perf_counter() - started, 3),
            reflections=self._reflections.count(output),
            backtracks=self._backtracks.count(output),
        )
