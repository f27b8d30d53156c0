"""`journey expand`'s job: reference solutions expanded into long thoughts, as a run.

An expand run is a synthesis run of the `expand` strategy (`SynthesisRunner`, so it
resumes, caches, limits and indexes as every run does, and `journey synth --strategy
expand` continues it). What this module adds around it:

- **the problems**: only those with a reference solution run (`with_reference`); the
  others are counted by reason, in the report and in `run.json`'s `dataset` record
  (`without_reference`), where the export card finds them;
- **the options** of the job (`ExpandOptions`), turned into the run's synthesis
  options: the attempts are the limits' `max_turns`, the generation limit of one
  expansion is the policy's reply limit;
- **the report** (`ExpansionReport`): the synthesis report, and what the checks did
  over the selection: expansions accepted, sessions whose every attempt was rejected,
  attempts made, rejected attempts, and rejections by kind (an attempt that fails
  several checks counts under each).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, computed_field

from journey.agents.backends.role_endpoints import role_specs
from journey.errors import ConfigError, DatasetError
from journey.problems.dataset import ProblemRecord
from journey.problems.reference import with_reference
from journey.protocols import ExpansionRejected, Outcome, SessionEnded
from journey.protocols.expansion import ExpansionChecks, rejection_kind
from journey.runs.jobs import ControlKeywords
from journey.runs.response_cache import CacheSettings
from journey.runs.rundir import RunDirectory
from journey.runs.synthesis import SynthesisRunner
from journey.runs.synthesis_options import SynthesisOptions
from journey.runs.synthesis_report import SynthesisReport
from journey.sessions.base import SessionLimits
from journey.sessions.expand import expand_config

__all__ = ["ExpandOptions", "ExpansionReport", "ExpansionTally", "prepare_problems", "run_expand"]

WITHOUT_REFERENCE_KEY = "without_reference"
"""Where `run.json`'s `dataset` record counts the problems left out, by reason."""


@dataclass(frozen=True)
class ExpandOptions:
    """What `journey expand` does with each problem."""

    model: str = field(default="embedded", metadata={"help": "Model spec of the expander."})
    solution_field: str = field(
        default="solution",
        metadata={"help": "Field holding the reference solution (GSM8K: answer)."},
    )
    answer_field: str = field(default="answer", metadata={"help": "Field holding the gold answer."})
    prompt: Path | None = field(
        default=None, metadata={"help": "Prompt file replacing the packaged expand.yaml."}
    )
    attempts: int = field(default=3, metadata={"help": "Expansions tried per problem."})
    expansion_tokens: int = field(
        default=4096,
        metadata={"help": "Generation limit for one expansion (max_tokens in --model wins)."},
    )
    checks: ExpansionChecks = field(
        default_factory=ExpansionChecks, metadata={"help": "What an expansion must pass."}
    )
    concurrency: int = field(default=8, metadata={"help": "Problems expanded at once."})
    cache: CacheSettings = field(
        default_factory=CacheSettings, metadata={"help": "The response cache's settings."}
    )

    def __post_init__(self) -> None:
        for name in ("attempts", "expansion_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    def synthesis(self) -> SynthesisOptions:
        """The run's synthesis options (the strategy `expand`, one role: the policy).

        Raises:
            ConfigError: a bad setting, or a prompt file that cannot be used.
            ModelSpecError: the model spec names no backend.
        """
        per_attempt = role_specs(self.model)[0].reply_tokens(self.expansion_tokens)
        return SynthesisOptions(
            strategy="expand",
            policy=self.model,
            concurrency=self.concurrency,
            limits=SessionLimits(max_turns=self.attempts, max_tokens=self.attempts * per_attempt),
            step_tokens=self.expansion_tokens,
            strategy_config=expand_config(
                solution_field=self.solution_field, prompt=self.prompt, checks=self.checks
            ),
            cache=self.cache,
        )


class ExpansionReport(BaseModel):
    """What an expand run did: the synthesis report, and what the checks did over the
    selection (earlier runs included)."""

    synthesis: SynthesisReport
    without_reference: dict[str, int] = {}
    """Problems of the selection left out, by reason (no reference solution)."""
    accepted: int = 0
    """Sessions whose expansion passed the checks."""
    exhausted: int = 0
    """Sessions whose every attempt was rejected."""
    attempts: int = 0
    rejected_attempts: int = 0
    rejections: dict[str, int] = {}
    """Rejected attempts by kind of reason (an attempt may count under several)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def acceptance_rate(self) -> float:
        """Accepted expansions per attempt."""
        return self.accepted / self.attempts if self.attempts else 0.0


@dataclass
class ExpansionTally:
    """The checks' counts over sessions, read from their logs."""

    accepted: int = 0
    exhausted: int = 0
    attempts: int = 0
    rejected: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, run: RunDirectory, session_id: str) -> None:
        """Count one finished session of `run`."""
        log = run.load_events(session_id)
        for event in log.events:
            if isinstance(event, ExpansionRejected):
                self.rejected += 1
                self.attempts += 1
                self.kinds.update({rejection_kind(reason) for reason in event.reasons})
        ended = log.events[-1] if log.events else None
        if isinstance(ended, SessionEnded):
            if ended.outcome is Outcome.SOLVED:
                self.accepted += 1
                self.attempts += 1
            elif ended.outcome is Outcome.FAILED and ended.turn > 0:
                self.exhausted += 1


