"""Continuous batching: rows leave the batch the step they end, and queued requests join.

A batch decodes the oldest request with the queued ones that share its temperature and
top-p. After each step, every row that ended is answered (its prompt and reply states
going to the prefix cache, for the session's next prompt), and the worker's queue is
asked for requests to join in the room left, and for scorings waiting meanwhile.
Llama-family models decode in a `RaggedBatch`: a joining prompt is fed in the batch's
next step beside the other rows' tokens, and so is a scoring (a row whose labels are
branches). Other models decode in a `RunningBatch`, each prompt prefilled in a pass of
its own and each scoring scored apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from journey.engine._label_scoring import (
    RowScoring,
    add_scoring,
    answer_scoring,
    run_scoring,
    score_in_one_step,
)
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import Row, RunningBatch, choose_tokens
from journey.engine.jobs import (
    FinishReason,
    Generated,
    GenerationJob,
    Sampling,
    ScoringJob,
    cut_at_stops,
)

if TYPE_CHECKING:
    from journey.engine._loaded_model import LoadedModel

DecodeBatch = RaggedBatch[GenerationJob | RowScoring] | RunningBatch[GenerationJob]
"""A ragged batch also scores labels."""

TakeJoiners = Callable[[Sampling, int], tuple[list[GenerationJob], list[ScoringJob]]]
"""`take(sampling, room)`: up to `room` queued generation jobs with this temperature
and top-p, to join the batch, and every queued scoring job (the worker's queue)."""


def decode_continuously(
    loaded: LoadedModel, jobs: list[GenerationJob], prompts: list[list[int]], take: TakeJoiners
) -> None:
    """Decode `jobs` in a `RunningBatch` (a `RaggedBatch` for the Llama family):
    each row leaves when it ends, and queued requests with the same temperature and
    top-p join between steps."""
    sampling = jobs[0].sampling
    batch: DecodeBatch = loaded.ragged_batch() if loaded.runs_ragged else RunningBatch(loaded.model)
    loaded.stats.batches += 1

    def choose(logits: torch.Tensor) -> torch.Tensor:
        generators = [row.generator for row in batch.rows]
        return choose_tokens(logits, sampling.temperature, sampling.top_p, generators)

    try:
        with torch.inference_mode():
            _join(loaded, batch, jobs, prompts)
            while len(batch):
                batch.step(choose)
                if isinstance(batch, RaggedBatch):
                    loaded.prompts.store_fed(batch)
                batch.remove([i for i in range(len(batch)) if _leaves(loaded, batch, i)])
                if not len(batch):
                    break
                room = loaded.config.max_batch_size - len(batch)
                joiners, scorings = take(sampling, room)
                if joiners:
                    _join(loaded, batch, *loaded.tokens.encode_jobs(joiners))
                _start_scorings(loaded, batch, scorings, room - len(joiners))
    except BaseException as exc:  # joiners are not in the caller's batch: fail them here
        for row in batch.rows:
            if not row.request.future.done():
                row.request.future.set_exception(exc)
        raise
    finally:
        if isinstance(batch, RaggedBatch):
            loaded.release(batch)


def _join(
    loaded: LoadedModel, batch: DecodeBatch, jobs: list[GenerationJob], prompts: list[list[int]]
) -> None:
    prompt_states = loaded.prompts
    if isinstance(batch, RaggedBatch):
        prompt_states.prefill_shared(prompts)
    for job, prompt in zip(jobs, prompts, strict=True):
        limit = min(job.max_new_tokens, loaded.tokens.context_length - len(prompt))
        generator = loaded.row_generator(job.sampling)
        if isinstance(batch, RaggedBatch):  # the next step feeds what is not cached
            states, reused = prompt_states.cached_prefix(prompt, most=len(prompt) - 1)
            ragged_row: Row[GenerationJob | RowScoring] = Row(job, prompt, limit, generator)
            batch.add(ragged_row, states, prompt[reused:])
            prompt_states.count(reused=reused, encoded=len(prompt) - reused)
            continue
        try:
            states = prompt_states.states(prompt[:-1])
        except Exception as exc:  # this request fails alone
            job.future.set_exception(exc)
            continue
        batch.add(Row(job, prompt, limit, generator), states, prompt[-1])
        loaded.stats.prompt_tokens_encoded += 1  # the last prompt token, fed by the step
    loaded.stats.largest_batch = max(loaded.stats.largest_batch, len(batch))


def _start_scorings(
    loaded: LoadedModel, batch: DecodeBatch, scorings: list[ScoringJob], room: int
) -> None:
    """In a ragged batch, score each job in the next step as a row of its own while
    there is room (beside the decoding rows, a scoring's context and labels cost
    little more than their step), and the rest now, in one step; in a `RunningBatch`,
    score each now in a pass of its own."""
    if not isinstance(batch, RaggedBatch):
        for job in scorings:
            run_scoring(loaded, job)
        return
    room = max(room, 0)
    for job in scorings[:room]:
        add_scoring(loaded, batch, job)
    if scorings[room:]:  # no room: scored now, together, in a step of their own
        score_in_one_step(loaded, scorings[room:])


def _leaves(loaded: LoadedModel, batch: DecodeBatch, index: int) -> bool:
    """Whether row `index` is done: a generation that ended (answered), or a
    scoring, fed by the last step (answered with its labels' scores)."""
    if isinstance(batch.rows[index].request, RowScoring):
        assert isinstance(batch, RaggedBatch)
        answer_scoring(loaded.stats, batch, index)
        return True
    return _end_row(loaded, batch, index)


def _end_row(loaded: LoadedModel, batch: DecodeBatch, index: int) -> bool:
    """Answer row `index`'s request if its last token ended it; True if it did.

    The row's states go to the prefix cache: the session's next prompt for this
    role repeats the reply, so it need not be encoded again.
    """
    row, decode = batch.rows[index], loaded.tokens.decode
    job, produced = row.request, len(row.generated)
    assert isinstance(job, GenerationJob)  # scoring rows leave in `_leaves`
    if row.generated[-1] in loaded.eos_ids:
        reason: FinishReason = "stop"
    elif job.stops and any(stop in decode(row.generated) for stop in job.stops):
        reason = "stop"
    elif produced >= row.limit:
        reason = "length"
    else:
        return False
    text, stopped = cut_at_stops(decode(row.generated), job.stops)
    if stopped:
        reason = "stop"
    if loaded.prompts.caching:
        loaded.prompts.store(*batch.states_of(index))
    loaded.stats.requests += 1
    loaded.stats.generated_tokens += produced
    job.future.set_result(Generated(text, reason, len(row.prompt), produced))
    return True
