"""The Llama family's forward pass over a ragged step, built from the model's own modules.

`transformers` models have no forward pass over ragged rows (rows feeding different
numbers of tokens in one pass), so this module has its own for the Llama family
(Llama, and Qwen2 without sliding windows): every matrix product runs once over all
the step's tokens, and only attention runs per row (`StepPlan.attend`), over that
row's own keys and values in the pool. `supports` says whether a model qualifies.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from journey.engine._key_value_pool import KeyValuePool
from journey.engine._ragged_step import StepPlan

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


def forward(model: Any, pool: KeyValuePool, plan: StepPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's last logits, and the log-probability of every scored branch token (in
    `plan.branch_owners` order); the step's keys and values go to their slots in `pool`
    (which must have room for them)."""
    inner = model.model
    hidden = inner.embed_tokens(torch.tensor(plan.ids, dtype=torch.long))
    cos, sin = inner.rotary_emb(hidden, torch.tensor([plan.positions], dtype=torch.long))
    cos, sin = cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # [tokens, 1, head_dim]
    for index, layer in enumerate(inner.layers):
        hidden = _layer(layer, hidden, cos, sin, plan, pool.keys[index], pool.values[index])
    rows = len(plan.last_tokens)
    picked = torch.cat((plan.last_tokens, plan.branch_predictors))
    logits = _linear(inner.norm(hidden[picked]), model.lm_head)
    if not len(plan.branch_predictors):
        return logits, logits.new_zeros(0)
    log_probs = torch.log_softmax(logits[rows:].float(), dim=-1)
    targets = plan.branch_targets.unsqueeze(1)
    return logits[:rows], log_probs.gather(1, targets).squeeze(1)


def _layer(
    layer: Any,
    hidden: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    plan: StepPlan,
    pool_keys: torch.Tensor,
    pool_values: torch.Tensor,
) -> torch.Tensor:
    """One decoder layer over the step's `[tokens, hidden]` states, as the Llama
    family computes it (pre-norm attention and gated MLP, each added back)."""
    attention, mlp = layer.self_attn, layer.mlp
    count, head_dim = hidden.shape[0], attention.head_dim
    x = layer.input_layernorm(hidden)
    queries = _rotate(_linear(x, attention.q_proj).reshape(count, -1, head_dim), cos, sin)
    keys = _rotate(_linear(x, attention.k_proj).reshape(count, -1, head_dim), cos, sin)
    values = _linear(x, attention.v_proj).reshape(count, -1, head_dim)
    mixed = plan.attend(queries, keys, values, pool_keys, pool_values, attention.scaling)
    hidden = hidden + _linear(mixed.view(count, -1), attention.o_proj)
    x = layer.post_attention_layernorm(hidden)
    gated = mlp.act_fn(_linear(x, mlp.gate_proj)) * _linear(x, mlp.up_proj)
    return hidden + _linear(gated, mlp.down_proj)


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
