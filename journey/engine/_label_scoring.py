"""Label scoring: the log-probability of each label as the start of the reply.

Every label's sequence is the chat's prompt, the forced prefix and the label; they
share a context up to the first token any label changes, and each label is scored
from there. A scoring runs in one of three ways: alone, in a padded forward pass of
its own, a row per label (`score_padded`, with the shared context from the prefix
cache when it is on); as a row of a running ragged batch, fed beside the decoding
rows' tokens with each label a branch after the context (`add_scoring`); or, with
other scorings, in a ragged step of their own (`score_in_one_step`).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from journey.engine._chat_tokenizer import ChatTokenizer
from journey.engine._generate_call import pad_rows
from journey.engine._prompt_encoder import common_prefix
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import Row
from journey.engine.jobs import GenerationJob, GenerationStats, ScoringJob

if TYPE_CHECKING:
    from journey.engine._loaded_model import LoadedModel


@dataclass
class RowScoring:
    """A scoring job riding in a ragged batch as a row: its labels' shared context,
    each label a branch after it."""

    job: ScoringJob
    tokens_read: int
    """What the job reports it read: every label's whole sequence, as a padded pass
    reads them."""

    @property
    def future(self) -> concurrent.futures.Future[tuple[dict[str, float], int]]:
        return self.job.future


def label_sequences(tokens: ChatTokenizer, job: ScoringJob) -> tuple[list[list[int]], int]:
    """Each label's whole sequence, and the index of the first token any label
    changes (from which labels are scored, so that they all share one context)."""
    context = tokens.encode_chat(job.chat, suffix=job.prefix)
    sequences = [tokens.encode_chat(job.chat, suffix=job.prefix + label) for label in job.labels]
    return sequences, max(1, min(common_prefix(context, s) for s in sequences))


def score_padded(loaded: LoadedModel, job: ScoringJob) -> tuple[dict[str, float], int]:
    """`job`'s scores in a padded forward pass of its own, a row per label, and the
    tokens that pass read."""
    model, stats = loaded.model, loaded.stats
    sequences, start = label_sequences(loaded.tokens, job)
    input_ids, attention_mask = pad_rows(sequences, loaded.tokens.pad_token_id, left=False)
    width = input_ids.shape[1]
    loaded.tokens.check_fits(width)
    read = sum(map(len, sequences))
    if start >= width:  # every label is empty
        return {label: 0.0 for label in job.labels}, read
    with torch.inference_mode():
        if not loaded.prompts.caching or start < 2:
            stats.prompt_tokens_encoded += int(attention_mask.sum())
            logits = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                logits_to_keep=torch.arange(start - 1, width - 1),  # only where labels are
            ).logits.float()
        else:  # the shared context from the prefix cache, then every label at once
            shared = loaded.prompts.states(sequences[0][: start - 1])
            stats.prompt_tokens_encoded += int(attention_mask[:, start - 1 :].sum())
            rows = len(sequences)
            past = DynamicCache(
                ddp_cache_data=[
                    (k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in shared
                ],
                config=model.config,
            )
            logits = (
                model(
                    input_ids=input_ids[:, start - 1 :],
                    attention_mask=attention_mask,
                    cache=past,
                )
                .logits[:, :-1]
                .float()
            )
    log_probs = torch.log_softmax(logits, dim=-1)
    targets = input_ids[:, start:width]
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    summed = (picked * attention_mask[:, start:width]).sum(dim=-1)
    return {label: float(summed[i]) for i, label in enumerate(job.labels)}, read


def run_scoring(loaded: LoadedModel, job: ScoringJob) -> None:
    """Answer `job` from a padded pass of its own; if it fails, it fails alone."""
    try:
        scored = score_padded(loaded, job)
    except Exception as exc:  # this request fails alone
        job.future.set_exception(exc)
        return
    loaded.stats.scorings += 1  # before the result, which may wake a reader of stats
    job.future.set_result(scored)


def add_scoring(
    loaded: LoadedModel, batch: RaggedBatch[GenerationJob | RowScoring], job: ScoringJob
) -> None:
    """Add `job` as a row that feeds the labels' shared context past its cached
    prefix, each label a branch after it (or fail `job` if they do not encode or
    fit)."""
    try:
        sequences, start = label_sequences(loaded.tokens, job)
        loaded.tokens.check_fits(max(map(len, sequences)))
    except Exception as exc:  # this request fails alone
        job.future.set_exception(exc)
        return
    context = sequences[0][:start]  # every label's sequence starts with it
    branches = [sequence[start:] for sequence in sequences]
    states, reused = loaded.prompts.cached_prefix(context, most=len(context) - 1)
    scoring = RowScoring(job, sum(map(len, sequences)))
    batch.add(Row(scoring, context, 1), states, context[reused:], branches)
    loaded.prompts.count(reused=reused, encoded=len(context) - reused + sum(map(len, branches)))


def score_in_one_step(loaded: LoadedModel, jobs: list[ScoringJob]) -> None:
    """Score `jobs` together in one ragged step of their own; if it fails, they fail
    (and only they: a running batch goes on)."""
    batch = loaded.ragged_batch()
    try:
        with torch.inference_mode():
            for job in jobs:
                add_scoring(loaded, batch, job)
            if len(batch):
                batch.step(lambda logits: logits.argmax(dim=-1))
                loaded.prompts.store_fed(batch)
                for index in range(len(batch)):
                    answer_scoring(loaded.stats, batch, index)
    except Exception as exc:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)
    finally:
        loaded.release(batch)


def answer_scoring(
    stats: GenerationStats, batch: RaggedBatch[GenerationJob | RowScoring], index: int
) -> None:
    """Answer the scoring in row `index`, which the last step fed, with its labels'
    scores."""
    request = batch.rows[index].request
    assert isinstance(request, RowScoring)
    scores = batch.scores_of(index)
    assert scores is not None
    labels = dict(zip(request.job.labels, scores, strict=True))
    stats.scorings += 1  # before the result, which may wake a reader of stats
    request.future.set_result((labels, request.tokens_read))
