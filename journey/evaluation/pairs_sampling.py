"""`PairsSampler`: sample and grade n answers per problem, append them, draw the pairs.

Beside the pairs file `OUT` (e.g. `pairs.jsonl`) it keeps:

    pairs.sampling.json   the manifest: model and sampling settings (a re-run with others
                          is refused; `journey.runs.manifest`)
    pairs.samples.jsonl   one `ProblemSamples` per sampled problem, appended as each finishes
    pairs.card.json       the dataset card, rewritten with the pairs at the end
    pairs.cache/          the response cache, unless `--cache` names another
    pairs.cache.json      what the cache did, and
    pairs.spend.json      the tokens that reached the model, summed over invocations

A problem's line is written only once all its samples are in, so a killed run loses at
most the problems in flight; a re-run skips the problems already sampled (a last line
cut off mid-write is dropped and redone). A request that fails is logged and counted,
its problem gets no line and is retried on the next run; the run itself goes on.

**Nothing paid twice.** Requests go through the response cache and are metered
(`journey.runs.spend.RequestAccounts`): a problem cut short (a kill, a failed request,
a budget) keeps the answers it got in the cache, so the next run pays only for those
it lacks, and sampling again into a new file on a warm cache asks the model nothing.
Once the budget is spent no request goes out: problems in flight get no line, the pairs
are drawn from the problems done, and the card says why the run stopped (`stopped`).

**Reproducibility.** Every request carries a seed of its own, derived from `--seed`, the
problem id and the sample's position, so a re-run, or a resumed run, asks for the same
samples. A local model samples each request from a generator seeded with its seed,
whatever shares its batch, so it gives them back whatever `--batch-size` is; a server
gives them back as far as it honours `seed` (vLLM does per request; OpenAI only
best-effort). No backend answers `n` samples in one request, so the n samples are n
requests.

Grading is passed in (`grade`, a `journey.evaluation.grading.Grader` such as
`grade_output`), so a caller may grade another way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Unpack

from autogen_core.models import ChatCompletionClient, UserMessage

from journey.errors import ConfigError, error_line
from journey.evaluation._model_client import accounted_model
from journey.evaluation.grading import Grader
from journey.evaluation.pairs import (
    PairsCard,
    PairsOptions,
    ProblemSamples,
    Sample,
    derived_seed,
    manifest_path,
    samples_path,
    spend_prefix,
    write_pairs,
)
from journey.evaluation.runner import MODEL_ROLE
from journey.exports.rows import user_prompt
from journey.problems.dataset import ProblemRecord
from journey.problems.procedural import dataset_scorer
from journey.runs.files import read_appended
from journey.runs.jobs import (
    AppendedResults,
    ControlKeywords,
    JobControls,
    LeftForLater,
    run_job,
)
from journey.runs.manifest import Manifest, absent_as_default
from journey.runs.request_accounts import SPEND_SETTINGS, RequestAccounts

__all__ = ["Grader", "PairsSampler", "load_samples", "open_samples"]

logger = logging.getLogger(__name__)


_Reply = tuple[str, str, int]
"""A reply's text, finish reason and completion tokens."""


def load_samples(path: Path) -> dict[str, ProblemSamples]:
    """The sampled problems of a samples file, by id (see `read_appended` on kills)."""
    return {record.id: record for record in read_appended(path, ProblemSamples)}


def open_samples(out: Path, options: PairsOptions, *, dataset: str, force: bool) -> None:
    """Make ready to sample beside the pairs file `out`: its folder made, its settings
    recorded in the manifest beside it, or those of other samples refused.

    Raises:
        ConfigError: `out` is a directory or the dataset, or the samples beside it were
            made with other settings (without force).
    """
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; give a .jsonl file name")
    if out.resolve() == Path(dataset).resolve():
        raise ConfigError(f"--out {str(out)!r} would overwrite the dataset")
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {**options.manifest(), **options.spending.record()}
    defaults = absent_as_default(PairsOptions().manifest())
    Manifest("pairs", settings, free=SPEND_SETTINGS, read_as_today=defaults).open(
        manifest_path(out), subject=f"{samples_path(out)} holds samples", force=force
    )


