"""Prompts' keys and values for the decode paths, through the prefix cache when it is on.

Each prompt is encoded only past the longest cached prompt it starts with, and what
is encoded is cached in turn; `stats` counts the prompt tokens reused and encoded.
With the prefix cache off, every prompt is encoded whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from journey.engine._prefix_cache import LayerStates, PrefixCache
from journey.engine._ragged_batch import RaggedBatch
from journey.engine.jobs import GenerationStats

MIN_SHARED_PREFILL = 16
"""Fewest shared uncached prompt tokens worth a forward pass of their own."""


class PromptEncoder:
    """Encodes prompts on `model`, reusing and filling `prefixes` (None: no cache)."""

    def __init__(self, model: Any, prefixes: PrefixCache | None, stats: GenerationStats) -> None:
        self._model = model
        self._prefixes = prefixes
        self._stats = stats

    @property
    def caching(self) -> bool:
        """Whether the prefix cache is on."""
        return self._prefixes is not None

    def states(self, ids: list[int]) -> LayerStates:
        """Keys and values for `ids`, encoding only the tokens past the longest cached
        prompt they start with (with the prefix cache on); the result is cached in turn."""
        reusable, reused = self.cached_prefix(ids, most=len(ids))
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
        self.store(ids, states)
        self.count(reused=reused, encoded=len(ids) - reused)
        return states

    def cached_prefix(self, ids: list[int], *, most: int) -> tuple[LayerStates, int]:
        """The states of the longest cached prefix of `ids` (at most `most` tokens of
        it), and its length; no states and 0 with the prefix cache off or no match."""
        if self._prefixes is None:
            return [], 0
        cached, reused = self._prefixes.longest_prefix(torch.tensor(ids, dtype=torch.long))
        reused = min(reused, most)
        if cached is None or reused == 0:
            return [], 0
        return [(k[:, :, :reused], v[:, :, :reused]) for k, v in cached.states], reused

    def store(self, tokens: list[int], states: LayerStates) -> None:
        """Cache `states` for `tokens` (with the prefix cache on)."""
        if self._prefixes is not None:
            self._prefixes.store(torch.tensor(tokens, dtype=torch.long), states)

    def count(self, *, reused: int, encoded: int) -> None:
        self._stats.prompt_tokens_reused += reused
        self._stats.prompt_tokens_encoded += encoded

    def prefill_shared(self, prompts: list[list[int]]) -> None:
        """Encode once, through the prefix cache, what prompts joining together share
        past their cached prefixes (a system prompt, when sessions start together), so
        that the step that feeds them does not encode it once per row."""
        if self._prefixes is None or len(prompts) < 2:
            return
        shared = {  # neighbours in sorted order share the longest prefixes
            tuple(a[: common_prefix(a, b)]) for a, b in itertools.pairwise(sorted(prompts))
        }
        for head in sorted(shared, key=len):
            _, cached = self.cached_prefix(list(head), most=len(head))
            if len(head) - cached >= MIN_SHARED_PREFILL:
                self.states(list(head))

    def store_fed(self, batch: RaggedBatch[Any]) -> None:
        """Cache the states of prompts the last step fed, for other sessions' prompts
        that start the same way (their row's end replaces the entry with prompt and
        reply)."""
        if self._prefixes is None:
            return
        for index, row in enumerate(batch.rows):
            if len(row.generated) == 1:
                self.store(*batch.states_of(index))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` share from the start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
