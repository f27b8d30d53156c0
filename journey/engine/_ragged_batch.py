"""A decode batch whose rows feed different numbers of tokens in one forward pass.

`RunningBatch` prefills a joining request's prompt in a forward pass of its own, and
the rows already decoding wait for it. On a CPU, a pass over the weights costs about
as much for 1 token as for 40 (the matrix products are bound by reading the weights),
so a debate's sessions, which join the batch at every turn with a few dozen new prompt
tokens each, paid a whole pass per turn. Here a joining row enters with its prompt
tokens still to feed, and the next step feeds them beside the other rows' single
tokens: every matrix product runs once over all the step's tokens, and only attention
runs per row, over that row's own keys and values.

That needs a forward pass over ragged rows, which `transformers` models do not offer:
`_llama_forward` has one for the Llama family (Llama, and Qwen2 without sliding
windows), built from the model's own modules and weights, and its `supports` says
whether a model qualifies; others keep `RunningBatch`. The rows keep their states in a
`KeyValuePool`; `_ragged_step` plans where each row's tokens go in a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from journey.engine._key_value_pool import KeyValuePool
from journey.engine._llama_forward import forward
from journey.engine._prefix_cache import LayerStates
from journey.engine._ragged_step import BatchEntry, StepPlan
from journey.engine._running_batch import Row

T = TypeVar("T")


class RaggedBatch(Generic[T]):
    """Rows decoding together; `step` feeds each its pending tokens and generates one.

    The rows keep their states in `pool`, which may outlive the batch: a pool kept from
    one batch to the next has already grown to the size the batches need (growing it
    copies every slot, and fresh memory costs page faults: 0.9 s of a 19 s bench
    synthesis that started a pool per batch).
    """

    def __init__(self, model: Any, pool: KeyValuePool | None = None) -> None:
        self._model = model
        self._pool = pool if pool is not None else KeyValuePool(model)
        self._entries: list[BatchEntry[T]] = []

    @property
    def rows(self) -> list[Row[T]]:
        return [entry.row for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self,
        row: Row[T],
        states: LayerStates,
        feed: list[int],
        branches: Sequence[list[int]] = (),
    ) -> None:
        """Join with the states of the prompt's first tokens and the rest of the prompt
        (at least its last token) to feed at the next step. With `branches`, that step
        also scores each as a continuation of the prompt (`scores_of`), in the same
        forward pass: one branch's tokens see the prompt and that branch only."""
        if not feed:
            raise ValueError("a joining row needs at least one prompt token to feed")
        length = states[0][0].shape[2] if states else 0
        slot = self._pool.claim(states)
        self._entries.append(BatchEntry(row, slot, length, list(feed), [list(b) for b in branches]))

    def step(self, choose: Any) -> None:
        """One forward pass over every row's pending tokens; `choose` turns the last
        logits, one row each, into token ids, which are appended to the rows."""
        plan = StepPlan.of(self._entries)
        self._pool.reserve(max(e.length + e.pending for e in self._entries))
        logits, branch_log_probs = forward(self._model, self._pool, plan)
        tokens: list[int] = choose(logits.float()).tolist()
        for entry, token in zip(self._entries, tokens, strict=True):
            entry.length += len(entry.feed)  # branch columns are scratch, written over next
            entry.row.generated.append(token)
            entry.feed = [token]
            if entry.branches:
                entry.scores = [0.0] * len(entry.branches)
                entry.branches = []
        for (index, branch), log_prob in zip(
            plan.branch_owners, branch_log_probs.tolist(), strict=True
        ):
            scores = self._entries[index].scores
            assert scores is not None
            scores[branch] += log_prob

    def scores_of(self, index: int) -> list[float] | None:
        """Row `index`'s branch scores (summed log-probabilities, in the order added),
        if it had branches and a step has fed them."""
        return self._entries[index].scores

    def states_of(self, index: int) -> tuple[list[int], LayerStates]:
        """Row `index`'s tokens with states (its prompt and all it generated but the
        last token, which no step has fed yet) and a copy of those states."""
        entry = self._entries[index]
        tokens = entry.row.prompt + entry.row.generated[:-1]
        end, slot = len(tokens), entry.slot
        states = [
            (k[slot : slot + 1, :, :end].clone(), v[slot : slot + 1, :, :end].clone())
            for k, v in zip(self._pool.keys, self._pool.values, strict=True)
        ]
        return tokens, states

    def close(self) -> None:
        """Release every row's slot (a pool outlives its batches)."""
        self.remove(list(range(len(self._entries))))

    def remove(self, indices: list[int]) -> None:
        gone = set(indices)
        for index in gone:
            self._pool.release(self._entries[index].slot)
        self._entries = [e for i, e in enumerate(self._entries) if i not in gone]
