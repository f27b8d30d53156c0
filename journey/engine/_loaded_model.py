"""The model the worker thread loaded, and the jobs it runs on it.

`LoadedModel.load` loads the causal LM, decides its decode path (continuous batching
for a model whose attention cache is one growing key/value pair per layer, ragged
steps for the Llama family, else one `generate` call per batch), packs its linear
layers and sets up the prefix cache. `run` answers a batch the worker took off its
queue: one scoring, scorings together in a ragged step, or generations. This is the
torch side of the engine; the worker thread imports it when it starts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, DynamicCache
from transformers.cache_utils import DynamicLayer

from journey.engine import _llama_forward
from journey.engine._chat_tokenizer import ChatTokenizer
from journey.engine._continuous_decoding import TakeJoiners, decode_continuously
from journey.engine._generate_call import generate_rows
from journey.engine._key_value_pool import KeyValuePool
from journey.engine._label_scoring import RowScoring, score_in_one_step, score_padded
from journey.engine._packed_linear import pack_linears
from journey.engine._prefix_cache import PrefixCache
from journey.engine._prompt_encoder import PromptEncoder
from journey.engine._ragged_batch import RaggedBatch
from journey.engine.config import EngineConfig
from journey.engine.jobs import Generated, GenerationJob, GenerationStats, Job, Sampling, ScoringJob
from journey.engine.quiet import quiet_loading

logger = logging.getLogger(__name__)

KEEP_POOL_BYTES = 1 << 30
"""The ragged batches' shared key/value pool, if larger than this, is let go once no
row uses it (one long prompt grows every slot); a smaller one is kept for the next
batch."""


@dataclass(eq=False)
class LoadedModel:
    """A loaded causal LM and what its decode paths share (worker thread only)."""

    model: Any
    tokens: ChatTokenizer
    config: EngineConfig
    stats: GenerationStats
    eos_ids: list[int]
    runs_batches: bool
    """Continuous batching, as the model allows it."""
    runs_ragged: bool
    """Prompts fed in the batch's steps, as the model allows it."""
    prompts: PromptEncoder
    rng: torch.Generator
    """Seeds each sampled row that has no seed of its own."""
    pool: KeyValuePool | None = None
    """Shared by ragged batches."""

    @classmethod
    def load(
        cls, tokens: ChatTokenizer, config: EngineConfig, stats: GenerationStats
    ) -> LoadedModel:
        """Load the model in `tokens`' directory as `config` says.

        Raises:
            ModelUnavailableError: The model could not be found, built or loaded.
        """
        # Process-wide: the model is the only heavy torch user, so let it have every core.
        torch.set_num_threads(config.num_threads or len(os.sched_getaffinity(0)))
        tokenizer = tokens.load()
        directory = tokens.directory()
        try:
            with quiet_loading():
                model = AutoModelForCausalLM.from_pretrained(directory, dtype=config.torch_dtype)
        except (OSError, ValueError) as exc:
            raise tokens.unavailable(exc) from exc
        model.eval()  # type: ignore[no-untyped-call]  # transformers overrides it unannotated
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        plain_cache = _has_plain_attention_cache(model)
        runs_batches = config.continuous_batching and plain_cache
        llama_family = _llama_forward.supports(model)
        if not config.packed_weights:
            stats.unpacked_why = "packed_weights=false"
        elif not llama_family:  # other layouts may read a layer's plain weight
            stats.unpacked_why = "not a Llama-family model"
        else:
            packed, why = pack_linears(model, rows_hint=config.max_batch_size)
            stats.packed_layers, stats.unpacked_why = packed, why
            if why is not None:
                logger.info("model %r keeps plain linear layers: %s", tokens.name, why)
        prefixes = None
        if config.prefix_cache_bytes > 0 and plain_cache:
            prefixes = PrefixCache(config.prefix_cache_bytes)
        return cls(
            model,
            tokens,
            config,
            stats,
            eos_ids=sorted(eos_ids),
            runs_batches=runs_batches,
            runs_ragged=runs_batches and config.prefill_in_step and llama_family,
            prompts=PromptEncoder(model, prefixes, stats),
            rng=_generator(config.seed),
        )

    def run(self, batch: list[Job], take: TakeJoiners) -> None:
        """Answer `batch`, jobs the worker took together: one scoring, scorings in one
        ragged step, or generations (which `take` may join, between steps)."""
        first = batch[0]
        if isinstance(first, ScoringJob) and self.runs_ragged:
            score_in_one_step(self, [job for job in batch if isinstance(job, ScoringJob)])
        elif isinstance(first, ScoringJob):
            scored = score_padded(self, first)
            self.stats.scorings += 1  # before the result, which may wake a reader of stats
            first.future.set_result(scored)
        else:
            self.generate([job for job in batch if isinstance(job, GenerationJob)], take)

    def generate(self, jobs: list[GenerationJob], take: TakeJoiners) -> None:
        """Answer `jobs`: decoded continuously when the model allows it (every prompt of
        at least two tokens), else in one left-padded `generate` call."""
        prompts: list[list[int]] = []
        ready: list[GenerationJob] = []
        for job in jobs:  # a bad request fails alone, not its whole batch
            try:
                ids = self.tokens.encode_chat(job.chat)
                self.tokens.check_fits(len(ids) + 1)
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            self.tokens.add_reply_stops(job)
            prompts.append(ids)
            ready.append(job)
        if not ready:
            return
        if self.runs_batches and min(map(len, prompts)) >= 2:
            decode_continuously(self, ready, prompts, take)
            return
        room = [self.tokens.context_length - len(p) for p in prompts]
        limits = [min(j.max_new_tokens, r) for j, r in zip(ready, room, strict=True)]
        sampling = ready[0].sampling
        self.stats.prompt_tokens_encoded += sum(map(len, prompts))
        with torch.inference_mode():
            replies = generate_rows(
                self.model,
                prompts,
                limits=limits,
                stops=[j.stops for j in ready],
                sampling=(sampling.temperature, sampling.top_p),
                generators=[self.row_generator(job.sampling) for job in ready],
                pad_id=self.tokens.pad_token_id,
                eos_ids=self.eos_ids,
                decode=self.tokens.decode,
            )
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(ready))
        for job, prompt, (text, reason, produced) in zip(ready, prompts, replies, strict=True):
            self.stats.requests += 1
            self.stats.generated_tokens += produced
            job.future.set_result(Generated(text, reason, len(prompt), produced))

    def row_generator(self, sampling: Sampling) -> torch.Generator | None:
        """What a row with `sampling` draws from: none when greedy, else a generator of
        its own, seeded with the request's seed or with one drawn from the worker's
        stream (so unseeded runs are reproducible from the worker's seed)."""
        if sampling.temperature == 0:
            return None
        if sampling.seed is not None:
            return _generator(sampling.seed)
        return _generator(int(torch.randint(2**63 - 1, (), generator=self.rng)))

    def ragged_batch(self) -> RaggedBatch[GenerationJob | RowScoring]:
        """A new ragged batch over the shared key/value pool."""
        if self.pool is None:
            self.pool = KeyValuePool(self.model, min_slots=self.config.max_batch_size)
        return RaggedBatch(self.model, self.pool)

    def release(self, batch: RaggedBatch[GenerationJob | RowScoring]) -> None:
        """Free the slots `batch` holds; once no batch uses the pool, let it go if it
        grew past `KEEP_POOL_BYTES`."""
        batch.close()
        pool = self.pool
        if pool is not None and pool.in_use == 0 and pool.nbytes > KEEP_POOL_BYTES:
            self.pool = None


def _generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`, taken modulo 2**64 (torch's seed range, which
    wraps negative seeds the same way)."""
    return torch.Generator().manual_seed(seed % 2**64)


def _has_plain_attention_cache(model: Any) -> bool:
    """Whether every layer's cache is one growing key/value pair, which is what the
    prefix cache slices and pads (no sliding windows, no recurrent state)."""
    try:
        cache = DynamicCache(config=model.config)
    except (TypeError, ValueError, KeyError):
        return False
    return all(type(layer) is DynamicLayer for layer in cache.layers)
