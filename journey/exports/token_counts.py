"""How `max_tokens` counts: a tokenizer-free estimate, or the embedded model's tokenizer."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TokenCounter", "count_tokens_cheaply", "embedded_token_counter"]

TokenCounter = Callable[[str], int]


def count_tokens_cheaply(text: str) -> int:
    """A tokenizer-free estimate: the larger of the word count and characters / 4."""
    return max(len(text.split()), len(text) // 4)


def embedded_token_counter() -> TokenCounter:
    """Token counts from the embedded model's tokenizer (loads only the tokenizer)."""
    from transformers import AutoTokenizer

    from journey.engine.model_store import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    return lambda text: len(tokenizer(text)["input_ids"])
