"""The thread that owns a local causal LM and batches the requests waiting for it.

`TransformersChatCompletionClient` is the public face; this module holds the part
that touches torch. One worker thread loads the model, then loops: take the oldest
request, collect whatever else is queued (waiting a few milliseconds for companions),
and decode the oldest request together with the queued ones that share its temperature
and top-p, up to `max_batch_size` rows. Each row stops on its own (end-of-turn token,
stop string, or its own token limit), and a sampled row draws from a random generator
of its own (seeded with the request's seed, else with a seed drawn from the worker's
stream), so its tokens do not depend on the rows beside it. Label scoring jobs run
alone, one forward pass each, between generations (or between steps of a running batch).

With continuous batching (a model whose attention cache is one growing key/value pair
per layer), a row leaves the batch the step it ends (its prompt and reply states going
to the `PrefixCache`, for the session's next prompt), and queued requests with the same
temperature and top-p join between steps. Each prompt is encoded only past the longest
cached prompt it starts with. Llama-family models decode in a `RaggedBatch`: a joining prompt
is fed in the batch's next step beside the other rows' tokens, and so is the context of
a scoring job that arrives meanwhile (scored from the cache once fed). Other models
decode in a `RunningBatch`, with each prompt prefilled in a pass of its own. Without
continuous batching, the batch is one left-padded `generate` call that runs until its
longest row ends (`_generate_call`).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
)
from transformers.cache_utils import DynamicLayer

from journey.engine import _ragged_batch as ragged
from journey.engine._generate_call import generate_rows, pad_rows
from journey.engine._packed_linear import pack_linears
from journey.engine._prefix_cache import LayerStates, PrefixCache
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import Row, RunningBatch, choose_tokens
from journey.engine.config import EngineConfig
from journey.engine.jobs import (
    Chat,
    FinishReason,
    Generated,
    GenerationJob,
    GenerationStats,
    Job,
    Sampling,
    ScoringJob,
    cut_at_stops,
)
from journey.engine.plain_prompt import PlainPromptTemplate, load_plain_template
from journey.engine.quiet import quiet_loading
from journey.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

COLLECT_WINDOW_S = 0.005  # how long the worker waits for companions before a batch starts

MIN_SHARED_PREFILL = 16
"""Fewest shared uncached prompt tokens worth a forward pass of their own."""

KEEP_POOL_BYTES = 1 << 30
"""The ragged batches' shared key/value pool, if larger than this, is let go once no
row uses it (one long prompt grows every slot); a smaller one is kept for the next
batch."""


@dataclass
class _RowScoring:
    """A scoring job riding in a ragged batch as a row: its labels' shared context,
    each label a branch after it."""

    job: ScoringJob
    tokens_read: int
    """What the job reports it read: every label's whole sequence, as a padded pass
    reads them."""

    @property
    def future(self) -> concurrent.futures.Future[tuple[dict[str, float], int]]:
        return self.job.future


DecodeBatch = RaggedBatch[GenerationJob | _RowScoring] | RunningBatch[GenerationJob]
"""A ragged batch also scores labels."""


class ModelWorker:
    """Owns one model and its tokenizer; all model computation happens in its thread."""

    def __init__(
        self,
        model_dir: Path | Callable[[], Path],
        *,
        name: str,
        config: EngineConfig,
    ) -> None:
        """`model_dir`: what `from_pretrained` loads, or a function returning it, called
        once when first needed (the embedded model builds its cache there)."""
        self.name = name
        self.stats = GenerationStats()
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        """Resolves once the model is loaded, or to the load error."""
        self._dir_source = model_dir
        self._dir: Path | None = None if callable(model_dir) else model_dir
        self._config = config
        self._rng = _generator(config.seed)
        """Seeds each sampled row that has no seed of its own (worker thread only)."""
        self._prefixes: PrefixCache | None = None
        self._pool: ragged.KeyValuePool | None = None  # shared by ragged batches (worker thread)
        self._runs_batches = False  # continuous batching, once the model shows it can
        self._runs_ragged = False  # prompts fed in the batch's steps, once the model shows it can
        self._lock = threading.Lock()  # thread start, queue and close; never held for long
        self._load_lock = threading.Lock()  # model directory (maybe a 30 s build) and tokenizer
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe across threads
        self._tokenizer: Any = None
        self._plain: PlainPromptTemplate | None = None
        """Set for a model without a chat template (a base model) when it loads."""
        self._context_length = 0
        self._model: Any = None
        self._eos_ids: list[int] = []
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._pending: list[Job] = []  # taken off the queue, not started (worker thread only)
        self._stopping = False  # the stop signal was taken off the queue
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- called from the event loop -------------------------------------------------------

    def start(self) -> None:
        """Start the thread (which loads the model) unless it runs already."""
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._serve, name=f"journey-model-{self.name}", daemon=True
                )
                self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job; its future resolves in the worker thread.

        Raises:
            ModelUnavailableError: The worker was stopped.
        """
        self.start()
        with self._lock:
            if self._closed:
                raise ModelUnavailableError(f"model client {self.name!r} is closed")
            self._queue.put(job)  # under the lock, so never after stop()'s signal

    def stop(self) -> threading.Thread | None:
        """Refuse new jobs and let the thread finish the queued ones; returns it to join."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            if self._thread is not None:
                self._queue.put(None)
            return self._thread

    @property
    def context_length(self) -> int:
        self._get_tokenizer()
        return self._context_length

    def encode_chat(self, chat: Chat, *, suffix: str = "") -> list[int]:
        """Token ids of the chat-template prompt (then `suffix`); a final assistant
        message is continued instead of answered. A model without a chat template (a base
        model) gets the plain-text prompt of `plain_prompt` instead."""
        tokenizer = self._get_tokenizer()
        continue_final = bool(chat) and chat[-1]["role"] == "assistant"
        with self._tokenizer_lock:
            if self._plain is not None:
                text = self._plain.render_turns([(m["role"], m["content"]) for m in chat])
            else:
                text = tokenizer.apply_chat_template(
                    chat,
                    tokenize=False,
                    add_generation_prompt=not continue_final,
                    continue_final_message=continue_final,
                )
            ids: list[int] = tokenizer(text + suffix, add_special_tokens=False)["input_ids"]
        return ids

    # --- loading --------------------------------------------------------------------------

    def _model_dir(self) -> Path:
        with self._load_lock:
            if self._dir is None:
                source = self._dir_source
                assert callable(source)
                self._dir = source()
            return self._dir

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            directory = self._model_dir()
            with self._load_lock:
                if self._tokenizer is None:
                    try:
                        tokenizer = AutoTokenizer.from_pretrained(directory)
                        config = AutoConfig.from_pretrained(directory)
                    except (OSError, ValueError) as exc:
                        raise self._unavailable(exc) from exc
                    if not tokenizer.chat_template:  # a base model: plain-text prompts
                        self._plain = load_plain_template()
                    if tokenizer.pad_token_id is None:
                        tokenizer.pad_token = tokenizer.eos_token
                    self._context_length = _context_length(config, tokenizer)
                    self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> None:
        # Process-wide: the model is the only heavy torch user, so let it have every core.
        config = self._config
        torch.set_num_threads(config.num_threads or len(os.sched_getaffinity(0)))
        tokenizer = self._get_tokenizer()
        directory = self._model_dir()
        try:
            with quiet_loading():
                model = AutoModelForCausalLM.from_pretrained(directory, dtype=config.torch_dtype)
        except (OSError, ValueError) as exc:
            raise self._unavailable(exc) from exc
        model.eval()  # type: ignore[no-untyped-call]  # transformers overrides it unannotated
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self._eos_ids = sorted(eos_ids)
        plain_cache = _has_plain_attention_cache(model)
        self._runs_batches = config.continuous_batching and plain_cache
        llama_family = ragged.supports(model)
        self._runs_ragged = self._runs_batches and config.prefill_in_step and llama_family
        if not config.packed_weights:
            self.stats.unpacked_why = "packed_weights=false"
        elif not llama_family:  # other layouts may read a layer's plain weight
            self.stats.unpacked_why = "not a Llama-family model"
        else:
            packed, why = pack_linears(model, rows_hint=self._config.max_batch_size)
            self.stats.packed_layers, self.stats.unpacked_why = packed, why
            if why is not None:
                logger.info("model %r keeps plain linear layers: %s", self.name, why)
        if config.prefix_cache_bytes > 0 and plain_cache:
            self._prefixes = PrefixCache(config.prefix_cache_bytes)
        self._model = model

    def _unavailable(self, exc: BaseException) -> ModelUnavailableError:
        where = self._dir if self._dir is not None else "its directory"
        return ModelUnavailableError(
            f"could not load model {self.name!r} from {str(where)!r}: {type(exc).__name__}: {exc}"
        )

    def _decode(self, ids: Sequence[int]) -> str:
        with self._tokenizer_lock:
            text: str = self._tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    # --- the thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            self._load()
        except BaseException as exc:  # every job from now on gets the load error
            error = exc if isinstance(exc, ModelUnavailableError) else self._unavailable(exc)
            self.ready.set_exception(error)
            while (job := self._queue.get()) is not None:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(error)
            return
        self.ready.set_result(None)
        pending = self._pending
        while pending or not self._stopping:
            if not pending:
                job = self._queue.get()
                if job is None:
                    self._stopping = True
                    continue
                pending.append(job)
            if not self._stopping:
                self._stopping = self._gather(pending)
            batch = self._take_batch(pending)
            if batch:
                self._run(batch)
        self._model = self._prefixes = self._pool = None  # free weights and states once stopped

    def _gather(self, pending: list[Job]) -> bool:
        """Add queued jobs to `pending`, waiting briefly for companions; True on stop."""
        deadline = time.monotonic() + COLLECT_WINDOW_S
        while True:
            wait = deadline - time.monotonic()
            try:
                if wait > 0 and len(pending) < self._config.max_batch_size:
                    job = self._queue.get(timeout=wait)
                else:
                    job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            pending.append(job)

    def _take_batch(self, pending: list[Job]) -> list[Job]:
        """Remove and return the oldest job and those it can share a `generate` call with."""
        first = pending[0]
        batch: list[Job] = []
        rest: list[Job] = []
        for job in pending:
            fits = (
                job is first
                or (
                    isinstance(first, GenerationJob)
                    and isinstance(job, GenerationJob)
                    and job.sampling.batches_with(first.sampling)
                )
                or (
                    self._runs_ragged
                    and isinstance(first, ScoringJob)
                    and isinstance(job, ScoringJob)
                )
            )
            if fits and len(batch) < self._config.max_batch_size:
                if job.future.set_running_or_notify_cancel():  # False: cancelled while queued
                    batch.append(job)
            else:
                rest.append(job)
        pending[:] = rest
        return batch

    def _run(self, batch: list[Job]) -> None:
        started = time.monotonic()
        try:
            first = batch[0]
            if isinstance(first, ScoringJob) and self._runs_ragged:
                self._score_in_one_step([job for job in batch if isinstance(job, ScoringJob)])
            elif isinstance(first, ScoringJob):
                scored = self._score(first)
                self.stats.scorings += 1  # before the result, which may wake a reader of stats
                first.future.set_result(scored)
            else:
                self._generate([job for job in batch if isinstance(job, GenerationJob)])
        except BaseException as exc:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self.stats.busy_seconds += time.monotonic() - started

    def _generate(self, jobs: list[GenerationJob]) -> None:
        prompts: list[list[int]] = []
        ready: list[GenerationJob] = []
        for job in jobs:  # a bad request fails alone, not its whole batch
            try:
                ids = self.encode_chat(job.chat)
                self._check_fits(len(ids) + 1)
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            self._add_reply_stops(job)
            prompts.append(ids)
            ready.append(job)
        if not ready:
            return
        if self._runs_batches and min(map(len, prompts)) >= 2:
            self._decode_continuously(ready, prompts)
            return
        room = [self._context_length - len(p) for p in prompts]
        limits = [min(j.max_new_tokens, r) for j, r in zip(ready, room, strict=True)]
        sampling = ready[0].sampling
        self.stats.prompt_tokens_encoded += sum(map(len, prompts))
        with torch.inference_mode():
            replies = generate_rows(
                self._model,
                prompts,
                limits=limits,
                stops=[j.stops for j in ready],
                sampling=(sampling.temperature, sampling.top_p),
                generators=[self._row_generator(job.sampling) for job in ready],
                pad_id=self._tokenizer.pad_token_id,
                eos_ids=self._eos_ids,
                decode=self._decode,
            )
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(ready))
        for job, prompt, (text, reason, produced) in zip(ready, prompts, replies, strict=True):
            self.stats.requests += 1
            self.stats.generated_tokens += produced
            job.future.set_result(Generated(text, reason, len(prompt), produced))

    def _decode_continuously(self, jobs: list[GenerationJob], prompts: list[list[int]]) -> None:
        """Decode `jobs` in a `RunningBatch` (a `RaggedBatch` for the Llama family):
        each row leaves when it ends, and queued requests with the same temperature and
        top-p join between steps."""
        sampling = jobs[0].sampling
        batch: DecodeBatch = (
            self._ragged_batch() if self._runs_ragged else RunningBatch(self._model)
        )
        self.stats.batches += 1

        def choose(logits: torch.Tensor) -> torch.Tensor:
            generators = [row.generator for row in batch.rows]
            return choose_tokens(logits, sampling.temperature, sampling.top_p, generators)

        try:
            with torch.inference_mode():
                self._join(batch, jobs, prompts)
                while len(batch):
                    batch.step(choose)
                    if isinstance(batch, RaggedBatch):
                        self._store_prompts_fed(batch)
                    batch.remove([i for i in range(len(batch)) if self._leaves(batch, i)])
                    if not len(batch):
                        break
                    room = self._config.max_batch_size - len(batch)
                    joiners, scorings = self._between_steps(sampling, room)
                    if joiners:
                        self._join(batch, *self._encode_all(joiners))
                    self._start_scorings(batch, scorings, room - len(joiners))
        except BaseException as exc:  # joiners are not in the caller's batch: fail them here
            for row in batch.rows:
                if not row.request.future.done():
                    row.request.future.set_exception(exc)
            raise
        finally:
            if isinstance(batch, RaggedBatch):
                self._release(batch)

    def _join(
        self, batch: DecodeBatch, jobs: list[GenerationJob], prompts: list[list[int]]
    ) -> None:
        if isinstance(batch, RaggedBatch):
            self._prefill_shared_prefixes(prompts)
        for job, prompt in zip(jobs, prompts, strict=True):
            limit = min(job.max_new_tokens, self._context_length - len(prompt))
            generator = self._row_generator(job.sampling)
            if isinstance(batch, RaggedBatch):  # the next step feeds what is not cached
                states, reused = self._cached_prefix(prompt, most=len(prompt) - 1)
                ragged_row: Row[GenerationJob | _RowScoring] = Row(job, prompt, limit, generator)
                batch.add(ragged_row, states, prompt[reused:])
                self._count_prompt(reused=reused, encoded=len(prompt) - reused)
                continue
            try:
                states = self._prompt_states(prompt[:-1])
            except Exception as exc:  # this request fails alone
                job.future.set_exception(exc)
                continue
            batch.add(Row(job, prompt, limit, generator), states, prompt[-1])
            self.stats.prompt_tokens_encoded += 1  # the last prompt token, fed by the step
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))

    def _prefill_shared_prefixes(self, prompts: list[list[int]]) -> None:
        """Encode once, through the prefix cache, what prompts joining together share
        past their cached prefixes (a system prompt, when sessions start together), so
        that the step that feeds them does not encode it once per row."""
        if self._prefixes is None or len(prompts) < 2:
            return
        shared = {  # neighbours in sorted order share the longest prefixes
            tuple(a[: _common_prefix(a, b)]) for a, b in itertools.pairwise(sorted(prompts))
        }
        for head in sorted(shared, key=len):
            _, cached = self._cached_prefix(list(head), most=len(head))
            if len(head) - cached >= MIN_SHARED_PREFILL:
                self._prompt_states(list(head))

    def _store_prompts_fed(self, batch: RaggedBatch[GenerationJob | _RowScoring]) -> None:
        """Cache the states of prompts the last step fed, for other sessions' prompts
        that start the same way (their row's end replaces the entry with prompt and
        reply)."""
        if self._prefixes is None:
            return
        for index, row in enumerate(batch.rows):
            if len(row.generated) == 1:
                tokens, states = batch.states_of(index)
                self._prefixes.store(torch.tensor(tokens, dtype=torch.long), states)

    def _end_row(self, batch: DecodeBatch, index: int) -> bool:
        """Answer row `index`'s request if its last token ended it; True if it did.

        The row's states go to the prefix cache: the session's next prompt for this
        role repeats the reply, so it need not be encoded again.
        """
        row = batch.rows[index]
        job, produced = row.request, len(row.generated)
        assert isinstance(job, GenerationJob)  # scoring rows leave in `_leaves`
        if row.generated[-1] in self._eos_ids:
            reason: FinishReason = "stop"
        elif job.stops and any(stop in self._decode(row.generated) for stop in job.stops):
            reason = "stop"
        elif produced >= row.limit:
            reason = "length"
        else:
            return False
        text, stopped = cut_at_stops(self._decode(row.generated), job.stops)
        if stopped:
            reason = "stop"
        if self._prefixes is not None:
            tokens, states = batch.states_of(index)
            self._prefixes.store(torch.tensor(tokens, dtype=torch.long), states)
        self.stats.requests += 1
        self.stats.generated_tokens += produced
        job.future.set_result(Generated(text, reason, len(row.prompt), produced))
        return True

    def _between_steps(
        self, sampling: Sampling, room: int
    ) -> tuple[list[GenerationJob], list[ScoringJob]]:
        """Up to `room` waiting generation jobs with this temperature and top-p, oldest
        first, to join the batch, and every waiting scoring job (a critic waiting on its
        verdict should not wait for a whole batch)."""
        while not self._stopping:  # everything queued, so that none is passed over
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._stopping = True
            else:
                self._pending.append(job)
        joiners: list[GenerationJob] = []
        scorings: list[ScoringJob] = []
        rest: list[Job] = []
        for job in self._pending:
            joins = len(joiners) < room and isinstance(job, GenerationJob)
            if isinstance(job, ScoringJob) or (joins and job.sampling.batches_with(sampling)):
                if not job.future.set_running_or_notify_cancel():  # cancelled while queued
                    continue
                if isinstance(job, ScoringJob):
                    scorings.append(job)
                else:
                    joiners.append(job)
            else:
                rest.append(job)
        self._pending[:] = rest
        return joiners, scorings

    def _start_scorings(self, batch: DecodeBatch, scorings: list[ScoringJob], room: int) -> None:
        """In a ragged batch, score each job in the next step as a row of its own while
        there is room (beside the decoding rows, a scoring's context and labels cost
        little more than their step), and the rest now, in one step; in a `RunningBatch`,
        score each now in a pass of its own."""
        if not isinstance(batch, RaggedBatch):
            for job in scorings:
                self._run_scoring(job)
            return
        room = max(room, 0)
        for job in scorings[:room]:
            self._add_scoring(batch, job)
        if scorings[room:]:  # no room: scored now, together, in a step of their own
            self._score_in_one_step(scorings[room:])

    def _score_in_one_step(self, jobs: list[ScoringJob]) -> None:
        """Score `jobs` together in one ragged step of their own; if it fails, they fail
        (and only they: a running batch goes on)."""
        batch = self._ragged_batch()
        try:
            with torch.inference_mode():
                for job in jobs:
                    self._add_scoring(batch, job)
                if len(batch):
                    batch.step(lambda logits: logits.argmax(dim=-1))
                    self._store_prompts_fed(batch)
                    for index in range(len(batch)):
                        self._leaves(batch, index)
        except Exception as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self._release(batch)

    def _ragged_batch(self) -> RaggedBatch[GenerationJob | _RowScoring]:
        """A new ragged batch over the worker's key/value pool."""
        if self._pool is None:
            self._pool = ragged.KeyValuePool(self._model, min_slots=self._config.max_batch_size)
        return RaggedBatch(self._model, self._pool)

    def _release(self, batch: RaggedBatch[GenerationJob | _RowScoring]) -> None:
        """Free the slots `batch` holds; once no batch uses the pool, let it go if it
        grew past `KEEP_POOL_BYTES`."""
        batch.close()
        pool = self._pool
        if pool is not None and pool.in_use == 0 and pool.nbytes > KEEP_POOL_BYTES:
            self._pool = None

    def _add_scoring(
        self, batch: RaggedBatch[GenerationJob | _RowScoring], job: ScoringJob
    ) -> None:
        """Add `job` as a row that feeds the labels' shared context past its cached
        prefix, each label a branch after it (or fail `job` if they do not encode or
        fit)."""
        try:
            sequences, start = self._label_sequences(job)
            self._check_fits(max(map(len, sequences)))
        except Exception as exc:  # this request fails alone
            job.future.set_exception(exc)
            return
        context = sequences[0][:start]  # every label's sequence starts with it
        branches = [sequence[start:] for sequence in sequences]
        states, reused = self._cached_prefix(context, most=len(context) - 1)
        scoring = _RowScoring(job, sum(map(len, sequences)))
        batch.add(Row(scoring, context, 1), states, context[reused:], branches)
        self._count_prompt(reused=reused, encoded=len(context) - reused + sum(map(len, branches)))

    def _run_scoring(self, job: ScoringJob) -> None:
        try:
            scored = self._score(job)
        except Exception as exc:  # this request fails alone
            job.future.set_exception(exc)
            return
        self.stats.scorings += 1  # before the result, which may wake a reader of stats
        job.future.set_result(scored)

    def _leaves(self, batch: DecodeBatch, index: int) -> bool:
        """Whether row `index` is done: a generation that ended (answered), or a
        scoring, fed by the last step (answered with its labels' scores)."""
        request = batch.rows[index].request
        if isinstance(request, _RowScoring):
            assert isinstance(batch, RaggedBatch)
            scores = batch.scores_of(index)
            assert scores is not None
            labels = dict(zip(request.job.labels, scores, strict=True))
            self.stats.scorings += 1  # before the result, which may wake a reader of stats
            request.future.set_result((labels, request.tokens_read))
            return True
        return self._end_row(batch, index)

    def _add_reply_stops(self, job: GenerationJob) -> None:
        """A base model's plain-text turns end at the template's stop strings."""
        if self._plain is not None:
            job.stops = (*job.stops, *self._plain.stop)

    def _encode_all(self, jobs: list[GenerationJob]) -> tuple[list[GenerationJob], list[list[int]]]:
        """The jobs whose prompts encode and fit (with at least two tokens), and those
        prompts; any other job fails alone."""
        ready: list[GenerationJob] = []
        prompts: list[list[int]] = []
        for job in jobs:
            try:
                ids = self.encode_chat(job.chat)
                self._check_fits(len(ids) + 1)
                if len(ids) < 2:
                    raise ValueError("a prompt needs at least two tokens")
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            self._add_reply_stops(job)
            ready.append(job)
            prompts.append(ids)
        return ready, prompts

    def _prompt_states(self, ids: list[int]) -> LayerStates:
        """Keys and values for `ids`, encoding only the tokens past the longest cached
        prompt they start with (with the prefix cache on); the result is cached in turn."""
        reusable, reused = self._cached_prefix(ids, most=len(ids))
        if reused == len(ids):
            states = reusable
        else:
            past = DynamicCache(ddp_cache_data=reusable or None, config=self._model.config)
            self._model(
                input_ids=torch.tensor([ids[reused:]], dtype=torch.long),
                cache=past,
                use_cache=True,
                logits_to_keep=1,
            )
            states = []
            for layer in cast("list[DynamicLayer]", past.layers):  # key/value layers
                assert layer.keys is not None and layer.values is not None  # filled above
                states.append((layer.keys, layer.values))
        if self._prefixes is not None:
            self._prefixes.store(torch.tensor(ids, dtype=torch.long), states)
        self._count_prompt(reused=reused, encoded=len(ids) - reused)
        return states

    def _cached_prefix(self, ids: list[int], *, most: int) -> tuple[LayerStates, int]:
        """The states of the longest cached prefix of `ids` (at most `most` tokens of
        it), and its length; no states and 0 with the prefix cache off or no match."""
        if self._prefixes is None:
            return [], 0
        cached, reused = self._prefixes.longest_prefix(torch.tensor(ids, dtype=torch.long))
        reused = min(reused, most)
        if cached is None or reused == 0:
            return [], 0
        return [(k[:, :, :reused], v[:, :, :reused]) for k, v in cached.states], reused

    def _count_prompt(self, *, reused: int, encoded: int) -> None:
        self.stats.prompt_tokens_reused += reused
        self.stats.prompt_tokens_encoded += encoded

    def _row_generator(self, sampling: Sampling) -> torch.Generator | None:
        """What a row with `sampling` draws from: none when greedy, else a generator of
        its own, seeded with the request's seed or with one drawn from the worker's
        stream (so unseeded runs are reproducible from the worker's seed)."""
        if sampling.temperature == 0:
            return None
        if sampling.seed is not None:
            return _generator(sampling.seed)
        return _generator(int(torch.randint(2**63 - 1, (), generator=self._rng)))

    def _label_sequences(self, job: ScoringJob) -> tuple[list[list[int]], int]:
        """Each label's whole sequence, and the index of the first token any label
        changes (from which labels are scored, so that they all share one context)."""
        context = self.encode_chat(job.chat, suffix=job.prefix)
        sequences = [self.encode_chat(job.chat, suffix=job.prefix + label) for label in job.labels]
        return sequences, max(1, min(_common_prefix(context, s) for s in sequences))

    def _score(self, job: ScoringJob) -> tuple[dict[str, float], int]:
        sequences, start = self._label_sequences(job)
        input_ids, attention_mask = pad_rows(sequences, self._tokenizer.pad_token_id, left=False)
        width = input_ids.shape[1]
        self._check_fits(width)
        read = sum(map(len, sequences))
        if start >= width:  # every label is empty
            return {label: 0.0 for label in job.labels}, read
        with torch.inference_mode():
            if self._prefixes is None or start < 2:
                self.stats.prompt_tokens_encoded += int(attention_mask.sum())
                logits = self._model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    logits_to_keep=torch.arange(start - 1, width - 1),  # only where labels are
                ).logits.float()
            else:  # the shared context from the prefix cache, then every label at once
                shared = self._prompt_states(sequences[0][: start - 1])
                self.stats.prompt_tokens_encoded += int(attention_mask[:, start - 1 :].sum())
                rows = len(sequences)
                past = DynamicCache(
                    ddp_cache_data=[
                        (k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in shared
                    ],
                    config=self._model.config,
                )
                logits = (
                    self._model(
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

    def _check_fits(self, tokens: int) -> None:
        if tokens > self._context_length:
            raise ValueError(
                f"a prompt of {tokens} tokens does not fit the {self._context_length}-token "
                f"context of {self.name!r}"
            )


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


def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    return limit if 0 < limit < 1_000_000 else 2048


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