def prepare_problems(
    problems: Sequence[ProblemRecord], *, solution_field: str, answer_field: str
) -> tuple[list[ProblemRecord], Counter[str]]:
    """The problems made ready to expand (`with_reference`), and those left out by reason."""
    ready: list[ProblemRecord] = []
    left_out: Counter[str] = Counter()
    for record in problems:
        prepared, why = with_reference(record, solution_field, answer_field=answer_field)
        if why is None:
            ready.append(prepared)
        else:
            left_out[why] += 1
    return ready, left_out


async def run_expand(
    options: ExpandOptions,
    run_dir: Path | str,
    problems: Sequence[ProblemRecord],
    *,
    dataset: Mapping[str, Any] | None = None,
    dataset_issues: int = 0,
    clients: Mapping[str, ChatCompletionClient] | None = None,
    retry_errors: bool = True,
    **controls: Unpack[ControlKeywords],
) -> ExpansionReport:
    """Expand (or resume expanding) every problem that has a reference solution.

    Args:
        options: The job's options.
        run_dir: The run directory; an existing one is resumed.
        problems: The selected problems, in order.
        dataset: Where they came from, for `run.json`.
        dataset_issues: Dataset lines skipped as unreadable, for the report.
        clients: A policy client to use instead of building one from the spec (tests).
        retry_errors: As `SynthesisRunner`'s.
        **controls: `progress`, `force`, `max_consecutive_errors` (`ControlKeywords`).

    Raises:
        DatasetError: no selected problem has a reference solution.
        ConfigError, EndpointDownError: as `SynthesisRunner.run`.
    """
    synthesis = options.synthesis()
    ready, left_out = prepare_problems(
        problems, solution_field=options.solution_field, answer_field=options.answer_field
    )
    if not ready:
        reasons = "; ".join(f"{count} {why}" for why, count in left_out.most_common())
        raise DatasetError(f"no selected problem has a reference solution to expand ({reasons})")
    record = {
        **(dataset or {}),
        "solution_field": options.solution_field,
        WITHOUT_REFERENCE_KEY: dict(sorted(left_out.items())),
    }
    runner = SynthesisRunner(synthesis, clients=clients, retry_errors=retry_errors, **controls)
    report = await runner.run(run_dir, ready, dataset=record, dataset_issues=dataset_issues)
    run = RunDirectory(Path(run_dir))
    indexed = {summary.session_id for summary in run.summaries()}
    tally = ExpansionTally()
    for problem in ready:
        if problem.session_id in indexed:
            tally.add(run, problem.session_id)
    return ExpansionReport(
        synthesis=report,
        without_reference=dict(sorted(left_out.items())),
        accepted=tally.accepted,
        exhausted=tally.exhausted,
        attempts=tally.attempts,
        rejected_attempts=tally.rejected,
        rejections=dict(tally.kinds.most_common()),
    )
