"""One step of a ragged batch: what each row feeds, and how the step's tokens attend.

A step's tokens are one flat list: each row's pending tokens (its prompt past the
cached states when it has just joined, else its last generated token), then the
branches it scores. `StepPlan` says where each row's tokens sit in that list and
which columns of the key/value pool each may see; its `attend` stores the step's keys
and values in their slots and runs attention per row (the single-token rows together,
in one batched call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
import torch.nn.functional as F

from journey.engine._running_batch import Row

T = TypeVar("T")


@dataclass
class BatchEntry(Generic[T]):
    """A row of a ragged batch: its slot in the pool, and what the next step feeds it."""

    row: Row[T]
    slot: int
    length: int
    """Columns of the slot filled: tokens already fed."""
    feed: list[int]
    """The tokens the next step feeds: the prompt past its cached states when the row
    has just joined, else the token generated last."""
    branches: list[list[int]] = field(default_factory=list)
    """Continuations of the prompt to score, each fed after it and seeing only the
    prompt and itself (a scoring row's labels; none for a generating row)."""
    scores: list[float] | None = None
    """Each branch's summed log-probability, once a step has fed them."""

    @property
    def pending(self) -> int:
        return len(self.feed) + sum(map(len, self.branches))


@dataclass
class StepPlan:
    """Where each row's tokens sit in a step's flat token list, and how they attend."""

    ids: list[int]
    positions: list[int]
    last_tokens: torch.Tensor
    """Index of each row's last token, in row order."""
    single_tokens: torch.Tensor
    """Index of every token that is its row's only one this step."""
    single_slots: torch.Tensor
    single_lengths: torch.Tensor
    """Their slots, and the columns each slot had filled before this step."""
    single_mask: torch.Tensor
    """`[slots in use, 1, 1, columns]`: what each slot's single token may see."""
    prompts: list[tuple[int, int, int, int, torch.Tensor]]
    """For each row feeding several tokens: slot, filled columns, first and end token,
    and which columns each of its tokens may see."""
    branch_predictors: torch.Tensor
    branch_targets: torch.Tensor
    """Index of every token whose logits score a branch token, and that token's id."""
    branch_owners: list[tuple[int, int]]
    """For each of those, the row (its index) and branch it scores."""

    @classmethod
    def of(cls, entries: list[BatchEntry[Any]]) -> StepPlan:
        ids: list[int] = []
        positions: list[int] = []
        last: list[int] = []
        singles: list[tuple[int, int, int]] = []
        prompts: list[tuple[int, int, int, int, torch.Tensor]] = []
        predictors: list[int] = []
        targets: list[int] = []
        owners: list[tuple[int, int]] = []
        for index, entry in enumerate(entries):
            start, count = len(ids), len(entry.feed)
            ids.extend(entry.feed)
            positions.extend(range(entry.length, entry.length + count))
            last.append(start + count - 1)
            for branch_index, branch in enumerate(entry.branches):
                if not branch:
                    continue
                # The prompt's last token predicts a branch's first, each token the next.
                predictors.extend([start + count - 1, *range(len(ids), len(ids) + len(branch) - 1)])
                targets.extend(branch)
                owners.extend([(index, branch_index)] * len(branch))
                ids.extend(branch)
                positions.extend(range(entry.length + count, entry.length + count + len(branch)))
            if entry.pending == 1:
                singles.append((start, entry.slot, entry.length))
            else:
                prompts.append((entry.slot, entry.length, start, len(ids), _visible(entry, count)))
        used = max(e.slot for e in entries) + 1
        columns = max((length + 1 for _, _, length in singles), default=1)
        filled = torch.ones(used, dtype=torch.long)  # a slot not in the call sees column 0
        for _, slot, length in singles:
            filled[slot] = length + 1
        mask = torch.arange(columns) < filled.unsqueeze(1)
        return cls(
            ids=ids,
            positions=positions,
            last_tokens=torch.tensor(last, dtype=torch.long),
            single_tokens=torch.tensor([t for t, _, _ in singles], dtype=torch.long),
            single_slots=torch.tensor([s for _, s, _ in singles], dtype=torch.long),
            single_lengths=torch.tensor([n for _, _, n in singles], dtype=torch.long),
            single_mask=mask.view(used, 1, 1, columns),
            prompts=prompts,
            branch_predictors=torch.tensor(predictors, dtype=torch.long),
            branch_targets=torch.tensor(targets, dtype=torch.long),
            branch_owners=owners,
        )

    def attend(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        pool_keys: torch.Tensor,
        pool_values: torch.Tensor,
        scale: float,
    ) -> torch.Tensor:
        """Store the step's `[tokens, heads, head_dim]` keys and values in their slots
        and return every token's attention output, `[tokens, heads, head_dim]`."""
        mixed = torch.empty_like(queries)
        if len(self.single_tokens):
            used, columns = self.single_mask.shape[0], self.single_mask.shape[-1]
            pool_keys[self.single_slots, :, self.single_lengths] = keys[self.single_tokens]
            pool_values[self.single_slots, :, self.single_lengths] = values[self.single_tokens]
            batched = queries.new_zeros((used, queries.shape[1], 1, queries.shape[2]))
            batched[self.single_slots, :, 0] = queries[self.single_tokens]
            out = F.scaled_dot_product_attention(
                batched,
                pool_keys[:used, :, :columns],
                pool_values[:used, :, :columns],
                attn_mask=self.single_mask,
                scale=scale,
                enable_gqa=True,
            )
            mixed[self.single_tokens] = out[self.single_slots, :, 0]
        for slot, length, start, end, mask in self.prompts:
            tokens = end - start
            pool_keys[slot, :, length : length + tokens] = keys[start:end].transpose(0, 1)
            pool_values[slot, :, length : length + tokens] = values[start:end].transpose(0, 1)
            out = F.scaled_dot_product_attention(
                queries[start:end].transpose(0, 1).unsqueeze(0),
                pool_keys[slot : slot + 1, :, : length + tokens],
                pool_values[slot : slot + 1, :, : length + tokens],
                attn_mask=mask,
                scale=scale,
                enable_gqa=True,
            )
            mixed[start:end] = out[0].transpose(0, 1)
        return mixed


def _visible(entry: BatchEntry[Any], count: int) -> torch.Tensor:
    """Which columns each token `entry` feeds may see: its `count` prompt tokens see
    the filled columns and the prompt up to themselves; a branch's tokens see all that,
    the whole prompt and their branch up to themselves."""
    length, fed = entry.length, entry.pending
    visible = torch.ones((fed, length + fed), dtype=torch.bool).tril(length)
    start = count
    for branch in entry.branches:
        end = start + len(branch)
        visible[start:end, length + count : length + start] = False  # earlier branches
        start = end
    return visible
