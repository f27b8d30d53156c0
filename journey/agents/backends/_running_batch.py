"""A decode batch that rows join and leave between steps (continuous batching).

`generate` runs a batch until its longest row ends, with finished rows still computed
and requests that arrive meanwhile kept waiting for the whole batch. A debate's
sessions drift out of step, so that left most batches small and most rows idle. Here
each row leaves as soon as it ends, and a new request joins at the next step with its
prompt's keys and values (prefilled apart, through the prefix cache).

The batch holds one key/value cache, left-padded: row i's states end at the last
column, and `mask` marks the columns a row really has. Positions are counted from the
mask, so padding never shifts a row's positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from transformers import DynamicCache

from journey.agents.backends._prefix_cache import LayerStates

T = TypeVar("T")


@dataclass
class Row(Generic[T]):
    request: T
    prompt_tokens: int
    limit: int
    """Most tokens this row may generate."""
    generated: list[int] = field(default_factory=list)


class RunningBatch(Generic[T]):
    """Rows decoding together; `step` generates one token for each."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.rows: list[Row[T]] = []
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((0, 0), dtype=torch.long)
        self._next: list[int] = []
        """The token each row feeds at the next step."""

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, row: Row[T], states: LayerStates, last_prompt_token: int) -> None:
        """Join with the states of every prompt token but the last, which the next step
        feeds."""
        length = states[0][0].shape[2]
        width = max(self._mask.shape[1], length)
        self._pad_to(width)
        mask = torch.zeros((1, width), dtype=torch.long)
        mask[0, width - length :] = 1
        if self._cache is None:
            padded = [(_left_pad(k, width), _left_pad(v, width)) for k, v in states]
            self._cache = DynamicCache(ddp_cache_data=padded, config=self._model.config)
        else:
            for layer, (keys, values) in zip(self._cache.layers, states, strict=True):
                layer.keys = torch.cat([layer.keys, _left_pad(keys, width)])
                layer.values = torch.cat([layer.values, _left_pad(values, width)])
        self._mask = torch.cat([self._mask, mask])
        self.rows.append(row)
        self._next.append(last_prompt_token)

    def step(self, choose: Any) -> None:
        """One forward pass for every row; `choose` turns the last logits, one row each,
        into token ids, which are appended to the rows."""
        mask = torch.cat([self._mask, torch.ones((len(self.rows), 1), dtype=torch.long)], dim=1)
        positions = mask.sum(dim=1, keepdim=True) - 1
        logits = self._model(
            input_ids=torch.tensor(self._next, dtype=torch.long).unsqueeze(1),
            attention_mask=mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
        ).logits[:, -1]
        self._mask = mask
        tokens: list[int] = choose(logits.float()).tolist()
        for row, token in zip(self.rows, tokens, strict=True):
            row.generated.append(token)
        self._next = tokens

    def remove(self, indices: list[int]) -> None:
        """Drop these rows, then the leading columns no remaining row attends to."""
        if not indices:
            return
        gone = set(indices)
        keep = [i for i in range(len(self.rows)) if i not in gone]
        self.rows = [self.rows[i] for i in keep]
        self._next = [self._next[i] for i in keep]
        if not keep:
            self._cache, self._mask = None, torch.zeros((0, 0), dtype=torch.long)
            return
        index = torch.tensor(keep, dtype=torch.long)
        mask = self._mask[index]
        lead = int((mask.cumsum(dim=1) == 0).sum(dim=1).min())
        self._mask = mask[:, lead:]
        assert self._cache is not None
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, lead:]
            layer.values = layer.values[index, :, lead:]

    def _pad_to(self, width: int) -> None:
        grow = width - self._mask.shape[1]
        if grow <= 0:
            return
        self._mask = torch.nn.functional.pad(self._mask, (grow, 0))
        if self._cache is None:
            return
        for layer in self._cache.layers:
            layer.keys = _left_pad(layer.keys, width)
            layer.values = _left_pad(layer.values, width)


def _left_pad(states: torch.Tensor, width: int) -> torch.Tensor:
    """`[batch, heads, tokens, dim]` states with zero columns before them up to `width`."""
    grow = width - states.shape[2]
    return torch.nn.functional.pad(states, (0, 0, grow, 0)) if grow > 0 else states


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The next token of each row: the most likely at temperature 0, else sampled from
    the temperature-scaled distribution cut to its top-p nucleus (as OpenAI samples)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        ordered, order = probs.sort(dim=-1, descending=True)
        outside = ordered.cumsum(dim=-1) - ordered > top_p  # the first token always stays
        probs = torch.zeros_like(probs).scatter(-1, order, ordered.masked_fill(outside, 0.0))
    return torch.multinomial(probs, num_samples=1).squeeze(-1)
