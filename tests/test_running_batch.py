"""Continuous batching: rows that join and leave a running decode get the tokens they
would get alone. A tiny random Llama keeps this fast and independent of the embedded
model; greedy decoding makes every row's tokens a pure function of its prompt."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from journey.engine._running_batch import (
    NUCLEUS_CANDIDATES,
    GrowingLayer,
    Row,
    RunningBatch,
    choose_tokens,
)


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(config).eval()


def _states(model: LlamaForCausalLM, prompt: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([prompt[:-1]]), cache=cache, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.layers]


def _alone(model: LlamaForCausalLM, prompt: list[int], steps: int) -> list[int]:
    """Greedy tokens from a plain full-sequence forward pass per step (no cache)."""
    ids = list(prompt)
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
    return ids[len(prompt) :]


def _greedy(logits: torch.Tensor) -> torch.Tensor:
    return choose_tokens(logits, temperature=0.0, top_p=1.0)


def test_rows_joining_and_leaving_match_decoding_alone(model: LlamaForCausalLM) -> None:
    prompts = {
        "short": [5, 9, 3],
        "long": [7, 1, 4, 4, 8, 2, 6, 3, 9, 12, 30],
        "late": [2, 2, 40, 41, 42, 43, 1, 8, 9, 10, 11, 12, 13, 14, 15],  # longer than all
        "later": [33, 34],
    }
    limits = {"short": 3, "long": 9, "late": 6, "later": 4}
    batch: RunningBatch[str] = RunningBatch(model)
    results: dict[str, list[int]] = {}
    row_states: dict[str, tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]]]] = {}

    def add(name: str) -> None:
        row = Row(name, prompts[name], limits[name])
        batch.add(row, _states(model, prompts[name]), prompts[name][-1])

    add("short")
    add("long")
    step = 0
    with torch.inference_mode():
        while len(batch):
            batch.step(_greedy)
            step += 1
            ended = [i for i, row in enumerate(batch.rows) if len(row.generated) >= row.limit]
            for i in ended:
                results[batch.rows[i].request] = batch.rows[i].generated
                row_states[batch.rows[i].request] = batch.states_of(i)
            batch.remove(ended)
            if step == 2:  # joins with a prompt longer than the batch's columns
                add("late")
            if step == 5:  # joins after "short" left and the leading columns were cut
                add("later")
    assert set(results) == set(prompts)
    for name, prompt in prompts.items():
        assert results[name] == _alone(model, prompt, limits[name]), name
        # A finished row's states are those of its prompt and reply encoded alone
        # (all but the reply's last token, which was never fed), free of padding.
        tokens, states = row_states[name]
        assert tokens == prompt + results[name][:-1]
        expected = _states(model, [*tokens, 0])
        for (keys, values), (want_keys, want_values) in zip(states, expected, strict=True):
            torch.testing.assert_close(keys, want_keys, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(values, want_values, atol=1e-5, rtol=1e-4)


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    torch.manual_seed(0)
    picks = {int(choose_tokens(logits, temperature=1.0, top_p=0.8)) for _ in range(200)}
    assert picks == {0, 1}
    assert int(choose_tokens(logits, temperature=0.0, top_p=0.8)) == 0


def test_sampling_follows_the_nucleus_distribution() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(4000, -1)
    torch.manual_seed(1)
    counts = torch.bincount(choose_tokens(logits, temperature=1.0, top_p=0.9), minlength=4)
    shares = (counts / counts.sum()).tolist()
    # The nucleus is {0, 1, 2} (0.5 + 0.3 < 0.9), renormalised: 0.526, 0.316, 0.158.
    assert counts[3] == 0
    assert shares[:3] == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95], abs=0.03)


def test_a_nucleus_wider_than_the_candidates_is_sampled_whole() -> None:
    # A flat distribution over 1,000 tokens: top-p 0.9 keeps 900, far past the 256
    # candidates sorted first, and every one of them must stay possible.
    logits = torch.zeros((20_000, 1000))
    torch.manual_seed(2)
    picks = choose_tokens(logits, temperature=1.0, top_p=0.9)
    assert int(picks.max()) > NUCLEUS_CANDIDATES
    assert len(set(picks.tolist())) > 850


def test_top_p_one_samples_the_whole_distribution() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1, 0.0]])).expand(4000, -1)
    torch.manual_seed(3)
    counts = torch.bincount(choose_tokens(logits, temperature=1.0, top_p=1.0), minlength=4)
    assert counts[3] == 0  # a token of probability zero is never drawn
    assert (counts[:3] / counts.sum()).tolist() == pytest.approx([0.7, 0.2, 0.1], abs=0.03)


def test_growing_layer_appends_like_concatenation() -> None:
    layer = GrowingLayer()
    pieces = [torch.randn(2, 3, n, 4) for n in (5, 1, 1, GrowingLayer.HEADROOM + 3, 1)]
    expected = torch.empty(2, 3, 0, 4)
    for i, piece in enumerate(pieces):
        if i == 2:  # something replaced the keys and values: they are adopted, not lost
            layer.keys, layer.values = layer.keys[:, :, 1:].clone(), layer.values[:, :, 1:].clone()
            expected = expected[:, :, 1:]
        keys, values = layer.update(piece, piece * 2)
        expected = torch.cat([expected, piece], dim=2)
        assert torch.equal(keys, expected)
        assert torch.equal(values, expected * 2)
        assert layer.get_seq_length() == expected.shape[2]
