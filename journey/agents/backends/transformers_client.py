"""An AutoGen model client for a local Hugging Face causal LM, the embedded model included.

One worker thread owns the model (`journey.engine.ModelWorker`); the event loop only
queues requests and awaits futures, so a debate's other sessions keep running while
the model computes. Requests that arrive while the model is busy are run together as
one batch (up to `EngineConfig.max_batch_size`, grouped by temperature and top-p): on
CPU a batch of 8 costs little more than one sequence. Label scoring goes through
the same worker, so it never runs at the same time as generation.

Greedy decoding (temperature 0) gives the same text whether a request ran alone or
in a batch (tested). A sampled request draws from a random generator of its own,
seeded with its `seed`, else with a seed drawn from the worker's stream (seeded once
by `EngineConfig.seed`), so a seeded request gives the same text alone or in any batch
(tested), and requests with other seeds, or none, batch with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema

from journey.engine import EngineConfig, ModelWorker
from journey.engine.config import AUTO_DTYPE
from journey.engine.jobs import (
    GREEDY,
    Chat,
    GenerationJob,
    GenerationStats,
    Sampling,
    ScoringJob,
)
from journey.engine.model_store import EMBEDDED_MODEL_ID, embedded_model_dir
from journey.errors import ConfigError
from journey.protocols import LabelScoring

__all__ = ["AUTO_DTYPE", "GenerationStats", "TransformersChatCompletionClient"]

_CREATE_ARGS = frozenset({"max_tokens", "temperature", "top_p", "stop", "seed"})
_SAMPLING_OPTIONS = ("max_new_tokens", "temperature", "top_p")
"""The options `from_options` gives the constructor; the rest make its `EngineConfig`."""

_T = TypeVar("_T")


class TransformersChatCompletionClient(ChatCompletionClient):
    """A `ChatCompletionClient` (and `LabelScoringClient`) running a local causal LM on CPU.

    Plain-text chat only: no tools, no JSON mode, no images. A final `AssistantMessage`
    in the request is continued rather than answered. `stats` counts requests and
    batches.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | Callable[[], Path],
        *,
        model_name: str,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.95,
        engine: EngineConfig | None = None,
    ) -> None:
        """Build the client; the model loads in the worker thread on first use (or `load()`).

        Args:
            model_dir: A directory `AutoModelForCausalLM.from_pretrained` loads, or a function
                returning one, called once in the worker (the embedded model builds its cache).
            model_name: The name reported in messages and `repr`.
            max_new_tokens: Default reply length limit; a request's `max_tokens` overrides it.
            temperature: Default sampling temperature; 0 decodes greedily.
            top_p: Default nucleus-sampling mass.
            engine: How the worker loads, batches and seeds (dtype, seed, max_batch_size,
                num_threads, prefix_cache_mb, ...); default `EngineConfig()`. A sampled
                request without a `seed` of its own draws one from the worker's random
                stream, seeded once by `engine.seed`.

        Raises:
            ConfigError: A sampling default is out of range.
        """
        _check_create_settings(max_new_tokens, temperature, top_p, error=ConfigError)
        self._config = EngineConfig() if engine is None else engine
        self._model_name = model_name
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._top_p = top_p
        self._worker = ModelWorker(
            model_dir if callable(model_dir) else Path(model_dir),
            name=model_name,
            config=self._config,
        )
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    @classmethod
    def from_options(
        cls,
        model_dir: str | os.PathLike[str] | Callable[[], Path],
        options: Mapping[str, Any],
        *,
        model_name: str,
    ) -> TransformersChatCompletionClient:
        """The client a model spec's options make (`embedded?temperature=0&max_batch_size=4`):
        `max_new_tokens`, `temperature` and `top_p` go to the constructor, every other
        option is an `EngineConfig` field.

        Raises:
            ConfigError: An option is out of range or names no setting.
        """
        settings = (*_SAMPLING_OPTIONS, *(f.name for f in dataclasses.fields(EngineConfig)))
        unknown = sorted(set(options) - set(settings))
        if unknown:
            raise ConfigError(
                f"no local model option {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(settings)}"
            )
        sampling = {name: value for name, value in options.items() if name in _SAMPLING_OPTIONS}
        engine = EngineConfig.of({n: v for n, v in options.items() if n not in _SAMPLING_OPTIONS})
        return cls(model_dir, model_name=model_name, **sampling, engine=engine)

    @classmethod
    def embedded(
        cls, *, model_name: str = EMBEDDED_MODEL_ID, **options: Any
    ) -> TransformersChatCompletionClient:
        """The embedded SmolLM2-135M-Instruct; its cache is built in the worker on first use.

        Args:
            model_name: The name reported in messages and `repr`.
            **options: As `from_options` takes them (temperature, dtype, max_batch_size, ...).
        """
        return cls.from_options(embedded_model_dir, options, model_name=model_name)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self._model_name!r}, "
            f"dtype={self._config.dtype_name!r}, stats={self.stats!r})"
        )

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def stats(self) -> GenerationStats:
        """Requests answered, `generate` calls made, tokens generated, time busy."""
        return self._worker.stats

    async def load(self) -> None:
        """Load the model now instead of on the first request; returns when it is ready.

        Raises:
            ModelUnavailableError: The model could not be found, built or loaded.
        """
        self._worker.start()
        await asyncio.shield(asyncio.wrap_future(self._worker.ready))

    # --- ChatCompletionClient -------------------------------------------------------------

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """One reply, batched with whatever other requests are waiting for the model.

        `extra_create_args` may hold `max_tokens`, `temperature` (0 = greedy), `top_p`,
        `stop` (a string or a list: the reply is cut before the earliest one) and `seed`.
        `finish_reason` is "length" when `max_tokens` cut the reply, else "stop".

        Raises:
            ValueError: Tools, JSON output, images, an unknown create argument, or a
                prompt longer than the model's context.
            ModelUnavailableError: The model could not be loaded, or the client is closed.
        """
        if tools:
            raise ValueError("local transformers models do not support tools (function calling)")
        if json_output:
            raise ValueError("local transformers models do not support JSON or structured output")
        job = self._generation_job(messages, extra_create_args)
        generated = await self._submit(job, job.future, cancellation_token)
        usage = RequestUsage(generated.prompt_tokens, generated.completion_tokens)
        self._usage = _add(self._usage, usage)
        return CreateResult(
            finish_reason=generated.finish_reason, content=generated.text, usage=usage, cached=False
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[Any] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Not streamed token by token: yields the whole reply as one chunk, then the result.

        Batched replies finish together anyway, and stop strings are cut reliably only
        once the text is complete.
        """
        result = await self.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        assert isinstance(result.content, str)
        yield result.content
        yield result

    async def close(self) -> None:
        """Finish the requests already queued, then stop the worker and free the model."""
        thread = self._worker.stop()
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """Tokens of the chat-template prompt. The first call may block to load the
        tokenizer (and, for the embedded model, to build the cache)."""
        return len(self._worker.encode_chat(_chat_messages(messages)))

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = ()
    ) -> int:
        """The model's context (`max_position_embeddings`) minus `count_tokens(messages)`."""
        used = self.count_tokens(messages)
        return max(self._worker.context_length - used, 0)

    @property
    def capabilities(self) -> ModelCapabilities:
        return {"vision": False, "function_calling": False, "json_output": False}

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=False,
            function_calling=False,
            json_output=False,
            structured_output=False,
            family=ModelFamily.UNKNOWN,
        )

    # --- LabelScoringClient ---------------------------------------------------------------

    @property
    def supports_label_scoring(self) -> bool:
        return True

    @property
    def label_scoring(self) -> LabelScoring:
        return LabelScoring.SEQUENCE

    async def score_labels(
        self, messages: Sequence[LLMMessage], labels: Sequence[str], *, prefix: str = ""
    ) -> dict[str, float]:
        """Log-probability of each label as the start of the assistant's reply.

        The chat template opens the assistant turn, `prefix` is forced, and all labels
        are scored in one batched forward pass. Where the tokenizer merges the end of
        `prefix` with a label ("ACTION: " + "continue" gives the token " continue"),
        the score covers the merged text too, identically for every label.

        Args:
            messages: The conversation; the assistant turn to score comes after it.
            labels: Candidate continuations, e.g. ["continue", "backtrack"].
            prefix: Text the assistant turn starts with before the label, e.g. "ACTION: ".

        Returns:
            A mapping from each label to the summed log-probability of its tokens.
        """
        if not labels:
            return {}
        job = ScoringJob(
            _chat_messages(messages), prefix, list(labels), concurrent.futures.Future()
        )
        scores, tokens = await self._submit(job, job.future, None)
        self._usage = _add(self._usage, RequestUsage(prompt_tokens=tokens, completion_tokens=0))
        return scores

    # --- helpers --------------------------------------------------------------------------

    def _generation_job(
        self, messages: Sequence[LLMMessage], args: Mapping[str, Any]
    ) -> GenerationJob:
        unknown = sorted(set(args) - _CREATE_ARGS)
        if unknown:
            raise ValueError(
                f"{self._model_name!r} does not support create argument(s) {', '.join(unknown)}; "
                f"supported: {', '.join(sorted(_CREATE_ARGS))}"
            )
        max_tokens = args.get("max_tokens")
        max_tokens = self._max_new_tokens if max_tokens is None else max_tokens
        temperature = args.get("temperature")
        temperature = self._temperature if temperature is None else float(temperature)
        top_p = args.get("top_p")
        top_p = self._top_p if top_p is None else float(top_p)
        _check_create_settings(max_tokens, temperature, top_p, error=ValueError)
        stop = args.get("stop") or ()
        stops = tuple(s for s in ([stop] if isinstance(stop, str) else stop) if s)
        if not all(isinstance(s, str) for s in stops):
            raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")
        seed = args.get("seed")
        sampling = (
            GREEDY
            if temperature == 0
            else Sampling(temperature, top_p, None if seed is None else int(seed))
        )
        return GenerationJob(
            _chat_messages(messages), max_tokens, stops, sampling, concurrent.futures.Future()
        )

    async def _submit(
        self,
        job: GenerationJob | ScoringJob,
        future: concurrent.futures.Future[_T],
        cancellation_token: CancellationToken | None,
    ) -> _T:
        self._worker.submit(job)
        waiter = asyncio.wrap_future(future)  # cancelling it drops the job if still queued
        if cancellation_token is not None:
            cancellation_token.link_future(waiter)
        return await waiter


def _chat_messages(messages: Sequence[LLMMessage]) -> Chat:
    """AutoGen messages as chat-template messages; only plain text is supported."""
    chat: Chat = []
    for message in messages:
        if isinstance(message, SystemMessage):
            chat.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            content = message.content
            if not isinstance(content, str):
                if not all(isinstance(part, str) for part in content):
                    raise ValueError("local transformers models read text only, not images")
                content = "\n".join(str(part) for part in content)
            chat.append({"role": "user", "content": content})
        elif isinstance(message, AssistantMessage):
            if not isinstance(message.content, str):
                raise ValueError("local transformers models do not support function calls")
            chat.append({"role": "assistant", "content": message.content})
        else:
            raise ValueError(
                f"{type(message).__name__} is not supported: local transformers models have "
                "no tools"
            )
    return chat


def _check_create_settings(
    max_tokens: object, temperature: float, top_p: float, *, error: type[Exception]
) -> None:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise error(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not temperature >= 0:
        raise error(f"temperature must be >= 0, got {temperature!r}")
    if not 0 < top_p <= 1:
        raise error(f"top_p must be in (0, 1], got {top_p!r}")


def _add(a: RequestUsage, b: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
    )
