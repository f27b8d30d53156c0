"""Sizes of the tiny random decoders the batching tests build: fast, and independent of
the embedded model."""

from __future__ import annotations

TINY_DECODER = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
