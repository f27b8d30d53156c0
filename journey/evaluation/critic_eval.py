"""`CriticEvalRunner`: a critic judges step-labelled solutions, step by step; resumable.

The critic is the debate's own: the same `CriticAgent` (prompt, parser, re-asks, label
scoring when the backend has log-probabilities and the mode is `auto` or `score`), shown
each step as a debate shows it (`StepUnderReview`: the problem, the steps before, the
newest step). A gold answer is never shown; as in a synthesis run with gold answers,
`terminate` is not among the actions offered. Judging stops at the first step judged
incorrect, as ProcessBench does; an unreadable verdict keeps the step, as a debate does
(its `continue` fallback), and is counted (`journey.evaluation.critic_metrics`).

A critic evaluation directory holds:

    critic-eval.json       the manifest: the critic and how it judges (a re-run with
                           another is refused unless forced; `journey.runs.manifest`)
    judgements.jsonl       one `CriticRecord` per solution, appended as each finishes
    critic-metrics.json    `CriticEvalMetrics` over the selected solutions, at the end

A re-run skips the solutions that already have a record; a solution whose judging
failed (a request error) gets none, is counted, and runs again next time. After
`max_consecutive_errors` failures in a row the run stops (`EndpointDownError`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Unpack

from autogen_core.models import ChatCompletionClient

from journey.agents import (
    DEFAULT_CRITIC_TOKENS,
    AnswerVerifier,
    CriticAgent,
    CriticMode,
    RolloutJudge,
    RolloutSpec,
    StepJudge,
    StepUnderReview,
    parse_rollout_spec,
)
from journey.agents.backends import create_client, ensure_loaded, parse_model_spec
from journey.errors import ConfigError, DatasetError
from journey.evaluation._model_client import model_client
from journey.evaluation.critic_metrics import (
    CriticEvalMetrics,
    CriticRecord,
    StepJudgement,
    compute_critic_metrics,
)
from journey.problems.step_labels import LabelledSolution
from journey.problems.step_layouts import StepLabelLayout
from journey.protocols import StepVerdict
from journey.runs.files import read_appended, write_atomic
from journey.runs.jobs import AppendedResults, ControlKeywords, JobControls, run_job
from journey.runs.manifest import Manifest, absent_as_default, read_manifest

__all__ = [
    "CRITIC_EVAL_KIND",
    "CriticEvalOptions",
    "CriticEvalRunner",
    "load_critic_records",
    "recorded_critic",
]

logger = logging.getLogger(__name__)

CRITIC_EVAL_KIND = "eval critic"
MANIFEST_FILE = "critic-eval.json"
RECORDS_FILE = "judgements.jsonl"
METRICS_FILE = "critic-metrics.json"


@dataclass(frozen=True)
class CriticEvalOptions:
    """The critic under evaluation and how it judges; recorded in `critic-eval.json`."""

    critic: str = field(
        default="embedded",
        metadata={
            "help": "Model spec of the critic, or rollout:SPEC?n=8 to judge each step by "
            "finishing the solution from it n times (needs gold answers)."
        },
    )
    critic_mode: str = field(
        default="auto",
        metadata={"help": "How the critic decides: auto, generate or score (log-probs)."},
    )
    critic_tokens: int = field(
        default=DEFAULT_CRITIC_TOKENS,
        metadata={
            "help": "Generation limit for one critic verdict, a reasoning critic's thoughts "
            "included (max_tokens in --critic wins)."
        },
    )
    critic_reasks: int = field(
        default=1, metadata={"help": "How often an unreadable verdict is asked again."}
    )
    calibrate: bool = field(
        default=False,
        metadata={"help": "Score mode: calibrate label scores on a content-free step."},
    )
    concurrency: int = field(default=8, metadata={"help": "Solutions judged at once."})
    layout: StepLabelLayout = field(
        default_factory=StepLabelLayout,
        metadata={"help": "Where the parts of a solution lie in a dataset line."},
    )

    def __post_init__(self) -> None:
        parse_model_spec(self.model)  # raises ModelSpecError on a bad spec
        try:
            CriticMode(self.critic_mode)
        except ValueError:
            raise ConfigError(
                f"critic mode {self.critic_mode!r} is not one of auto, generate, score"
            ) from None
        if self.critic_tokens < 1:
            raise ConfigError(f"critic_tokens must be at least 1, got {self.critic_tokens!r}")
        if self.critic_reasks < 0:
            raise ConfigError(f"critic_reasks must be 0 or more, got {self.critic_reasks!r}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {self.concurrency!r}")

    def manifest(self, dataset: str) -> Manifest:
        """The run as `critic-eval.json` records it; only the dataset file and the
        concurrency may change on resume, and a setting an older run lacks reads as its
        default."""
        defaults = absent_as_default(CriticEvalOptions().settings(dataset))
        return Manifest(
            CRITIC_EVAL_KIND,
            self.settings(dataset),
            free={"dataset", "concurrency"},
            read_as_today=defaults,
        )

    def settings(self, dataset: str) -> dict[str, Any]:
        """The settings `critic-eval.json` records."""
        return {
            "critic": self.critic_name,
            "critic_mode": self.critic_mode,
            "critic_tokens": self.critic_tokens,
            "critic_reasks": self.critic_reasks,
            "calibrate": self.calibrate,
            "layout": self.layout.record(),
            "dataset": dataset,
            "concurrency": self.concurrency,
        }

    @property
    def rollout(self) -> RolloutSpec | None:
        """The rollout judge `critic` names; None: a critic agent."""
        return parse_rollout_spec(self.critic)

    @property
    def model(self) -> str:
        """The spec of the model that judges (a rollout judge's completing model)."""
        rollout = self.rollout
        return self.critic if rollout is None else rollout.model

    @property
    def critic_name(self) -> str:
        """The judge as records and reports name it: its spec, normalised."""
        rollout = self.rollout
        model = str(parse_model_spec(self.model))
        return model if rollout is None else str(replace(rollout, model=model))

    def client(self) -> ChatCompletionClient:
        """The client the spec names, batching a local model's requests by `concurrency`
        (times the completions per step, for a rollout judge)."""
        rollout = self.rollout
        batch = self.concurrency * (1 if rollout is None else rollout.settings.samples)
        spec = parse_model_spec(self.model).with_default("max_batch_size", batch)
        return create_client(spec)

    def agent(self, client: ChatCompletionClient) -> StepJudge:
        rollout = self.rollout
        if rollout is not None:
            return RolloutJudge(client, rollout.settings)
        return CriticAgent(
            client,
            mode=self.critic_mode,
            calibrate=self.calibrate,
            max_tokens=parse_model_spec(self.critic).reply_tokens(self.critic_tokens),
            max_reasks=self.critic_reasks,
        )


def recorded_critic(directory: Path) -> str:
    """The critic spec a critic evaluation's latest run used.

    Raises:
        DatasetError: `directory` holds no critic evaluation.
    """
    manifest = read_manifest(directory / MANIFEST_FILE)
    if manifest is None or manifest.command != CRITIC_EVAL_KIND:
        raise DatasetError(f"{directory} holds no critic evaluation ({MANIFEST_FILE})")
    return str(manifest.current.get("critic", "?"))


def load_critic_records(directory: Path) -> list[CriticRecord]:
    """The records of a critic evaluation directory, in file order (a line cut off by a
    kill is dropped, as `read_appended` does)."""
    return read_appended(directory / RECORDS_FILE, CriticRecord)


async def judge_solution(critic: StepJudge, solution: LabelledSolution) -> CriticRecord:
    """The critic's judgement of each step, in order, until its first rejection.

    The problem's verifier goes with each step, for a judge that checks answers (a
    rollout judge); a critic agent never sees it."""
    started = time.perf_counter()
    judgements: list[StepJudgement] = []
    verifier = AnswerVerifier(solution.answer) if solution.answer is not None else None
    for number, text in enumerate(solution.steps, 1):
        review = StepUnderReview(
            problem=solution.problem,
            previous_steps=solution.steps[: number - 1],
            step_number=number,
            text=text,
            verifier=verifier,
        )
        turn = await critic.judge(review)
        judgements.append(
            StepJudgement(
                step=number,
                verdict=turn.verdict,
                source=str(turn.source),
                action=str(turn.action.action),
                reason=turn.reason,
                raw=turn.raw,
                prompt_tokens=turn.usage.prompt_tokens,
                completion_tokens=turn.usage.completion_tokens,
                label_scores=turn.label_scores,
                violations=[v.kind for v in turn.violations],
            )
        )
        if turn.verdict is StepVerdict.INCORRECT:
            break
    return CriticRecord(
        id=solution.id,
        index=solution.index,
        line=solution.line,
        type=solution.type,
        steps=len(solution.steps),
        first_error=solution.first_error,
        judgements=judgements,
        seconds=round(time.perf_counter() - started, 3),
    )


class CriticEvalRunner:
    """Judges a critic on step-labelled solutions into a resumable directory.

    Args:
        options: The critic and how it judges.
        client: Use this client instead of building one from `options.critic` (tests);
            it is not closed.
        **controls: `progress` (told of each solution judged), `force` (resume a
            directory made with another critic) and `max_consecutive_errors` (solutions
            failed in a row), as `ControlKeywords`.
    """

    def __init__(
        self,
        options: CriticEvalOptions,
        *,
        client: ChatCompletionClient | None = None,
        **controls: Unpack[ControlKeywords],
    ) -> None:
        self.options = options
        self._client = client
        self._controls = JobControls.of(**controls)

    async def run(
        self, out: Path, solutions: Sequence[LabelledSolution], *, dataset: str
    ) -> CriticEvalMetrics:
        """Judge every solution without a record in `out`, then write the metrics.

        Returns:
            Metrics over `solutions` (records of earlier runs included).

        Raises:
            ConfigError: `out` holds an evaluation of another critic (without force), or
                the critic mode needs log-probabilities the backend lacks.
            EndpointDownError: `max_consecutive_errors` solutions in a row failed.
        """
        started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        done = {record.id: record for record in load_critic_records(out)}
        todo = [s for s in solutions if s.id not in done]
        errors = 0
        if not todo:  # nothing to judge: no client is built, no model loaded
            self._open_manifest(out, dataset)
        else:
            async with model_client(self._client, self.options.client) as client:
                # Built before the manifest is written: a mode the backend cannot do (score
                # without log-probabilities) is refused with nothing recorded.
                critic = self.options.agent(client)
                self._open_manifest(out, dataset)
                with self._controls.progress.loading():
                    await ensure_loaded(client)
                new, errors = await self._judge_all(critic, todo, out, len(solutions) - len(todo))
                done.update((record.id, record) for record in new)
        metrics = compute_critic_metrics(
            [done[s.id] for s in solutions if s.id in done],
            critic=self.options.critic_name,
            dataset=dataset,
            errors=errors,
            wall_seconds=round(time.perf_counter() - started, 3),
        )
        write_atomic(out / METRICS_FILE, metrics.model_dump_json(indent=2) + "\n")
        return metrics

    def _open_manifest(self, out: Path, dataset: str) -> None:
        """Record the run in `out`, or refuse one of another critic (without force)."""
        self.options.manifest(dataset).open(
            out / MANIFEST_FILE,
            subject=f"{out} holds a critic evaluation",
            force=self._controls.force,
        )

    async def _judge_all(
        self, critic: StepJudge, todo: Sequence[LabelledSolution], out: Path, finished: int
    ) -> tuple[list[CriticRecord], int]:
        with AppendedResults[CriticRecord](out / RECORDS_FILE, log=logger) as results:
            records = results.records

            def note() -> dict[str, str]:
                if not records:
                    return {"accuracy": ""}
                hits = sum(r.first_error_hit for r in records)
                return {"accuracy": f"first error {hits}/{len(records)} right"}

            await run_job(
                todo,
                results.saving(
                    lambda solution: judge_solution(critic, solution),
                    name=lambda solution: f"solution {solution.id}",
                ),
                concurrency=self.options.concurrency,
                controls=self._controls,
                already=finished,
                fields=note,
                stop_line=lambda stop: (
                    f"stopped after {stop.count} solutions in a row failed: the critic "
                    f"{self.options.critic} failed with {stop.error}; fix it and run the same "
                    f"command again to resume {out}"
                ),
            )
        return records, results.errors
