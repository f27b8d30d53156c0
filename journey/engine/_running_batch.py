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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from journey.engine._prefix_cache import LayerStates

T = TypeVar("T")


@dataclass
class Row(Generic[T]):
    request: T
    prompt: list[int]
    limit: int
    """Most tokens this row may generate."""
    generator: torch.Generator | None = None
    """What the row samples from (`choose_tokens`); None: its most likely token."""
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
            self._cache = DynamicCache(config=self._model.config)
            self._cache.layers = [GrowingLayer() for _ in self._cache.layers]
            for layer, (keys, values) in zip(self._layers(), states, strict=True):
                layer.update(_left_pad(keys, width), _left_pad(values, width))
        else:
            for layer, (keys, values) in zip(self._layers(), states, strict=True):
                held_keys, held_values = layer.states()
                layer.keys = torch.cat([held_keys, _left_pad(keys, width)])
                layer.values = torch.cat([held_values, _left_pad(values, width)])
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

    def states_of(self, index: int) -> tuple[list[int], LayerStates]:
        """Row `index`'s tokens with states (its prompt and all it generated but the
        last token, which no step has fed yet) and a copy of those states."""
        row = self.rows[index]
        tokens = row.prompt + row.generated[:-1]
        states = [
            (
                keys[index : index + 1, :, -len(tokens) :].clone(),
                values[index : index + 1, :, -len(tokens) :].clone(),
            )
            for keys, values in (layer.states() for layer in self._layers())
        ]
        return tokens, states

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
        for layer in self._layers():
            keys, values = layer.states()
            layer.keys = keys[index, :, lead:]
            layer.values = values[index, :, lead:]

    def _pad_to(self, width: int) -> None:
        grow = width - self._mask.shape[1]
        if grow <= 0:
            return
        self._mask = torch.nn.functional.pad(self._mask, (grow, 0))
        if self._cache is None:
            return
        for layer in self._layers():
            keys, values = layer.states()
            layer.keys = _left_pad(keys, width)
            layer.values = _left_pad(values, width)

    def _layers(self) -> list[GrowingLayer]:
        """The cache's layers, which `add` made `GrowingLayer`s."""
        assert self._cache is not None
        return cast("list[GrowingLayer]", self._cache.layers)


# transformers leaves `CacheLayerMixin.__init_subclass__` unannotated.
class GrowingLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """A layer cache that appends into spare columns instead of concatenating.

    `DynamicLayer` copies all of a layer's keys and values to append one column, which
    for 8 rows of 400 tokens was a tenth of each step. This one keeps room for
    `HEADROOM` more columns and hands out views. When something else replaced `keys`
    (a row joined or left, the batch was padded), the next update adopts the new
    tensors into a fresh buffer.
    """

    HEADROOM = 64

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in transformers
        self._key_buffer = self._value_buffer = torch.empty(0)
        self._handed_out: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        end = length + key_states.shape[-2]
        if self.keys is not self._handed_out or end > self._key_buffer.shape[-2]:
            keys, values = self.states()
            self._key_buffer = self._adopt(keys, key_states, end)
            self._value_buffer = self._adopt(values, value_states, end)
        self._key_buffer[:, :, length:end] = key_states
        self._value_buffer[:, :, length:end] = value_states
        self.keys = self._handed_out = self._key_buffer[:, :, :end]
        self.values = self._value_buffer[:, :, :end]
        return self.keys, self.values

    def states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values held, once the first `update` initialised them."""
        assert self.keys is not None and self.values is not None
        return self.keys, self.values

    def _adopt(self, current: torch.Tensor, new: torch.Tensor, end: int) -> torch.Tensor:
        """A buffer with room for `end + HEADROOM` columns that starts with `current`."""
        rows, heads, _, dim = new.shape
        buffer = new.new_empty((rows, heads, end + self.HEADROOM, dim))
        if current.numel():
            buffer[:, :, : current.shape[-2]] = current
        return buffer


def _left_pad(states: torch.Tensor, width: int) -> torch.Tensor:
    """`[batch, heads, tokens, dim]` states with zero columns before them up to `width`."""
    grow = width - states.shape[2]
    return torch.nn.functional.pad(states, (0, 0, grow, 0)) if grow > 0 else states


NUCLEUS_CANDIDATES = 256
"""Tokens sorted to find a row's top-p nucleus; a wider nucleus falls back to a full sort."""


def choose_tokens(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generators: Sequence[torch.Generator | None] | None = None,
) -> torch.Tensor:
    """The next token of each row: the most likely at temperature 0, else sampled from
    the temperature-scaled distribution cut to its top-p nucleus (as OpenAI samples).

    With `generators` (one per row), row i draws from `generators[i]` alone, or takes
    its most likely token where that is None (a scoring row, whose token nobody reads),
    and no row's token depends on another row: a seeded request samples the same alone
    or in any batch. Without, every row draws from torch's global generator.

    Sorting a 49k vocabulary and drawing from it with `multinomial` took 30 ms a step
    for 8 rows on 2 cores, a quarter of the forward pass. A nucleus is nearly always
    among the few hundred likeliest tokens, so only those are sorted, and the draw
    inverts the cumulative distribution instead of calling `multinomial`.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    uniform = _uniform(probs.shape[0], generators).to(probs.device)
    if top_p >= 1.0:
        tokens = _draw(probs, uniform)
    else:
        ordered, order = probs.topk(min(NUCLEUS_CANDIDATES, probs.shape[-1]), dim=-1)
        tokens = _draw_nucleus(ordered, order, top_p, uniform)
        wide = (ordered.sum(dim=-1) < top_p).nonzero().squeeze(-1)
        if len(wide):  # a flat row: its nucleus is wider, so its whole row is sorted
            ordered, order = probs[wide].sort(dim=-1, descending=True)
            tokens[wide] = _draw_nucleus(ordered, order, top_p, uniform[wide])
    if generators is not None and None in generators:
        greedy = torch.tensor([g is None for g in generators], device=tokens.device)
        tokens[greedy] = logits[greedy].argmax(dim=-1)
    return tokens


def _uniform(rows: int, generators: Sequence[torch.Generator | None] | None) -> torch.Tensor:
    """`[rows, 1]` uniform draws in [0, 1): row i's from `generators[i]` (0 where None),
    or all from torch's global generator."""
    if generators is None:
        return torch.rand((rows, 1))
    if len(generators) != rows:
        raise ValueError(f"{len(generators)} generators for {rows} rows")
    draws = [torch.zeros(1) if g is None else torch.rand(1, generator=g) for g in generators]
    return torch.stack(draws)


def _draw_nucleus(
    ordered: torch.Tensor, order: torch.Tensor, top_p: float, uniform: torch.Tensor
) -> torch.Tensor:
    """Draw from probabilities sorted in descending order (`order`: their token ids),
    cut to the top-p nucleus."""
    outside = ordered.cumsum(dim=-1) - ordered > top_p  # the first token always stays
    picked = _draw(ordered.masked_fill(outside, 0.0), uniform)
    return order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)


def _draw(weights: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One index per row, with probability proportional to `weights`, for the row's
    `uniform` draw."""
    cumulative = weights.cumsum(dim=-1)
    targets = uniform * cumulative[:, -1:]
    # The first index whose cumulative weight passes the target: never a zero weight.
    picked = torch.searchsorted(cumulative, targets, right=True).squeeze(-1)
    return picked.clamp(max=weights.shape[-1] - 1)