class PairsSampler:
    """Samples problems into the files beside a pairs file, then writes the pairs.

    Args:
        options: Model, sampling settings, pairs per problem and seed.
        grade: Grades one output against the gold answer (e.g. `grade_output`).
        client: Use this client instead of building one from `options.model` (tests,
            or a client shared with other work); it is not closed.
        **controls: `progress` (told of each problem sampled), `force` (resume samples
            made with other settings) and `max_consecutive_errors` (problems in a row
            that had a request fail: a dead endpoint), as `ControlKeywords`.
    """

    def __init__(
        self,
        options: PairsOptions,
        *,
        grade: Grader,
        client: ChatCompletionClient | None = None,
        **controls: Unpack[ControlKeywords],
    ) -> None:
        self.options = options
        self._grade = grade
        self._client = client
        self._controls = JobControls.of(**controls)

    async def run(self, out: Path, problems: Sequence[ProblemRecord], *, dataset: str) -> PairsCard:
        """Sample every problem not sampled yet, then (re)write the pairs and the card.

        Returns:
            The card over `problems` (samples from earlier runs included).

        Raises:
            ConfigError: `out` is a directory or the dataset, or the samples beside it
                were made with other settings (without force).
            EndpointDownError: `max_consecutive_errors` problems in a row failed; the
                samples so far are kept, and running again resumes.
        """
        open_samples(out, self.options, dataset=dataset, force=self._controls.force)
        done = load_samples(samples_path(out))
        todo = [p for p in problems if p.session_id not in done]
        failed = 0
        models = {MODEL_ROLE: self.options.model}
        accounts = RequestAccounts(
            self.options.spending, models, out.parent, prefix=spend_prefix(out)
        )
        cut: set[str] = set()
        with closing(accounts):
            if todo:
                new, failed = await self._sample(accounts, todo, samples_path(out), cut)
                done.update((record.id, record) for record in new)
        left = sum(p.session_id not in done for p in problems)
        return write_pairs(
            out,
            problems,
            done,
            self.options,
            dataset=dataset,
            failed_requests=failed,
            spend=accounts.report(left, "problem", out),
            left_for_later=cut,
        )

    async def _sample(
        self,
        accounts: RequestAccounts,
        todo: Sequence[ProblemRecord],
        sink_path: Path,
        cut: set[str],
    ) -> tuple[list[ProblemSamples], int]:
        """Load the model and sample `todo` through the cache and the meter; the ids of
        the problems the budget cuts short go into `cut`."""
        loading = accounted_model(self._client, self.options.client, accounts, MODEL_ROLE)
        async with loading as client:
            return await self._sample_all(client, todo, sink_path, accounts.halted, cut)

    async def _sample_all(
        self,
        client: ChatCompletionClient,
        todo: Sequence[ProblemRecord],
        sink_path: Path,
        halted: Callable[[], bool],
        cut: set[str],
    ) -> tuple[list[ProblemSamples], int]:
        """Sample `todo`, appending each problem's line; returns them and the failed requests.

        Once `halted()` no request goes out: a problem short of answers then goes into
        `cut`, without a line (its answers are in the cache, if it is on).
        """
        options = self.options
        gate = asyncio.Semaphore(options.batch_size)  # requests in flight
        results = AppendedResults[ProblemSamples](sink_path, log=logger)
        failed_requests = 0
        right = total = 0

        async def ask(prompt: str, seed: int | None) -> _Reply:
            args: dict[str, object] = {
                "max_tokens": options.max_new_tokens,
                "temperature": options.temperature,
                "top_p": options.top_p,
            }
            if seed is not None:
                args["seed"] = seed
            async with gate:
                if halted():  # the budget is spent: the problem is left for the next run
                    raise LeftForLater
                result = await client.create(
                    [UserMessage(content=prompt, source="user")], extra_create_args=args
                )
            text = result.content if isinstance(result.content, str) else str(result.content)
            return text, str(result.finish_reason), result.usage.completion_tokens

        def note() -> dict[str, str]:
            return {"note": _note(right, total, failed_requests)}

        async def one(problem: ProblemRecord) -> str | None:
            nonlocal failed_requests, right, total
            prompt = user_prompt(problem.problem, options.instruction)
            seeds = [self._seed(problem, position) for position in range(options.samples)]
            answers = await asyncio.gather(
                *(ask(prompt, seed) for seed in seeds), return_exceptions=True
            )
            failures = [a for a in answers if isinstance(a, BaseException)]
            errors = [a for a in failures if not isinstance(a, LeftForLater)]
            failed_requests += len(errors)
            if len(errors) < len(failures):
                cut.add(problem.session_id)
                raise LeftForLater  # cut by the budget: neither done nor a failure
            if errors:  # the problem gets no line and is retried on the next run
                logger.warning(
                    "problem %s: %d of %d requests failed (first: %s); retried next run",
                    problem.session_id,
                    len(errors),
                    len(answers),
                    errors[0],
                )
                return error_line(errors[0])
            replies = [a for a in answers if not isinstance(a, BaseException)]
            record = self._record(problem, prompt, replies, seeds)
            results.add(record)
            right += sum(s.correct for s in record.samples)
            total += len(record.samples)
            return None

        with results:
            # No limit on problems at once: the gate counts requests, and checks the budget.
            await run_job(
                todo,
                one,
                concurrency=None,
                controls=self._controls,
                fields=note,
                stop_line=lambda stop: (
                    f"stopped after {stop.count} problems in a row had a request fail: the "
                    f"model {options.model} failed with {stop.error}; fix it and run the same "
                    "command again to resume"
                ),
            )
        return results.records, failed_requests

    def _seed(self, problem: ProblemRecord, position: int) -> int | None:
        if self.options.temperature == 0:  # greedy: a seed changes nothing
            return None
        return derived_seed(self.options.seed, problem.session_id, position)

    def _record(
        self,
        problem: ProblemRecord,
        prompt: str,
        replies: Sequence[_Reply],
        seeds: Sequence[int | None],
    ) -> ProblemSamples:
        samples: list[Sample] = []
        for (text, finish_reason, tokens), seed in zip(replies, seeds, strict=True):
            grade = self._grade(text, problem.answer, dataset_scorer(problem.meta))
            samples.append(
                Sample(
                    text=text,
                    predicted=grade.predicted,
                    correct=grade.correct,
                    finish_reason=finish_reason,
                    tokens=tokens,
                    seed=seed,
                )
            )
        return ProblemSamples(
            id=problem.session_id,
            index=problem.index,
            line=problem.line,
            problem=problem.problem,
            gold=problem.answer,
            prompt=prompt,
            samples=samples,
        )


def _note(right: int, total: int, failed: int) -> str:
    text = f"sample acc {right / total:.1%}" if total else ""
    return text + (f" · {failed} failed requests" if failed else "")
