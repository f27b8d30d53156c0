"""`RunnerUnit`: `journey eval`'s and `journey pairs`' job as a Ray worker runs it on one
unit, so the two jobs send their workers one kind of unit rather than two near-copies.

A unit's work is the job's own runner (`EvalRunner`, `PairsSampler`) run in the unit's
folder with the worker's model client, its response cache a file of its own
(`JobFiles.unit_spending`); only which runner, and where in the folder it writes, differ
between the jobs, so those are what a job gives (`make`, `output_name`). Ray pickles the
unit to send it, so `make` is a class or a `functools.partial` of one, not a closure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import Field, dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, Unpack

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel

from journey.evaluation.ray_jobs import JobFiles
from journey.problems.dataset import ProblemRecord
from journey.runs.jobs import ControlKeywords
from journey.runs.request_accounts import SpendSettings

__all__ = ["MakeRunner", "RunnerOptions", "RunnerUnit", "UnitRunner"]


class RunnerOptions(Protocol):
    """What a unit needs of a job's options (`EvalOptions`, `PairsOptions`): a frozen
    dataclass, so the unit's spending can replace the job's, that builds the client."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def spending(self) -> SpendSettings: ...

    def client(self) -> ChatCompletionClient:
        """The client the model spec names, built once per worker."""
        ...


class UnitRunner(Protocol):
    """A job's resumable runner on one folder: its report (metrics, a card) a model."""

    async def run(
        self, out: Path, problems: Sequence[ProblemRecord], *, dataset: str
    ) -> BaseModel: ...


OptionsT = TypeVar("OptionsT", bound=RunnerOptions)
OptionsT_contra = TypeVar("OptionsT_contra", bound=RunnerOptions, contravariant=True)


class MakeRunner(Protocol[OptionsT_contra]):
    """Makes a job's runner (`EvalRunner`, `functools.partial(PairsSampler, grade=...)`)."""

    def __call__(
        self,
        options: OptionsT_contra,
        *,
        client: ChatCompletionClient | None = None,
        **controls: Unpack[ControlKeywords],
    ) -> UnitRunner: ...


@dataclass(frozen=True)
class RunnerUnit(Generic[OptionsT]):
    """A job as a worker runs it on one unit (a `ray_jobs.UnitJob`)."""

    options: OptionsT
    """The job's options, with the job's spend settings (its ledger link)."""
    make: MakeRunner[OptionsT]
    """Makes the job's runner from the unit's options and the worker's client."""
    files: JobFiles
    force: bool
    max_consecutive_errors: int
    output_name: str | None = None
    """The unit's output in its folder, under the job output's name (a pairs file);
    None: the folder itself is the output (an evaluation directory)."""

    def client(self) -> ChatCompletionClient:
        return self.options.client()

    async def run(
        self,
        client: ChatCompletionClient,
        problems: Sequence[ProblemRecord],
        root: Path,
        dataset: str,
    ) -> dict[str, Any]:
        spending = self.files.unit_spending(self.options.spending, root)
        options = dataclasses.replace(self.options, spending=spending)
        runner = self.make(
            options,
            client=client,
            force=self.force,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        out = root if self.output_name is None else root / self.output_name
        report = await runner.run(out, problems, dataset=dataset)
        return report.model_dump(mode="json")
