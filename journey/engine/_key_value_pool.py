"""The key/value pool of ragged batches: every row's states in one tensor per layer.

A row owns a slot of the pool and fills its columns from the left, so rows of any
length share one tensor with no padding to realign. The pool may outlive the batches
that use it (`RaggedBatch`), so that it grows to the size they need only once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from journey.engine._prefix_cache import LayerStates

HEADROOM = 64
"""Spare columns the pool grows by at least, so that appending a token copies nothing."""


class KeyValuePool:
    """Every row's keys and values, per layer `[slots, kv_heads, capacity, head_dim]`.

    A row owns a slot and fills its columns from the left, so rows of any length share
    one tensor with no padding to realign: single-token rows attend in one batched
    call over the slots in use, each masked to its own length.
    """

    def __init__(self, model: Any, *, min_slots: int = 1) -> None:
        """`min_slots`: how many slots the pool takes when it first needs one (a batch's
        size: each doubling copies every slot)."""
        attention = model.model.layers[0].self_attn
        self._shape = (model.config.num_key_value_heads, attention.head_dim)
        self._dtype = model.model.embed_tokens.weight.dtype
        self._layers = len(model.model.layers)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._allocate(0, 0)
        self._free: list[int] = []
        self._min_slots = max(1, min_slots)

    @property
    def slots(self) -> int:
        return self.keys[0].shape[0]

    @property
    def in_use(self) -> int:
        """Slots claimed and not released."""
        return self.slots - len(self._free)

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in zip(self.keys, self.values, strict=True))

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def claim(self, states: LayerStates) -> int:
        """A free slot, holding `states` in its first columns."""
        length = states[0][0].shape[2] if states else 0
        if not self._free:  # twice the slots: a batch grows to its size in a few copies
            slots = max(self._min_slots, 2 * self.slots)
            self._free.extend(range(self.slots, slots))
            self._allocate(slots, max(self.capacity, length + HEADROOM))
        self.reserve(length)
        slot = min(self._free)
        self._free.remove(slot)
        if states:
            for keys, values, (new_keys, new_values) in zip(
                self.keys, self.values, states, strict=True
            ):
                keys[slot, :, :length] = new_keys[0]
                values[slot, :, :length] = new_values[0]
        return slot

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def reserve(self, columns: int) -> None:
        """Room for `columns` columns in every slot."""
        if columns > self.capacity:
            self._allocate(self.slots, max(columns + HEADROOM, self.capacity * 3 // 2))

    def _allocate(self, slots: int, capacity: int) -> None:
        heads, head_dim = self._shape

        def grown(old: torch.Tensor | None) -> torch.Tensor:
            new = torch.zeros((slots, heads, capacity, head_dim), dtype=self._dtype)
            if old is not None and old.numel():
                new[: old.shape[0], :, : old.shape[2]] = old
            return new

        old_keys: Sequence[torch.Tensor | None] = self.keys or [None] * self._layers
        old_values: Sequence[torch.Tensor | None] = self.values or [None] * self._layers
        self.keys = [grown(k) for k in old_keys]
        self.values = [grown(v) for v in old_values]
