"""The model's tokenizer, loaded on first use from any thread: chat prompts to token ids.

The model worker's event-loop side counts tokens with it (`count_tokens`) while the
worker thread encodes requests, so loading is locked, and so is every call into the
tokenizer (a fast tokenizer is not safe across threads). A model without a chat
template (a base model) gets the plain-text prompts of `plain_prompt` instead.
transformers is imported only when the tokenizer first loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from journey.engine.jobs import Chat, GenerationJob
from journey.engine.plain_prompt import PlainPromptTemplate, load_plain_template
from journey.errors import ModelUnavailableError


class ChatTokenizer:
    """A model's tokenizer and context length, and the directory they load from."""

    def __init__(self, model_dir: Path | Callable[[], Path], *, name: str) -> None:
        """`model_dir`: what `from_pretrained` loads, or a function returning it, called
        once when first needed (the embedded model builds its cache there)."""
        self.name = name
        self._dir_source = model_dir
        self._dir: Path | None = None if callable(model_dir) else model_dir
        self._load_lock = threading.Lock()  # model directory (maybe a 30 s build) and tokenizer
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe across threads
        self._tokenizer: Any = None
        self._plain: PlainPromptTemplate | None = None
        """Set for a model without a chat template (a base model) when it loads."""
        self._context_length = 0

    def directory(self) -> Path:
        """The model's directory (built first, for a function that builds it)."""
        with self._load_lock:
            if self._dir is None:
                source = self._dir_source
                assert callable(source)
                self._dir = source()
            return self._dir

    def load(self) -> Any:
        """The transformers tokenizer, loaded (with the model's config) on first use.

        Raises:
            ModelUnavailableError: The tokenizer or config could not be loaded.
        """
        if self._tokenizer is None:
            directory = self.directory()
            with self._load_lock:
                if self._tokenizer is None:
                    from transformers import AutoConfig, AutoTokenizer

                    try:
                        tokenizer = AutoTokenizer.from_pretrained(directory)
                        config = AutoConfig.from_pretrained(directory)
                    except (OSError, ValueError) as exc:
                        raise self.unavailable(exc) from exc
                    if not tokenizer.chat_template:  # a base model: plain-text prompts
                        self._plain = load_plain_template()
                    if tokenizer.pad_token_id is None:
                        tokenizer.pad_token = tokenizer.eos_token
                    self._context_length = _context_length(config, tokenizer)
                    self._tokenizer = tokenizer
        return self._tokenizer

    @property
    def context_length(self) -> int:
        self.load()
        return self._context_length

    @property
    def pad_token_id(self) -> int:
        """The padding token (the end-of-sequence one for a model without its own)."""
        pad: int = self.load().pad_token_id
        return pad

    def encode_chat(self, chat: Chat, *, suffix: str = "") -> list[int]:
        """Token ids of the chat-template prompt (then `suffix`); a final assistant
        message is continued instead of answered. A model without a chat template (a base
        model) gets the plain-text prompt of `plain_prompt` instead."""
        tokenizer = self.load()
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

    def decode(self, ids: Sequence[int]) -> str:
        with self._tokenizer_lock:
            text: str = self._tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def check_fits(self, tokens: int) -> None:
        """Raises ValueError when `tokens` tokens do not fit the model's context."""
        if tokens > self._context_length:
            raise ValueError(
                f"a prompt of {tokens} tokens does not fit the {self._context_length}-token "
                f"context of {self.name!r}"
            )

    def add_reply_stops(self, job: GenerationJob) -> None:
        """A base model's plain-text turns end at the template's stop strings."""
        if self._plain is not None:
            job.stops = (*job.stops, *self._plain.stop)

    def encode_jobs(self, jobs: list[GenerationJob]) -> tuple[list[GenerationJob], list[list[int]]]:
        """The jobs whose prompts encode and fit (with at least two tokens), and those
        prompts; any other job fails alone."""
        ready: list[GenerationJob] = []
        prompts: list[list[int]] = []
        for job in jobs:
            try:
                ids = self.encode_chat(job.chat)
                self.check_fits(len(ids) + 1)
                if len(ids) < 2:
                    raise ValueError("a prompt needs at least two tokens")
            except Exception as exc:
                job.future.set_exception(exc)
                continue
            self.add_reply_stops(job)
            ready.append(job)
            prompts.append(ids)
        return ready, prompts

    def unavailable(self, exc: BaseException) -> ModelUnavailableError:
        """The error every request gets when the model cannot be loaded."""
        where = self._dir if self._dir is not None else "its directory"
        return ModelUnavailableError(
            f"could not load model {self.name!r} from {str(where)!r}: {type(exc).__name__}: {exc}"
        )


def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", 0)
    return limit if 0 < limit < 1_000_000 else 2048
