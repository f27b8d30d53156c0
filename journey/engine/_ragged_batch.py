"""A decode batch whose rows feed different numbers of tokens in one forward pass.

`RunningBatch` prefills a joining request's prompt in a forward pass of its own, and
the rows already decoding wait for it. On a CPU, a pass over the weights costs about
as much for 1 token as for 40 (the matrix products are bound by reading the weights),
so a debate's sessions, which join the batch at every turn with a few dozen new prompt
tokens each, paid a whole pass per turn. Here a joining row enters with its prompt
tokens still to feed, and the next step feeds them beside the other rows' single
tokens: every matrix product runs once over all the step's tokens, and only attention
runs per row, over that row's own keys and values.

That needs a forward pass over ragged rows, which `transformers` models do not offer,
so this module has its own for the Llama family (Llama, and Qwen2 without sliding
windows), built from the model's own modules and weights. `supports` says whether a
model qualifies; others keep `RunningBatch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
import torch.nn.functional as F

from journey.engine._prefix_cache import LayerStates
from journey.engine._running_batch import Row

T = TypeVar("T")

HEADROOM = 64
"""Spare columns the pool grows by at least, so that appending a token copies nothing."""

SMALL_PRODUCT_ROWS = 8
"""Up to this many rows, a linear layer is computed as `W @ x.T`: MKL's matrix product
with 2 to 8 rows on the right side is about half as fast per weight as its one-row
path on AVX2 cores, and with the weight on the left it is not (a 30-layer step's
products took 24-42 ms this way for 2 to 8 rows, against 43-55 ms; from 10 rows on
neither way wins every time, so those rows keep `F.linear`). A whole bench synthesis
ran 3% faster with 8 here than with 4."""


def supports(model: Any) -> bool:
    """Whether `model` is a decoder this module can run: the Llama layout, with full
    attention in every layer and no norms inside attention."""
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", None)
    if kind not in ("llama", "qwen2"):
        return False
    if kind == "qwen2" and getattr(config, "use_sliding_window", False):
        return False
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not layers or not all(
        hasattr(inner, name) for name in ("embed_tokens", "rotary_emb", "norm")
    ):
        return False
    attention = layers[0].self_attn
    return all(
        hasattr(attention, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj", "scaling")
    ) and not hasattr(attention, "q_norm")


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


@dataclass
class _Entry(Generic[T]):
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
        self._entries: list[_Entry[T]] = []

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
        self._entries.append(_Entry(row, slot, length, list(feed), [list(b) for b in branches]))

    def step(self, choose: Any) -> None:
        """One forward pass over every row's pending tokens; `choose` turns the last
        logits, one row each, into token ids, which are appended to the rows."""
        plan = _StepPlan.of(self._entries)
        logits, branch_log_probs = self._forward(plan)
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

    def _forward(self, plan: _StepPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's last logits, and the log-probability of every scored branch
        token (in `plan.branch_owners` order)."""
        inner = self._model.model
        self._pool.reserve(max(e.length + e.pending for e in self._entries))
        hidden = inner.embed_tokens(torch.tensor(plan.ids, dtype=torch.long))
        cos, sin = inner.rotary_emb(hidden, torch.tensor([plan.positions], dtype=torch.long))
        cos, sin = cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # [tokens, 1, head_dim]
        for index, layer in enumerate(inner.layers):
            hidden = self._layer(index, layer, hidden, cos, sin, plan)
        rows = len(plan.last_tokens)
        picked = torch.cat((plan.last_tokens, plan.branch_predictors))
        logits = _linear(inner.norm(hidden[picked]), self._model.lm_head)
        if not len(plan.branch_predictors):
            return logits, logits.new_zeros(0)
        log_probs = torch.log_softmax(logits[rows:].float(), dim=-1)
        targets = plan.branch_targets.unsqueeze(1)
        return logits[:rows], log_probs.gather(1, targets).squeeze(1)

    def _layer(
        self,
        index: int,
        layer: Any,
        hidden: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        plan: _StepPlan,
    ) -> torch.Tensor:
        """One decoder layer over the step's `[tokens, hidden]` states, as the Llama
        family computes it (pre-norm attention and gated MLP, each added back)."""
        attention, mlp = layer.self_attn, layer.mlp
        count, head_dim = hidden.shape[0], attention.head_dim
        x = layer.input_layernorm(hidden)
        queries = _rotate(_linear(x, attention.q_proj).reshape(count, -1, head_dim), cos, sin)
        keys = _rotate(_linear(x, attention.k_proj).reshape(count, -1, head_dim), cos, sin)
        values = _linear(x, attention.v_proj).reshape(count, -1, head_dim)
        pool_keys, pool_values = self._pool.keys[index], self._pool.values[index]
        mixed = plan.attend(queries, keys, values, pool_keys, pool_values, attention.scaling)
        hidden = hidden + _linear(mixed.view(count, -1), attention.o_proj)
        x = layer.post_attention_layernorm(hidden)
        gated = mlp.act_fn(_linear(x, mlp.gate_proj)) * _linear(x, mlp.up_proj)
        return hidden + _linear(gated, mlp.down_proj)


@dataclass
class _StepPlan:
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
    def of(cls, entries: list[_Entry[Any]]) -> _StepPlan:
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


def _visible(entry: _Entry[Any], count: int) -> torch.Tensor:
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


def _linear(x: torch.Tensor, layer: torch.nn.Module) -> torch.Tensor:
    if not isinstance(layer, torch.nn.Linear):  # packed for its own kernels (`_packed_linear`)
        packed: torch.Tensor = layer(x)
        return packed
    if 1 < x.shape[0] <= SMALL_PRODUCT_ROWS:
        out = torch.mm(layer.weight, x.t()).t()
        return out if layer.bias is None else out + layer.bias
    return F.linear(x, layer.weight, layer.bias)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding, as the Llama family applies it (halves rotated)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
