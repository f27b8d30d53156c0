"""The thread that owns a local causal LM and batches the requests waiting for it.

`TransformersChatCompletionClient` is the public face; this module holds the thread
and its queue. The thread loads the model (`LoadedModel`), then loops: take the oldest
request, collect whatever else is queued (waiting a few milliseconds for companions),
and decode the oldest request together with the queued ones that share its temperature
and top-p, up to `max_batch_size` rows. Each row stops on its own (end-of-turn token,
stop string, or its own token limit), and a sampled row draws from a random generator
of its own (seeded with the request's seed, else with a seed drawn from the worker's
stream), so its tokens do not depend on the rows beside it. Label scoring jobs run
alone, one forward pass each, between generations (or between steps of a running batch).

With continuous batching (`_continuous_decoding`: a model whose attention cache is one
growing key/value pair per layer), a row leaves the batch the step it ends, and queued
requests with the same temperature and top-p join between steps, taken from this
queue. Each prompt is encoded only past the longest cached prompt it starts with
(`_prompt_encoder`). Llama-family models decode in a `RaggedBatch`: a joining prompt
is fed in the batch's next step beside the other rows' tokens, and so is the context of
a scoring job that arrives meanwhile (`_label_scoring`). Other models decode in a
`RunningBatch`, with each prompt prefilled in a pass of its own. Without continuous
batching, the batch is one left-padded `generate` call that runs until its longest row
ends (`_generate_call`).

Importing this module imports neither torch nor transformers: the thread imports the
model's side (`_loaded_model`) when it starts, and the tokenizer (`_chat_tokenizer`)
imports transformers when it first loads.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from journey.engine._chat_tokenizer import ChatTokenizer
from journey.engine.config import EngineConfig
from journey.engine.jobs import Chat, GenerationJob, GenerationStats, Job, Sampling, ScoringJob
from journey.errors import ModelUnavailableError

if TYPE_CHECKING:
    from journey.engine._loaded_model import LoadedModel

COLLECT_WINDOW_S = 0.005  # how long the worker waits for companions before a batch starts


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
        self._config = config
        self._tokens = ChatTokenizer(model_dir, name=name)
        self._loaded: LoadedModel | None = None  # the model, once loaded (worker thread only)
        self._lock = threading.Lock()  # thread start, queue and close; never held for long
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
        return self._tokens.context_length

    def encode_chat(self, chat: Chat, *, suffix: str = "") -> list[int]:
        """Token ids of the chat-template prompt (then `suffix`); a final assistant
        message is continued instead of answered. A model without a chat template (a base
        model) gets the plain-text prompt of `plain_prompt` instead."""
        return self._tokens.encode_chat(chat, suffix=suffix)

    # --- the thread -----------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            from journey.engine._loaded_model import LoadedModel  # torch, in this thread

            loaded = self._loaded = LoadedModel.load(self._tokens, self._config, self.stats)
        except BaseException as exc:  # every job from now on gets the load error
            error = exc if isinstance(exc, ModelUnavailableError) else self._tokens.unavailable(exc)
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
            batch = self._take_batch(pending, ragged_scorings=loaded.runs_ragged)
            if batch:
                self._run(loaded, batch)
        self._loaded = None  # free weights and states once stopped

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

    def _take_batch(self, pending: list[Job], *, ragged_scorings: bool) -> list[Job]:
        """Remove and return the oldest job and those it can share a `generate` call with
        (scorings share one with `ragged_scorings`, a ragged step)."""
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
                    ragged_scorings
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

    def _run(self, loaded: LoadedModel, batch: list[Job]) -> None:
        started = time.monotonic()
        try:
            loaded.run(batch, self._between_steps)
        except BaseException as exc:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self.stats.busy_seconds += time.monotonic() - started

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
