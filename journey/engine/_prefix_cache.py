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
    """Prompt states under a byte budget, kept for the sessions still using them.

    Storing a prompt drops the entries it extends: their states are a slice of the new
    entry's, so a session keeps one entry per role however long it runs.

    When the budget is full, only stale entries (no hit in the last `2 x entries`
    lookups: their session has ended or moved on) are evicted, least recently used
    first. If that frees too little, the new prompt is not stored and the entries in
    use stay. Plain LRU would be the worst choice here: sessions take turns, so with
    more sessions than fit, each would evict the entry the next one needs, and every
    lookup would miss; this way the sessions that fit keep their states (and one whose
    new prompt does not fit keeps its previous, shorter entry).
    """

    budget_bytes: int
    evictions: int = 0
    rejections: int = 0
    """Prompts not stored because every entry that could make room was in use."""
    _entries: OrderedDict[int, CachedPrompt] = field(default_factory=OrderedDict)
    _last_hit: dict[int, int] = field(default_factory=dict)
    _lookups: int = 0
    _next_key: int = 0
    _bytes: int = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def longest_prefix(self, tokens: torch.Tensor) -> tuple[CachedPrompt | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that prefix's length."""
        self._lookups += 1
        best: CachedPrompt | None = None
        best_key, best_length = -1, 0
        for key, entry in self._entries.items():
            length = common_prefix_length(entry.tokens, tokens)
            if length > best_length:
                best, best_key, best_length = entry, key, length
        if best is not None:
            self._entries.move_to_end(best_key)
            self._last_hit[best_key] = self._lookups
        return best, best_length

    def store(self, tokens: torch.Tensor, states: LayerStates) -> None:
        """Keep `states` for `tokens` if stale entries can make room for them."""
        nbytes = sum(k.nbytes + v.nbytes for k, v in states)
        if nbytes > self.budget_bytes or len(tokens) == 0:
            return
        extended = [
            key
            for key, entry in self._entries.items()
            if len(entry.tokens) <= len(tokens)
            and common_prefix_length(entry.tokens, tokens) == len(entry.tokens)
        ]
        free = self.budget_bytes - self._bytes + sum(self._entries[k].nbytes for k in extended)
        stale_after = 2 * len(self._entries)
        stale = [
            key
            for key in self._entries  # least recently used first
            if key not in extended and self._lookups - self._last_hit[key] > stale_after
        ]
        evict: list[int] = []
        for key in stale:
            if free >= nbytes:
                break
            evict.append(key)
            free += self._entries[key].nbytes
        if free < nbytes:
            self.rejections += 1
            return
        for key in extended + evict:
            self._drop(key)
        self.evictions += len(evict)
        key = self._next_key
        self._next_key += 1
        self._entries[key] = CachedPrompt(tokens, states, nbytes)
        self._last_hit[key] = self._lookups
        self._bytes += nbytes

    def _drop(self, key: int) -> None:
        self._bytes -= self._entries.pop(key).nbytes
        del self._last_hit[key]


def common_prefix_length(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many leading token ids two 1-D tensors share."""
    length = min(len(a), len(b))
    differs = (a[:length] != b[:length]).nonzero()
    return int(differs[0]) if len(differs) else length
