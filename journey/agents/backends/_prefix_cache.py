"""Key/value states of recent prompts, so a new prompt is prefilled only past the
longest cached prompt it starts with.

A session's requests grow: each policy request repeats the previous one and adds a
turn, and each critic request repeats the previous one up to the step under judgement
(about 80% of every prompt, docs/benchmarks.md). Re-encoding all of it on every turn
was the embedded model's largest cost. This is the local equivalent of a server's
prefix cache: entries are matched by token ids, not by session, so it needs no
bookkeeping from the caller and cannot serve one session another's states unless
their tokens are identical (in which case the states are too).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

LayerStates = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, the keys and values of one sequence: `[1, heads, tokens, head_dim]` each."""


@dataclass(frozen=True)
class CachedPrompt:
    tokens: torch.Tensor
    """1-D token ids the states were computed for."""
    states: LayerStates
    nbytes: int


@dataclass
class PrefixCache:
    """Least-recently-used prompt states under a byte budget.

    Storing a prompt drops the entries it extends: their states are a slice of the new
    entry's, so a session keeps one entry per role however long it runs.
    """

    budget_bytes: int
    evictions: int = 0
    _entries: OrderedDict[int, CachedPrompt] = field(default_factory=OrderedDict)
    _next_key: int = 0
    _bytes: int = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def longest_prefix(self, tokens: torch.Tensor) -> tuple[CachedPrompt | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that prefix's length."""
        best: CachedPrompt | None = None
        best_key, best_length = -1, 0
        for key, entry in self._entries.items():
            length = common_prefix_length(entry.tokens, tokens)
            if length > best_length:
                best, best_key, best_length = entry, key, length
        if best is not None:
            self._entries.move_to_end(best_key)
        return best, best_length

    def store(self, tokens: torch.Tensor, states: LayerStates) -> None:
        """Keep `states` for `tokens`, evicting the least recently used over the budget."""
        nbytes = sum(k.nbytes + v.nbytes for k, v in states)
        if nbytes > self.budget_bytes or len(tokens) == 0:
            return
        for key, entry in list(self._entries.items()):
            if len(entry.tokens) <= len(tokens) and common_prefix_length(
                entry.tokens, tokens
            ) == len(entry.tokens):
                self._drop(key)
        self._entries[self._next_key] = CachedPrompt(tokens, states, nbytes)
        self._next_key += 1
        self._bytes += nbytes
        while self._bytes > self.budget_bytes:
            self._drop(next(iter(self._entries)))
            self.evictions += 1

    def _drop(self, key: int) -> None:
        self._bytes -= self._entries.pop(key).nbytes


def common_prefix_length(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many leading token ids two 1-D tensors share."""
    length = min(len(a), len(b))
    differs = (a[:length] != b[:length]).nonzero()
    return int(differs[0]) if len(differs) else length
